"""Limits a treatment schedule must respect (H·f, sessions, antibody dose, predicates).

:class:`Constraints` is checked on the full factor dict of a candidate schedule before it
is simulated; :func:`~mhimmune.studies.optimize.optimize_schedule` lists infeasible
candidates but never simulates them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mhimmune.core.errors import ParameterError
from mhimmune.core.units import convert

__all__ = ["Constraints", "is_number"]


def is_number(x: Any) -> bool:
    """Whether *x* is a real number (int or float, numpy included; not a bool)."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_)
    )


@dataclass(frozen=True)
class Constraints:
    """Limits a schedule must respect; candidates that break one are not simulated.

    Every limit is checked on the full factor dict of a candidate (the template's
    defaults with the candidate's and the fixed values, see :func:`optimize_schedule`);
    a limit left at ``None`` is not checked.

    Parameters
    ----------
    hf_max
        Largest field product H·f in A/(m·s), with H = ``field_kA_per_m`` · 10³ A/m and
        f = ``frequency_kHz`` · 10³ Hz (e.g. 5e9, the Hergt–Dutz limit, or 4.85e8, the
        Brezovich limit). Not checked for schedules without MH (``n_sessions`` = 0).
    max_sessions
        Largest number of MH sessions (``n_sessions``), an integer ≥ 0.
    max_total_antibody_mg_per_kg
        Largest total anti-PD-L1 dose in mg/kg, ``pdl1_dose_mg_per_kg`` × ``pdl1_count``.
    custom
        Further predicates ``f(values: dict) -> bool`` on the full factor dict; ``False``
        means infeasible.
    """

    hf_max: float | None = None
    max_sessions: int | None = None
    max_total_antibody_mg_per_kg: float | None = None
    custom: tuple[Callable[[dict], bool], ...] = ()

    #: keys of :meth:`from_dict`
    KEYS = ("hf_max", "max_sessions", "max_total_antibody_mg_per_kg", "custom")

    def __post_init__(self) -> None:
        for name in ("hf_max", "max_total_antibody_mg_per_kg"):
            x = getattr(self, name)
            if x is None:
                continue
            if not is_number(x) or not math.isfinite(float(x)) or float(x) <= 0:
                raise ParameterError(
                    f"constraints.{name}: must be a finite number > 0 or None (got {x!r})"
                )
            object.__setattr__(self, name, float(x))
        m = self.max_sessions
        if m is not None:
            if (
                not is_number(m)
                or not math.isfinite(float(m))
                or float(m) < 0
                or float(m) != int(m)
            ):
                raise ParameterError(
                    f"constraints.max_sessions: must be an integer ≥ 0 or None (got {m!r})"
                )
            object.__setattr__(self, "max_sessions", int(m))
        custom = self.custom
        if callable(custom):
            custom = (custom,)
        if isinstance(custom, (str, bytes)) or not isinstance(custom, Sequence):
            raise ParameterError(
                f"constraints.custom: must be a sequence of callables "
                f"f(values) -> bool (got {type(custom).__name__})"
            )
        custom = tuple(custom)
        bad = [i for i, f in enumerate(custom) if not callable(f)]
        if bad:
            raise ParameterError(
                f"constraints.custom: items {bad} are not callable; each must "
                f"be a predicate f(values: dict) -> bool"
            )
        object.__setattr__(self, "custom", custom)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Constraints:
        """Constraints from a mapping such as a TOML table.

        Parameters
        ----------
        d
            Keys ``hf_max`` (a number in A/(m·s) or a text with a unit, ``"5e9 A/m/s"``),
            ``max_sessions`` (integer), ``max_total_antibody_mg_per_kg`` (number in mg/kg
            or text with a unit, ``"30 mg/kg"``) and ``custom`` (predicates); all optional.

        Returns
        -------
        Constraints

        Raises
        ------
        ParameterError
            An unknown key (the message lists the allowed keys) or a value out of range.
        """
        if not isinstance(d, Mapping):
            raise ParameterError(
                f"constraints: expected a mapping with keys {', '.join(cls.KEYS)}, "
                f"got {type(d).__name__}"
            )
        unknown = [k for k in d if k not in cls.KEYS]
        if unknown:
            raise ParameterError(
                f"constraints: unknown key(s) {unknown}; allowed keys: {', '.join(cls.KEYS)}"
            )
        kw = dict(d)
        for key, unit in (("hf_max", "A/(m*s)"), ("max_total_antibody_mg_per_kg", "mg/kg")):
            if isinstance(kw.get(key), str):
                kw[key] = convert(kw[key], unit, f"constraints.{key}", default_unit=unit)
        if "custom" in kw and kw["custom"] is None:
            kw["custom"] = ()
        return cls(**kw)

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return (
            self.hf_max is not None
            or self.max_sessions is not None
            or self.max_total_antibody_mg_per_kg is not None
            or bool(self.custom)
        )

    def _needs(self, values: Mapping[str, Any], names: Sequence[str], limit: str) -> list[float]:
        missing = [n for n in names if n not in values]
        if missing:
            raise ParameterError(f"constraints.{limit}: the factor values lack {missing}")
        return [float(values[n]) for n in names]

    def check(self, values: Mapping[str, Any]) -> tuple[list[str], float]:
        """(reasons, excess): violations and how far beyond the limits (relative, ≥ 0)."""
        reasons: list[str] = []
        excess = 0.0
        if self.hf_max is not None:
            h, f = self._needs(values, ("field_kA_per_m", "frequency_kHz"), "hf_max")
            hf = h * 1e3 * f * 1e3
            with_mh = float(values.get("n_sessions", 1.0)) > 0
            if with_mh and hf > self.hf_max * (1 + 1e-12):
                reasons.append(f"H·f = {hf:.4g} A/(m·s) > hf_max {self.hf_max:.4g}")
                excess += hf / self.hf_max - 1.0
        if self.max_sessions is not None:
            [n] = self._needs(values, ("n_sessions",), "max_sessions")
            if n > self.max_sessions:
                reasons.append(f"n_sessions = {n:g} > max_sessions {self.max_sessions}")
                excess += (n - self.max_sessions) / max(1.0, float(self.max_sessions))
        if self.max_total_antibody_mg_per_kg is not None:
            dose, count = self._needs(
                values, ("pdl1_dose_mg_per_kg", "pdl1_count"), "max_total_antibody_mg_per_kg"
            )
            total = dose * count
            limit = self.max_total_antibody_mg_per_kg
            if total > limit * (1 + 1e-12):
                reasons.append(
                    f"anti-PD-L1 total {total:g} mg/kg (pdl1_dose_mg_per_kg {dose:g} × "
                    f"pdl1_count {count:g}) > max_total_antibody_mg_per_kg {limit:g}"
                )
                excess += total / limit - 1.0
        for i, pred in enumerate(self.custom):
            name = getattr(pred, "__name__", type(pred).__name__)
            try:
                ok = pred(dict(values))
            except Exception as exc:
                raise ParameterError(
                    f"constraints.custom[{i}] ({name}): raised {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(ok, (bool, np.bool_)):
                raise ParameterError(
                    f"constraints.custom[{i}] ({name}): must return True or False (got {ok!r})"
                )
            if not ok:
                reasons.append(f"custom constraint {name} not met")
                excess += 1.0
        return reasons, excess

    def violations(self, values: Mapping[str, Any]) -> list[str]:
        """Why *values* is infeasible.

        Parameters
        ----------
        values
            The full factor dict (factor name -> number in the factor's unit); it must
            hold the factors the set limits need.

        Returns
        -------
        list of str
            One human-readable reason per violated limit; ``[]`` when feasible.
        """
        return self.check(values)[0]
