"""Readouts comparable with experiments, and fold changes against an untreated arm.

MH immunology papers report a handful of numbers per treatment arm: the CRT-positive
fraction of tumour cells, extracellular ATP and HMGB1, the mature fraction of
dendritic cells, CTL infiltration, Treg and MDSC fractions, the M1/M2 ratio,
macrophage phagocytosis and (for checkpoint antibodies) target occupancy, usually as
fold change over the untreated control (e.g. mild MH with phase-transition nanodroplets,
J Nanobiotechnol 2023 [spiorpp2023]: CRT +72 %, HMGB1 +46 %, mature DC 4 % -> 61 %,
CTL 10 % -> 36 %). :data:`EXPERIMENT_READOUTS` names the model
variable behind each and the day it is sampled, as an experiment would (linear
interpolation between recorded points; the same day in every arm):

* danger signals and DC maturation one day after the first MH session of the demo
  (:data:`DAMP_READOUT_DAY`, day 8), when they are assayed;
* cell compositions, phagocytosis and occupancy a week after the first session
  (:data:`CELL_READOUT_DAY`, day 14).

All values refer to the treated (heated) tumour and its draining immune pool. They are
model indices: compare arms (fold change), not absolute numbers with a lab's assay.

:data:`ASSAY_RATIOS` names the flow-cytometry percentages as gates report them,
computed from the model's cell numbers (derived variables of the readout language,
e.g. ``cd8_pct_of_cd45_treated@+7``). Approximations: CD45+ is the sum of the modelled
immune cells (CD8 effector and exhausted cells in the treated tumour, CD4 helper,
bystander CD4, Treg, NK, macrophage, MDSC and DC pools of the model's one systemic /
tumour-draining compartment), not a count of every leukocyte in a digest; CD4+ is
helper + bystander CD4 + Treg; DCs (CD11c+) are the immature + mature DC pool; the
macrophages are the M1 + M2 macrophages of the treated tumour. Unmodelled populations
(B cells, neutrophils, γδ T cells) are absent from every denominator, so percentages run
higher than a lab's.

Example::

    import mhimmune.mh.readouts
    results = {name: mh.simulate(model, plan) for name, plan in plans.items()}
    mhimmune.mh.readouts.compare(results, reference="untreated")     # tidy DataFrame
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mhimmune.runs.readout import Ratio

if TYPE_CHECKING:  # mh.simulation imports this module
    from mhimmune.mh.simulation import SimulationResult

__all__ = [
    "ExperimentReadout",
    "EXPERIMENT_READOUTS",
    "ASSAY_RATIOS",
    "ASSAY_LABELS",
    "assay_readouts",
    "DAMP_READOUT_DAY",
    "CELL_READOUT_DAY",
    "experiment_readouts",
    "summary_specs",
    "compare",
]

#: day at which danger signals and DC maturation are read (24 h after the demo's first session)
DAMP_READOUT_DAY = 8.0
#: day at which cell compositions are read (one week after the demo's first session)
CELL_READOUT_DAY = 14.0


@dataclass(frozen=True)
class ExperimentReadout:
    """One experiment-like readout: the recorded *variable* at a day.

    *group* is ``"damp"`` (read at the DAMP readout day) or ``"cells"`` (at the cell
    readout day). The summary key is ``<name>_day<d>``; it is the ensemble readout
    ``<variable>@<d>`` (:class:`mhimmune.runs.ensemble.Readout` kind ``at``).
    """

    name: str
    variable: str
    group: str
    unit: str
    description: str

    def day(self, damp_day: float = DAMP_READOUT_DAY, cell_day: float = CELL_READOUT_DAY) -> float:
        """The sampling day of this readout."""
        return damp_day if self.group == "damp" else cell_day

    def label(self, day: float) -> str:
        """The summary key at sampling *day*: ``<name>_day<d>``."""
        return f"{self.name}_day{day:g}".replace(".", "p")


EXPERIMENT_READOUTS: tuple[ExperimentReadout, ...] = (
    ExperimentReadout(
        "crt_fraction",
        "crt_fraction_treated",
        "damp",
        "fraction",
        "CRT-positive (ecto-calreticulin) fraction of treated-tumour cells",
    ),
    ExperimentReadout(
        "atp_treated",
        "atp_e_treated",
        "damp",
        "mm^3 cell-equivalents",
        "extracellular ATP in the treated tumour",
    ),
    ExperimentReadout(
        "hmgb1_treated",
        "hmgb1_treated",
        "damp",
        "mm^3 cell-equivalents",
        "extracellular HMGB1 in the treated tumour",
    ),
    ExperimentReadout(
        "mature_dc_fraction",
        "mature_dc_fraction",
        "damp",
        "fraction",
        "mature fraction of dendritic cells in the treated tumour's draining lymph node",
    ),
    ExperimentReadout(
        "ctl_infiltration",
        "ctl_infiltration_treated",
        "cells",
        "fraction",
        "CD8 T cells (effector + exhausted) among immune cells of the treated tumour",
    ),
    ExperimentReadout(
        "treg_fraction",
        "treg_fraction",
        "cells",
        "fraction",
        "regulatory T cells among CD4 T cells",
    ),
    ExperimentReadout(
        "mdsc_fraction",
        "mdsc_fraction",
        "cells",
        "fraction",
        "MDSCs among immune cells of the treated tumour",
    ),
    ExperimentReadout(
        "m1_m2_ratio", "m1_m2_ratio", "cells", "1", "M1/M2 macrophage ratio in the treated tumour"
    ),
    ExperimentReadout(
        "phagocytosis_per_macrophage",
        "phagocytosis_per_macrophage",
        "cells",
        "1/d",
        "tumour cells engulfed per macrophage per day with targets in excess "
        "(CRT raises, CD47 lowers)",
    ),
    ExperimentReadout(
        "pdl1_occupancy",
        "pdl1_occupancy",
        "cells",
        "fraction",
        "anti-PD-L1 target occupancy in the tumour",
    ),
)


#: flow-cytometry percentages from the model's cell numbers (Mcell): name -> Ratio (×100)
ASSAY_RATIOS: dict[str, Ratio] = {
    "cd8_pct_of_cd45_treated": Ratio(
        ("cd8_effector_treated", "cd8_exhausted_treated"), ("immune_cells_treated",), 100.0
    ),
    "treg_pct_of_cd4": Ratio(("treg",), ("treg", "cd4_helper", "cd4_bystander_cells"), 100.0),
    "mature_dc_pct_of_dc": Ratio(("dc_mature",), ("dc_mature", "dc_immature"), 100.0),
    "m1_pct_of_macrophages": Ratio(("macrophage_m1",), ("macrophage_m1", "macrophage_m2"), 100.0),
}
#: how a lab names each gate
ASSAY_LABELS: dict[str, str] = {
    "cd8_pct_of_cd45_treated": "CD8+ % of CD45+ (treated tumour)",
    "treg_pct_of_cd4": "Treg (FoxP3+) % of CD4+",
    "mature_dc_pct_of_dc": "mature DC (CD80/CD86+) % of CD11c+",
    "m1_pct_of_macrophages": "M1 % of macrophages (F4/80+, treated tumour)",
}


def assay_readouts(result, day: float = CELL_READOUT_DAY) -> pd.Series:
    """The :data:`ASSAY_RATIOS` percentages of one simulation at *day* (linear
    interpolation of numerator and denominator); a ratio whose variables the model lacks
    is left out."""
    w = result.wide
    t = w.index.values
    if day > t[-1] + 1e-9:
        raise ValueError(f"day: {day:g} is after the end of the simulation ({t[-1]:g} d)")
    out: dict[str, float] = {}
    for name, q in ASSAY_RATIOS.items():
        if not all(v in w for v in q.numerator + q.denominator):
            continue
        top = sum(float(np.interp(day, t, w[v].values)) for v in q.numerator)
        below = sum(float(np.interp(day, t, w[v].values)) for v in q.denominator)
        out[name] = q.scale * top / below if below > 0 else float("nan")
    return pd.Series(out, name=result.protocol.name, dtype=float)


def experiment_readouts(
    result, damp_day: float = DAMP_READOUT_DAY, cell_day: float = CELL_READOUT_DAY
) -> pd.Series:
    """The experiment-like readouts of one simulation (those whose variables it has).

    Parameters
    ----------
    result
        A :class:`mhimmune.SimulationResult`.
    damp_day, cell_day
        Sampling days (d) of the danger-signal and cell readouts; a readout is left out
        when the protocol ends before its day.

    Returns
    -------
    pandas.Series
        Scalars indexed by the summary key (:meth:`ExperimentReadout.label`).
    """
    w = result.wide
    t = w.index.values
    out: dict[str, float] = {}
    for r in EXPERIMENT_READOUTS:
        day = r.day(damp_day, cell_day)
        if r.variable not in w or day > t[-1] + 1e-9:
            continue
        out[r.label(day)] = float(np.interp(day, t, w[r.variable].values))
    return pd.Series(out, name=result.protocol.name, dtype=float)


def summary_specs(
    damp_day: float = DAMP_READOUT_DAY, cell_day: float = CELL_READOUT_DAY
) -> list[tuple[str, str, str, float]]:
    """``(summary key, "at", variable, day)`` of every experiment readout: what an
    evaluator that computes :meth:`~mhimmune.SimulationResult.summary` readouts from
    arrays needs to reproduce them (value at *day*, linear interpolation)."""
    return [
        (r.label(r.day(damp_day, cell_day)), "at", r.variable, r.day(damp_day, cell_day))
        for r in EXPERIMENT_READOUTS
    ]


def _named(results) -> dict[str, SimulationResult]:
    if isinstance(results, Mapping):
        return dict(results)
    if isinstance(results, Sequence) and not isinstance(results, str):
        named: dict[str, SimulationResult] = {}
        for r in results:
            name = r.protocol.name
            if name in named:
                raise ValueError(
                    f"two results share the protocol name {name!r}; pass a dict name -> result"
                )
            named[name] = r
        return named
    raise TypeError(
        f"results: expected a dict name -> SimulationResult or a list of them, "
        f"got {type(results).__name__}"
    )


def _find(named: dict[str, SimulationResult], reference: str) -> str:
    if reference in named:
        return reference
    for key, r in named.items():
        if r.protocol.name == reference:
            return key
    for key, r in named.items():
        if reference.lower() in (key.lower(), r.protocol.name.lower()):
            return key
    raise KeyError(f"reference arm {reference!r} not among the results: {', '.join(named)}")


def compare(
    results,
    reference: str = "untreated",
    damp_day: float = DAMP_READOUT_DAY,
    cell_day: float = CELL_READOUT_DAY,
) -> pd.DataFrame:
    """Experiment-like readouts of several arms and their fold change over a reference arm.

    Parameters
    ----------
    results
        ``{name: SimulationResult}`` or a list of results (named by protocol name).
    reference
        The arm to divide by (a key of *results* or a protocol name), by default the
        untreated control.
    damp_day, cell_day
        Sampling days (d) of the danger-signal and cell readouts.

    Returns
    -------
    pandas.DataFrame
        Tidy: one row per arm and readout with columns ``arm, readout, time_day,
        unit, value, reference_value, fold_change, description`` (``arm``: the key of
        *results*, or the protocol name for a list). ``fold_change`` is
        ``value / reference_value``; it is NaN where the reference value is 0 (e.g.
        antibody occupancy against an untreated arm).
    """
    named = _named(results)
    ref_key = _find(named, reference)
    table = {k: experiment_readouts(r, damp_day, cell_day) for k, r in named.items()}
    ref = table[ref_key]
    specs = {r.label(r.day(damp_day, cell_day)): r for r in EXPERIMENT_READOUTS}
    rows = []
    for key, values in table.items():
        for label, value in values.items():
            spec = specs[label]
            base = float(ref.get(label, np.nan))
            fold = value / base if np.isfinite(base) and base != 0.0 else np.nan
            rows.append(
                dict(
                    arm=key,
                    readout=label,
                    time_day=spec.day(damp_day, cell_day),
                    unit=spec.unit,
                    value=value,
                    reference_value=base,
                    fold_change=fold,
                    description=spec.description,
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "arm",
            "readout",
            "time_day",
            "unit",
            "value",
            "reference_value",
            "fold_change",
            "description",
        ],
    )
