"""Synergy of MH and anti-PD-L1 over dose and schedule grids: Bliss and HSA excess.

For every point (x, y) of a two-factor grid of a :class:`~mhimmune.mh.template.ScheduleTemplate`
(field or session length or particle dose × antibody dose; MH interval × antibody
delay; ...) four schedules are simulated on every animal of a cohort: the combination,
agent A alone (default MH: the same factors with no antibody), agent B alone (default
anti-PD-L1: the same factors with no MH session) and the untreated control. Identical
schedules are simulated once.

Effects are fractions in [0, 1]:

* ``effect="responder"``: the responder fraction (total tumour ≤ threshold at day D
  after the first treatment); Bliss's expectation is that two independent agents
  respond as ``p_A + p_B − p_A·p_B``;
* ``effect="inhibition"``: tumour-burden inhibition per animal, ``1 − V/V_control``
  at the responder day (volumes of the same animal), averaged over the cohort after
  the per-animal Bliss expectation is formed.

``bliss_excess = E_AB − (E_A + E_B − E_A·E_B)`` and ``hsa_excess = E_AB − max(E_A, E_B)``
(highest single agent); positive means synergy. These are model predictions: they
rank hypotheses, they do not replace a factorial animal experiment.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.core.units import hours_to_days
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.template import PROTOCOL_FACTORS, ScheduleTemplate
from mhimmune.runs.ensemble import run_ensemble
from mhimmune.runs.executor import Executor
from mhimmune.studies import stats
from mhimmune.studies.execution import study_executor
from mhimmune.studies.trial_design import VOLUME_ZERO_TOLERANCE_MM3, ResponderRule
from mhimmune.studies.virtual_cohort import check_cohort, nominal_cohort

__all__ = [
    "bliss_expected",
    "bliss_excess",
    "hsa_excess",
    "synergy_grid",
    "SynergyResult",
    "OFF_MH",
    "OFF_ANTI_PDL1",
]

#: factors that switch MH off (agent A alone → none) and anti-PD-L1 off (agent B)
OFF_MH: Mapping[str, float] = {"n_sessions": 0}
OFF_ANTI_PDL1: Mapping[str, float] = {"pdl1_count": 0}
_TOTAL = "tumour_volume_treated+tumour_volume_distant"


def _fractions(name: str, x) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if np.any(~np.isfinite(a)):
        raise ParameterError(f"{name}: effects must be finite numbers")
    if np.any(a > 1.0 + 1e-12):
        raise ParameterError(f"{name}: effects are fractions ≤ 1 (got max {a.max():g})")
    return a


def bliss_expected(e_a, e_b) -> np.ndarray:
    """Bliss-independence expectation of the combined effect: ``E_A + E_B − E_A·E_B``.

    Effects are fractions ≤ 1 (fraction responding, or fraction of tumour burden
    removed; negative values mean the agent made things worse)."""
    a, b = _fractions("e_a", e_a), _fractions("e_b", e_b)
    return a + b - a * b


def bliss_excess(e_a, e_b, e_ab) -> np.ndarray:
    """Observed minus Bliss-expected combined effect (> 0: synergy, < 0: antagonism).

    Examples
    --------
    >>> float(bliss_excess(0.5, 0.4, 0.7))   # independent action: 1 - 0.5·0.6 = 0.7
    0.0
    """
    return _fractions("e_ab", e_ab) - bliss_expected(e_a, e_b)


def hsa_excess(e_a, e_b, e_ab) -> np.ndarray:
    """Observed combined effect minus the highest single agent's effect (HSA / Gaddum)."""
    return _fractions("e_ab", e_ab) - np.maximum(_fractions("e_a", e_a), _fractions("e_b", e_b))


@dataclass
class SynergyResult:
    """Outcome of :func:`synergy_grid`.

    Attributes
    ----------
    table
        One row per grid point: the two factors, ``e_a``, ``e_b``, ``e_ab`` (effects of
        A alone, B alone, both), ``bliss_expected``, ``bliss_excess``, ``hsa_excess``,
        ``cem43_total_min`` (cohort-mean thermal dose of the combination), ``n_ok``.
    runs
        Every simulated (schedule, animal) with its status and readouts.
    x, y
        Factor names of the axes.
    effect
        ``"responder"`` or ``"inhibition"``.
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    x: str
    y: str
    effect: str
    labels: tuple[str, str] = ("MH", "anti-PD-L1")

    def matrix(self, metric: str = "bliss_excess") -> pd.DataFrame:
        """*metric* as a y × x matrix (rows: y values, columns: x values)."""
        if metric not in self.table:
            raise ParameterError(
                f"metric: {metric!r} is not a column; choose from "
                f"{', '.join(c for c in self.table.columns if c not in (self.x, self.y))}"
            )
        return self.table.pivot(index=self.y, columns=self.x, values=metric).sort_index(
            ascending=False
        )

    def best(self, metric: str = "bliss_excess") -> pd.Series:
        """The grid point with the largest *metric*."""
        return self.table.loc[self.table[metric].idxmax()]

    def metric_label(self, metric: str) -> str:
        """Words (with the unit) for *metric*, e.g. ``Bliss excess in responder fraction``."""
        a, b = self.labels
        what = "responder fraction" if self.effect == "responder" else "tumour inhibition"
        words = {
            "e_ab": f"{what}, {a} + {b} (0–1)",
            "e_a": f"{what}, {a} alone (0–1)",
            "e_b": f"{what}, {b} alone (0–1)",
            "bliss_expected": f"Bliss-expected {what} (0–1)",
            "bliss_excess": f"Bliss excess in {what} (> 0: synergy)",
            "hsa_excess": f"HSA excess in {what} (> 0: synergy)",
            "cem43_min": "thermal dose CEM43 (min)",
            "n_ok": "animals simulated successfully",
        }
        return words.get(metric, metric.replace("_", " "))

    def heatmap(self, metric: str = "bliss_excess", ax=None, annot: bool = True):
        """Heat-map of *metric*; excess metrics use a diverging palette centred on 0."""
        import matplotlib.pyplot as plt
        import seaborn as sns

        from mhimmune.mh.plotting import factor_label  # deferred: imports matplotlib

        ax = ax or plt.subplots(figsize=(5, 4))[1]
        m = self.matrix(metric)
        if metric.endswith("excess"):
            lim = max(float(np.nanmax(np.abs(m.to_numpy()))), 1e-3)
            kw = dict(cmap="RdBu_r", center=0.0, vmin=-lim, vmax=lim)
        elif metric in ("e_ab", "e_a", "e_b", "bliss_expected"):
            kw = dict(cmap="viridis", vmin=0.0, vmax=1.0)
        else:
            kw = dict(cmap="viridis")
        label = self.metric_label(metric)
        sns.heatmap(
            m,
            ax=ax,
            annot=annot,
            fmt=".2f",
            annot_kws={"fontsize": 7},
            cbar_kws={"label": label},
            **kw,
        )
        ax.set_title(_METRIC_TITLES.get(metric, label).format(*self.labels), fontsize=9)
        ax.set_xticklabels([f"{float(t.get_text()):g}" for t in ax.get_xticklabels()])
        ax.set_yticklabels([f"{float(t.get_text()):g}" for t in ax.get_yticklabels()], rotation=0)
        ax.set_xlabel(factor_label(self.x))
        ax.set_ylabel(factor_label(self.y))
        if "cem43_total_min" in self.table and self.x in _MH_AXES:
            cem = self.table.groupby(self.x)["cem43_total_min"].mean()
            ax.set_xlabel(
                f"{factor_label(self.x)}\n(thermal dose CEM43: "
                + ", ".join(f"{c:.0f}" for c in cem.values)
                + " min)"
            )
        return ax

    def plot(self):
        """Three heat-maps: combined effect, Bliss excess, HSA excess."""
        import matplotlib.pyplot as plt

        from mhimmune.mh.plotting import HYPOTHESIS_NOTE  # deferred: imports matplotlib

        fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
        for ax, metric in zip(axes, ("e_ab", "bliss_excess", "hsa_excess")):
            self.heatmap(metric, ax=ax)
        fig.suptitle(f"{self.labels[0]} × {self.labels[1]} synergy; {HYPOTHESIS_NOTE}", fontsize=9)
        fig.tight_layout()
        return fig

    def summary(self) -> str:
        """Short text: where Bliss and HSA excess are largest."""
        b, h = self.best("bliss_excess"), self.best("hsa_excess")
        return (
            f"Synergy over {self.x} × {self.y} ({self.effect}; model predictions): largest "
            f"Bliss excess {b['bliss_excess']:+.2f} at {self.x}={b[self.x]:g}, "
            f"{self.y}={b[self.y]:g} (E_A {b['e_a']:.2f}, E_B {b['e_b']:.2f}, E_AB "
            f"{b['e_ab']:.2f}); largest HSA excess {h['hsa_excess']:+.2f} at "
            f"{self.x}={h[self.x]:g}, {self.y}={h[self.y]:g}"
        )

    def __repr__(self) -> str:
        return f"<SynergyResult {self.x} × {self.y}>\n{self.summary()}"


#: panel titles: the question each heat-map answers ({0}, {1}: the two agents)
_METRIC_TITLES = {
    "e_ab": "How well does {0} + {1} work?",
    "e_a": "How well does {0} alone work?",
    "e_b": "How well does {1} alone work?",
    "bliss_expected": "What would independent action give?",
    "bliss_excess": "Better than independent action? (Bliss)",
    "hsa_excess": "Better than the best single agent? (HSA)",
}

_MH_AXES = {
    "field_kA_per_m",
    "session_duration_min",
    "particle_dose_mg_per_cm3",
    "n_sessions",
    "frequency_kHz",
}


def _axis(name: str, spec) -> tuple[str, list[float]]:
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise ParameterError(f"{name}: expected (factor name, values), got {spec!r}")
    factor, values = spec
    if factor not in PROTOCOL_FACTORS:
        raise ParameterError(
            f"{name}: {factor!r} is not a protocol factor; close matches: "
            f"{difflib.get_close_matches(str(factor), list(PROTOCOL_FACTORS), n=3)}"
        )
    vals = [float(v) for v in np.atleast_1d(np.asarray(values, dtype=float))]
    if not vals or len(set(vals)) != len(vals) or not all(math.isfinite(v) for v in vals):
        raise ParameterError(f"{name}: values of {factor} must be distinct finite numbers")
    return factor, vals


def synergy_grid(
    x: tuple[str, Sequence[float]],
    y: tuple[str, Sequence[float]],
    *,
    cohort: pd.DataFrame | None = None,
    template=None,
    effect: str = "responder",
    responder=None,
    off_a: Mapping[str, float] = OFF_ANTI_PDL1,
    off_b: Mapping[str, float] = OFF_MH,
    labels: tuple[str, str] = ("MH", "anti-PD-L1"),
    fixed: Mapping[str, float] | None = None,
    inhibition_day: float | None = None,
    evaluator: Callable | None = None,
    params: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    progress: bool | None = None,
) -> SynergyResult:
    """Bliss and HSA excess of two agents over a two-factor grid of schedules.

    Parameters
    ----------
    x, y
        ``(protocol factor, values)`` of the axes, e.g. ``("field_kA_per_m", [8, 12, 16])``
        and ``("pdl1_dose_mg_per_kg", [2.5, 5, 10, 20])``.
    cohort
        Virtual cohort (:func:`mhimmune.studies.cohort.sample_cohort`); ``None``: one nominal animal
        (then ``effect="responder"`` gives 0/1 effects; prefer ``"inhibition"``).
    template
        Schedule family; default ``ScheduleTemplate("60 d")``.
    effect
        ``"responder"`` (responder fraction) or ``"inhibition"`` (1 − V/V_control per animal).
    responder
        :class:`~mhimmune.studies.cohort.ResponderRule` (threshold and day after the first
        treatment).
    off_a, off_b
        Factors that give "agent A alone" (default no antibody: MH alone) and "agent B
        alone" (default no MH: antibody alone); both together give the control.
    labels
        Names of agents A and B for figures.
    inhibition_day
        For ``effect="inhibition"``: read the tumour burden this many days after the
        first treatment (default: the responder day). Earlier days show how much each
        agent slows growth before uncured tumours reach their carrying capacity (where
        every non-curative treatment has an inhibition near 0).
    fixed
        Protocol factors held for every schedule of the grid, e.g. ``{"feedback": 1}``
        (thermostatted sessions at the template's target temperature, so that the thermal
        dose follows ``session_duration_min`` — a CEM43 axis).
    evaluator
        Replace the model by any callable
        ``f(values) -> {"total_mm3": ..., "cem43_total_min": ...}`` (values: the full
        protocol factors and cohort columns); used by tests.
    params
        Fixed parameter overrides.
    executor
        Where the grid's runs go: ``None`` in this process; a
        :class:`~mhimmune.runs.executor.WorkerPool` (local processes, e.g. one shared
        with other studies) or :class:`~mhimmune.runs.dask_executor.DaskExecutor`, e.g. from
        :func:`~mhimmune.runs.executor.make_executor`. It is used, not closed.
    progress
        Show a tqdm bar (``None``: unless ``TQDM_DISABLE`` is set).

    Returns
    -------
    SynergyResult
    """
    executor = study_executor(executor)
    fx, xs = _axis("x", x)
    fy, ys = _axis("y", y)
    if fx == fy:
        raise ParameterError(f"x, y: the two axes must be different factors (both {fx})")
    if effect not in ("responder", "inhibition"):
        raise ParameterError(f"effect: must be 'responder' or 'inhibition' (got {effect!r})")
    responder = responder or ResponderRule()
    template = template or ScheduleTemplate("60 d", name="synergy")
    if not isinstance(template, ScheduleTemplate):
        raise ParameterError(
            f"template: expected a ScheduleTemplate, got {type(template).__name__}"
        )
    cohort = nominal_cohort() if cohort is None else check_cohort(cohort, PROTOCOL_FACTORS)
    fixed = dict(fixed or {})
    clash = sorted({fx, fy} & set(fixed))
    if clash:
        raise ParameterError(f"fixed: {clash} are grid axes; they cannot also be fixed")
    template.values(fixed)  # validates names and values
    for name, off in (("off_a", off_a), ("off_b", off_b)):
        if not off:
            raise ParameterError(f"{name}: give the factors that switch the other agent off")
        template.values(off)  # validates names and values

    # the four schedules of every grid point; factor sets that build the same protocol
    # (e.g. any antibody dose with no antibody given) are simulated once
    roles = {"ab": {}, "a": dict(off_a), "b": dict(off_b), "none": {**off_a, **off_b}}
    keys: dict[Any, int] = {}
    schedules: list[dict[str, float]] = []
    firsts: list[float | None] = []
    points = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HfWarning)
        for xv in xs:
            for yv in ys:
                ids = {}
                for role, off in roles.items():
                    vals = template.values({**fixed, fx: xv, fy: yv, **off})
                    plan = template.build(vals)
                    if plan not in keys:
                        keys[plan] = len(schedules)
                        schedules.append(vals)
                        firsts.append(plan.first_treatment_h)
                    ids[role] = keys[plan]
                points.append((xv, yv, ids))
    starts = [f for f in firsts if f is not None]
    if not starts:
        raise ParameterError("grid: no schedule has a treatment")
    if inhibition_day is not None:
        if effect != "inhibition":
            raise ParameterError("inhibition_day: only for effect='inhibition'")
        if not (
            isinstance(inhibition_day, (int, float))
            and math.isfinite(inhibition_day)
            and inhibition_day >= 0
        ):
            raise ParameterError(
                f"inhibition_day: must be a number of days ≥ 0 (got {inhibition_day!r})"
            )
    offset = responder.day_after_first_treatment if inhibition_day is None else inhibition_day
    day = hours_to_days(min(starts)) + offset
    if day > hours_to_days(template.duration_h) + 1e-9:
        raise ParameterError(
            f"reading day {day:g} is after the end of the template "
            f"({hours_to_days(template.duration_h):g} d); lengthen its duration"
        )
    ev = evaluator or ModelEvaluator(
        template,
        {"total_mm3": f"{_TOTAL}@{day:.12g}", "cem43_total_min": "cem43_total_min"},
        params=params,
    )
    n = len(cohort)
    animals = cohort.reset_index(drop=True)
    design = pd.concat([animals.assign(**s) for s in schedules], ignore_index=True)
    res = run_ensemble(ev, design, executor=executor, progress=progress, desc="synergy grid")
    runs = res.results.copy()
    runs.insert(1, "schedule", np.repeat(np.arange(len(schedules)), n))
    runs.insert(2, "animal", np.tile(np.asarray(cohort.index), len(schedules)))
    total = runs["total_mm3"].to_numpy(float).reshape(len(schedules), n)
    # integration round-off leaves cleared tumours a hair below zero: those are zero, as
    # in trials (a larger undershoot stays and is refused as a volume)
    total = np.where((total < 0) & (total > -VOLUME_ZERO_TOLERANCE_MM3), 0.0, total)
    ok = (runs["status"] == "ok").to_numpy().reshape(len(schedules), n)
    cem = (
        runs["cem43_total_min"].to_numpy(float).reshape(len(schedules), n)
        if "cem43_total_min" in runs
        else np.full((len(schedules), n), np.nan)
    )

    rows = []
    for xv, yv, ids in points:
        good = ok[ids["ab"]] & ok[ids["a"]] & ok[ids["b"]] & ok[ids["none"]]
        row = {fx: xv, fy: yv, "n_ok": int(good.sum())}
        if not good.any():
            rows.append(
                row
                | {
                    k: np.nan
                    for k in (
                        "e_a",
                        "e_b",
                        "e_ab",
                        "bliss_expected",
                        "bliss_excess",
                        "hsa_excess",
                        "cem43_total_min",
                    )
                }
            )
            continue
        if effect == "responder":
            e = {
                r: float(np.mean(stats.responders(total[i][good], responder.threshold_mm3)))
                for r, i in ids.items()
                if r != "none"
            }
            e_none = float(
                np.mean(stats.responders(total[ids["none"]][good], responder.threshold_mm3))
            )
            if e_none > 0:  # responders without treatment: effects above the control's rate
                e = {r: (v - e_none) / (1.0 - e_none) if e_none < 1 else 0.0 for r, v in e.items()}
            exp = bliss_expected(e["a"], e["b"])
            row |= {
                "e_a": e["a"],
                "e_b": e["b"],
                "e_ab": e["ab"],
                "bliss_expected": float(exp),
                "bliss_excess": e["ab"] - float(exp),
                "hsa_excess": e["ab"] - max(e["a"], e["b"]),
            }
        else:
            ctrl = total[ids["none"]][good]
            with np.errstate(divide="ignore", invalid="ignore"):
                inh = {r: 1.0 - total[i][good] / ctrl for r, i in ids.items() if r != "none"}
            if np.any(ctrl <= 0):
                raise ParameterError(
                    "inhibition: the control tumour vanished for some animals; "
                    "use effect='responder'"
                )
            exp = bliss_expected(inh["a"], inh["b"])
            row |= {
                "e_a": float(inh["a"].mean()),
                "e_b": float(inh["b"].mean()),
                "e_ab": float(inh["ab"].mean()),
                "bliss_expected": float(exp.mean()),
                "bliss_excess": float((inh["ab"] - exp).mean()),
                "hsa_excess": float((inh["ab"] - np.maximum(inh["a"], inh["b"])).mean()),
            }
        row["cem43_total_min"] = float(np.mean(cem[ids["ab"]][good]))
        rows.append(row)
    table = pd.DataFrame(rows)
    return SynergyResult(
        table=table, runs=runs, x=fx, y=fy, effect=effect, labels=(labels[0], labels[1])
    )
