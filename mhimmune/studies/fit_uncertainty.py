"""Calibration uncertainty of a virtual trial: its responder fractions re-run at the ends
of each fitted parameter's calibration interval.

The calibration (``make calibrate``; :func:`mhimmune.studies.validation_fit.run_calibration`)
fits a few parameters to published calibration rows and gives each an interval: the
spread of refits with every target at the ends of its published range
(``analyses/validation/results/calibration.csv``, read by :func:`load_fit_intervals`).
That interval is uncertainty about the population value, the same for every animal of
an experiment, so it is propagated per study, not per animal: :func:`fit_uncertainty`
re-runs the whole trial (same cohort seed, so the animals differ only by the changed
parameter) with one fitted parameter at a time set to each end of its interval.

:func:`intervals_for` picks the intervals that apply to a tumour preset: the preset's
own fits, and the fits of the reference tables for parameters the preset leaves at the
table value (within 2 %, the calibration's staleness tolerance). Assumed parameters
carry no interval here; their influence is what the sensitivity analyses measure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.core.resources import resource_dir
from mhimmune.studies.virtual_cohort import sample_cohort

__all__ = ["load_fit_intervals", "intervals_for", "fit_uncertainty", "FitUncertainty"]

#: a preset value within this relative distance of the table value counts as the table's
SAME_AS_TABLE = 0.02
_COLUMNS = ("block", "parameter", "tumour", "fitted", "interval_low", "interval_high", "table")


def load_fit_intervals(path: str | Path | None = None) -> pd.DataFrame:
    """The calibration's fitted parameters and intervals.

    Parameters
    ----------
    path
        A ``calibration.csv`` written by ``mhimmune validate --calibrate`` (columns
        ``block``, ``parameter``, ``tumour``, ``fitted``, ``interval_low``,
        ``interval_high``, ``table``); default the shipped
        ``analyses/validation/results/calibration.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per fit; ``tumour`` is ``""`` for a fit of the reference tables; a fit
        without an interval (a single exact target) has NaN ends.
    """
    path = Path(path) if path is not None else _shipped()
    if not path.is_file():
        raise ParameterError(f"calibration results {path}: no such file (run make calibrate)")
    df = pd.read_csv(path, dtype={"tumour": str})
    missing = [c for c in _COLUMNS if c not in df.columns]
    if missing:
        raise ParameterError(f"calibration results {path}: missing columns {missing}")
    df["tumour"] = df["tumour"].fillna("")
    return df[list(_COLUMNS)]


def _shipped() -> Path:
    folder = resource_dir("validation")
    for candidate in (folder / "results" / "calibration.csv", folder / "calibration.csv"):
        if candidate.is_file():
            return candidate
    return folder / "results" / "calibration.csv"


def intervals_for(
    tumour: str | None,
    preset: Mapping[str, float],
    intervals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The calibration intervals that apply to mice of the *tumour* preset.

    Parameters
    ----------
    tumour
        A preset name, or ``None`` for the reference tables.
    preset
        The preset's parameter overrides (:func:`mhimmune.mh.presets.preset_overrides`).
    intervals
        :func:`load_fit_intervals` output (default: the shipped one).

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter``, ``block``, ``value`` (what the mice get now), ``low``,
        ``high``; one row per parameter with a finite interval wider than zero.
    """
    df = load_fit_intervals() if intervals is None else intervals
    rows = []
    for _, r in df.iterrows():
        p, own = r["parameter"], r["tumour"]
        if own and own != (tumour or ""):
            continue
        if not own and p in preset:
            # a reference-table fit applies where the preset keeps the table's value
            if not math.isclose(preset[p], r["table"], rel_tol=SAME_AS_TABLE):
                continue
        low, high = r["interval_low"], r["interval_high"]
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
            continue
        value = float(preset.get(p, r["table"]))
        rows.append({"parameter": p, "block": r["block"], "value": value, "low": low, "high": high})
    out = pd.DataFrame(rows, columns=["parameter", "block", "value", "low", "high"])
    if out["parameter"].duplicated().any():  # a preset's own fit wins over the tables'
        out = out.drop_duplicates("parameter", keep="last")
    return out.reset_index(drop=True)


def _range(row) -> str:
    lo, hi = round(100 * row["min"]), round(100 * row["max"])
    return f"{lo} %" if lo == hi else f"{lo}–{hi} %"


@dataclass
class FitUncertainty:
    """Result of :func:`fit_uncertainty`.

    Attributes
    ----------
    table
        One row per arm: ``nominal`` (the trial's responder fraction) and, per fitted
        parameter and end, ``<parameter>@low`` and ``<parameter>@high``; plus ``min``
        and ``max`` over all of them.
    intervals
        The intervals used (:func:`intervals_for`).
    n
        Animals per arm.
    """

    table: pd.DataFrame
    intervals: pd.DataFrame
    n: int

    def finding(self, arm: str) -> str | None:
        """One sentence for a report's key findings: *arm*'s responder range across the
        interval ends and the arm whose fraction swings most (``None`` without intervals
        or without *arm*)."""
        t = self.table
        if self.intervals.empty or arm not in t.index:
            return None
        swing = (t["max"] - t["min"]).idxmax()
        names = ", ".join(f"`{p}`" for p in self.intervals["parameter"])
        text = (
            f"Calibration uncertainty: at the ends of the fitted intervals ({names}) "
            f"{arm} gives {_range(t.loc[arm])} responders"
        )
        if t.loc[swing, "max"] - t.loc[swing, "min"] > 0:
            text += f"; the widest swing is {swing} ({_range(t.loc[swing])})"
        return text + "."

    def markdown(self) -> list[str]:
        """A report section (markdown lines)."""
        L = ["### Calibration uncertainty", ""]
        if self.intervals.empty:
            return L + ["No fitted parameter of these mice has a calibration interval.", ""]
        ends = "; ".join(
            f"`{r['parameter']}` {r['value']:.4g} (block '{r['block']}', interval "
            f"{r['low']:.4g}–{r['high']:.4g})"
            for _, r in self.intervals.iterrows()
        )
        L += [
            "The trial re-run with each fitted parameter at each end of its calibration "
            f"interval (the spread of refits over the targets' published ranges), the same "
            f"{self.n} animals per arm: {ends}. Assumed parameters carry no interval here "
            "(see the sensitivity analyses).",
            "",
        ]
        cols = [c for c in self.table.columns if "@" in c]
        L += [
            "| arm | nominal | " + " | ".join(cols) + " | range |",
            "|---|---:|" + "---:|" * len(cols) + "---|",
        ]
        for arm, r in self.table.iterrows():
            cells = " | ".join(f"{100 * r[c]:.0f} %" for c in cols)
            L.append(
                f"| {arm} | {100 * r['nominal']:.0f} % | {cells} | "
                f"{100 * r['min']:.0f}–{100 * r['max']:.0f} % |"
            )
        return L + [""]


def fit_uncertainty(
    run: Callable[[pd.DataFrame, Mapping[str, float]], Any],
    intervals: pd.DataFrame,
    n: int,
    seed: int,
    *,
    cohort_kwargs: Mapping[str, Any] | None = None,
    nominal: Any = None,
) -> FitUncertainty:
    """Re-run a trial at the ends of each fitted parameter's calibration interval.

    Parameters
    ----------
    run
        ``run(cohort, params) -> TrialResult``: the trial with extra parameter values
        *params* on top of the spec's.
    intervals
        :func:`intervals_for` output.
    n, seed
        Animals per arm and the cohort seed (the trial's own, so that only the
        parameter changes).
    cohort_kwargs
        Further keywords of :func:`~mhimmune.studies.virtual_cohort.sample_cohort`
        (``variability``, ``correlation``, ``base``); each run sets the parameter in
        ``base`` too, so that animals vary around the changed value.
    nominal
        The trial already run at the shipped values (re-run when ``None``).

    Returns
    -------
    FitUncertainty
    """
    if n < 1:
        raise ParameterError(f"n: {n} must be at least 1 animal per arm")
    kw = dict(cohort_kwargs or {})
    base = dict(kw.pop("base", None) or {})
    if nominal is None:
        nominal = run(sample_cohort(n, seed=seed, base=base or None, **kw), {})
    columns = {"nominal": nominal.responder_table()["fraction"]}
    for _, r in intervals.iterrows():
        for end in ("low", "high"):
            value = {r["parameter"]: float(r[end])}
            cohort = sample_cohort(n, seed=seed, base={**base, **value}, **kw)
            columns[f"{r['parameter']}@{end}"] = run(cohort, value).responder_table()["fraction"]
    table = pd.DataFrame(columns)
    fractions = table.copy()
    table["min"] = fractions.min(axis=1)
    table["max"] = fractions.max(axis=1)
    return FitUncertainty(table=table, intervals=intervals, n=n)
