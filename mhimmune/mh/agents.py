"""Catalogue of magnetic heating agents (``parameters/agents.tsv``).

Each agent carries a measured SAR (W per g of iron, as the review of Yan et al.
[yan_mh_review] defines it: SAR = (ΔT/Δt)·C/m_Fe) with the field it was measured at,
and/or an intrinsic loss power ILP = SAR/(H² f). Within linear response the SAR at
another field follows from the ILP: SAR = ILP · H² · f
(:func:`mhimmune.mh.physics.sar_from_ilp`). When the table gives no ILP it is derived
from the SAR and its field; an agent with neither (a SAR without its field, or only a
SAR range) cannot be scaled, and :meth:`Agent.sar_at` raises for it.

Columns of the table: ``agent`` (lower_snake_case id), ``description``, ``sar_w_per_g``,
``field_kA_per_m``, ``freq_kHz``, ``ilp_nH_m2_per_kg``, ``core_nm``, ``source``, ``notes``,
``material``, ``hydrodynamic_nm``, ``shell_nm``, ``anisotropy_kJ_per_m3``,
``sar_low_w_per_g``, ``sar_high_w_per_g`` (a reported SAR range) and ``evidence``
(clinical, in_vivo, in_vitro or suspension: the strongest setting reported in the review
of Yan et al. [yan_mh_review]).
Empty cells are unknown, never zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import pandas as pd

from mhimmune.core.errors import ParameterError, ProtocolError
from mhimmune.core.resources import resource_dir
from mhimmune.mh import physics

__all__ = ["Agent", "agent_names", "get_agent", "agent_table"]

_NAN = float("nan")


@dataclass(frozen=True)
class Agent:
    """A heating agent of the catalogue; numbers in the units their names give (NaN = unknown)."""

    name: str
    description: str
    ilp_nH_m2_per_kg: float
    sar_w_per_g: float
    field_kA_per_m: float
    freq_kHz: float
    source: str
    notes: str = ""
    material: str = ""
    core_nm: float = _NAN
    hydrodynamic_nm: float = _NAN
    shell_nm: float = _NAN
    anisotropy_kJ_per_m3: float = _NAN
    sar_low_w_per_g: float = _NAN
    sar_high_w_per_g: float = _NAN
    evidence: str = ""
    ilp_derived: bool = False

    @property
    def scalable(self) -> bool:
        """True when the catalogue has an ILP (given or derived), so the SAR can be scaled."""
        return math.isfinite(self.ilp_nH_m2_per_kg)

    def sar_at(self, field_kA_per_m: float, freq_kHz: float) -> float:
        """SAR in W/g (per g Fe) at another field, scaled through the ILP (linear response).

        Parameters
        ----------
        field_kA_per_m : field amplitude in kA/m (≥ 0).
        freq_kHz : frequency in kHz (> 0).

        Raises :class:`ProtocolError` when the agent has no ILP and no measuring field, or when
        the field or frequency is out of range.

        Reference: Yan et al. [yan_mh_review] (ILP = SAR/(H² f)).
        """
        if not self.scalable:
            measured = (
                f"SAR {self.sar_w_per_g:g} W/g"
                if math.isfinite(self.sar_w_per_g)
                else f"SAR {self.sar_low_w_per_g:g}-{self.sar_high_w_per_g:g} W/g"
                if math.isfinite(self.sar_low_w_per_g)
                else "no SAR"
            )
            raise ProtocolError(
                f"agent {self.name!r}: cannot scale its SAR to {field_kA_per_m} kA/m, "
                f"{freq_kHz} kHz: "
                f"the catalogue has {measured} but neither the field and frequency it was measured "
                f"at nor an ILP; choose a scalable agent (Agent.scalable) or see its notes in "
                f"parameters/agents.tsv"
            )
        try:
            return float(physics.sar_from_ilp(self.ilp_nH_m2_per_kg, field_kA_per_m, freq_kHz))
        except ParameterError as exc:
            raise ProtocolError(f"agent {self.name!r}: {exc}") from None

    @property
    def rosensweig_capable(self) -> bool:
        """True when core size and anisotropy are known, so Rosensweig theory can give a SAR."""
        return math.isfinite(self.core_nm) and math.isfinite(self.anisotropy_kJ_per_m3)

    def heating_at(self, field_kA_per_m: float, freq_kHz: float) -> tuple[float, str]:
        """SAR in W/g Fe at a session's field, and the method used to get it.

        ``"ilp"``: scaled from the catalogue's ILP (linear response, preferred because it
        rests on a measurement); ``"rosensweig"``: Rosensweig (2002) linear-response theory
        for immobilised particles (no Brownian path in tissue) from core size, anisotropy
        and shell, when the catalogue has no ILP. Raises :class:`ProtocolError` otherwise.
        """
        if self.scalable:
            return self.sar_at(field_kA_per_m, freq_kHz), "ilp"
        if self.rosensweig_capable:
            shell = self.shell_nm if math.isfinite(self.shell_nm) else 2.0
            sar = physics.rosensweig_slp(
                self.core_nm,
                field_kA_per_m,
                freq_kHz,
                anisotropy_kJ_per_m3=self.anisotropy_kJ_per_m3,
                shell_nm=shell,
                immobilised=True,
                basis="fe",
            )
            return float(sar), "rosensweig"
        return self.sar_at(field_kA_per_m, freq_kHz), "ilp"  # raises the explanatory error


def _number(row: pd.Series, column: str) -> float:
    if column not in row.index:
        return _NAN
    value = row[column]
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(
            f"agents.tsv: agent {row['agent']!r}, column {column!r}: {value!r} is not a number"
        ) from None
    return out


def _text(row: pd.Series, column: str) -> str:
    if column not in row.index:
        return ""
    value = row[column]
    return "" if pd.isna(value) else str(value)


@cache
def _table() -> pd.DataFrame:
    df = pd.read_csv(resource_dir("parameters") / "agents.tsv", sep="\t", comment=None)
    if df["agent"].duplicated().any():
        dup = ", ".join(df.loc[df["agent"].duplicated(), "agent"])
        raise ParameterError(f"agents.tsv: duplicate agent ids: {dup}")
    return df.set_index("agent", drop=False)


def agent_names() -> list[str]:
    """Names of all agents in the catalogue."""
    return list(_table().index)


@cache
def get_agent(name: str) -> Agent:
    """Look up an agent by name; unknown names raise :class:`ProtocolError`.

    When the table gives no ILP but a SAR with its field and frequency, the ILP is derived as
    SAR/(H² f) (:func:`mhimmune.mh.physics.ilp`) and ``ilp_derived`` is True.
    """
    df = _table()
    if name not in df.index:
        raise ProtocolError(f"agent: unknown agent {name!r}; known agents: {', '.join(df.index)}")
    row = df.loc[name]
    ilp = _number(row, "ilp_nH_m2_per_kg")
    sar, h, f = (
        _number(row, "sar_w_per_g"),
        _number(row, "field_kA_per_m"),
        _number(row, "freq_kHz"),
    )
    derived = False
    if math.isnan(ilp) and all(math.isfinite(x) for x in (sar, h, f)):
        try:
            ilp = float(physics.ilp(sar, h, f))
        except ParameterError as exc:
            raise ParameterError(f"agents.tsv: agent {name!r}: {exc}") from None
        derived = True
    return Agent(
        name=name,
        description=_text(row, "description"),
        ilp_nH_m2_per_kg=ilp,
        sar_w_per_g=sar,
        field_kA_per_m=h,
        freq_kHz=f,
        source=_text(row, "source"),
        notes=_text(row, "notes"),
        material=_text(row, "material"),
        core_nm=_number(row, "core_nm"),
        hydrodynamic_nm=_number(row, "hydrodynamic_nm"),
        shell_nm=_number(row, "shell_nm"),
        anisotropy_kJ_per_m3=_number(row, "anisotropy_kJ_per_m3"),
        sar_low_w_per_g=_number(row, "sar_low_w_per_g"),
        sar_high_w_per_g=_number(row, "sar_high_w_per_g"),
        evidence=_text(row, "evidence"),
        ilp_derived=derived,
    )


def agent_table() -> pd.DataFrame:
    """The catalogue as a DataFrame (a copy), with derived ILPs and a ``scalable`` column."""
    df = _table().copy()
    agents = [get_agent(n) for n in df.index]
    df["ilp_nH_m2_per_kg"] = [a.ilp_nH_m2_per_kg for a in agents]
    df["ilp_derived"] = [a.ilp_derived for a in agents]
    df["scalable"] = [a.scalable for a in agents]
    return df.reset_index(drop=True)
