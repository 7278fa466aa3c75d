"""Hypothesis reports: which MH + anti-PD-L1 combinations and schedules to test, and why.

:func:`run_hypotheses` reads a spec (TOML file or dict), then

1. optimises the schedule over a virtual cohort (:func:`mhimmune.studies.optimize.optimize_schedule`)
   under the spec's constraints (H·f limit, maximum sessions, total antibody);
2. runs a virtual trial (:func:`mhimmune.studies.cohort.run_trial`) of the spec's arms plus the
   optimised schedule (and the runner-up), with Kaplan–Meier curves, log-rank tests and
   responder fractions with Wilson intervals;
3. maps Bliss and HSA synergy over the spec's dose and schedule grids
   (:func:`mhimmune.studies.synergy.synergy_grid`);
4. writes ``report.md`` with figures and tables to the output folder, ranking the
   candidates by responder fraction, each with the mechanistic reason read from the
   model's own outputs (which links of the chain move relative to control and to the
   best single agent).

Every number in the report is a prediction of a hypothesis-generating model; the
report says so, and shows uncertainty as cohort intervals and bootstrap robustness.

Spec (TOML)::

    title = "MH + anti-PD-L1 schedules worth testing"
    [template]                      # ScheduleTemplate keywords with units
    duration = "60 d"
    [cohort]                        # sample_cohort: n, seed, optional variability file,
    n = 40                          # [cohort.sigma] overrides and [cohort.correlation]
    seed = 1
    [responder]                     # ResponderRule
    threshold_mm3 = 10
    day_after_first_treatment = 50
    [trial]
    arms = ["control", "mh", "anti_pdl1", "mh+anti_pdl1"]
    [[synergy]]
    x = "field_kA_per_m"
    x_values = [8, 12, 15]
    y = "pdl1_dose_mg_per_kg"
    y_values = [2.5, 10, 20]
    [optimize]
    method = "grid"
    objective = "responder"         # or "burden" (mean total tumour at the responder day)
    [optimize.space]
    session_interval_day = [1, 2, 3]
    [optimize.constraints]
    hf_max = 5e9
    [run]
    n_jobs = 2
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError

__all__ = [
    "load_hypothesis_spec",
    "run_hypotheses",
    "HypothesisReport",
    "mechanistic_reason",
    "QUICK_LIMITS",
]

_TOP_KEYS = {
    "title",
    "template",
    "cohort",
    "responder",
    "trial",
    "synergy",
    "optimize",
    "run",
    "params",
}
_TOTAL = "tumour_volume_treated+tumour_volume_distant"

#: sizes used by ``quick=True`` (and ``CI=true``): animals, grid levels per axis,
#: optimisation candidates, bootstrap resamples
QUICK_LIMITS = {"n_animals": 6, "grid_levels": 2, "budget": 6, "n_boot": 50}


def load_hypothesis_spec(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Read and check a hypothesis spec (TOML path or dict); returns a plain dict.

    Unknown top-level keys and sections of the wrong type are errors naming the key.
    """
    if isinstance(source, Mapping):
        data, where = dict(source), "spec"
    else:
        from mhimmune.core.io import read_toml

        data, where = read_toml(source), str(source)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ParameterError(
            f"{where}: unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}"
        )
    for key in ("template", "cohort", "responder", "trial", "optimize", "run", "params"):
        if key in data and not isinstance(data[key], Mapping):
            raise ParameterError(f"{where}: [{key}] must be a table")
    syn = data.get("synergy", [])
    if isinstance(syn, Mapping):
        syn = [syn]
    if not isinstance(syn, list) or not all(isinstance(s, Mapping) for s in syn):
        raise ParameterError(f"{where}: [[synergy]] must be tables")
    data["synergy"] = [dict(s) for s in syn]
    for i, s in enumerate(data["synergy"]):
        missing = {"x", "x_values", "y", "y_values"} - set(s)
        if missing:
            raise ParameterError(f"{where}: synergy[{i}] lacks {sorted(missing)}")
        extra = set(s) - {"x", "x_values", "y", "y_values", "effect", "name", "fixed"}
        if extra:
            raise ParameterError(
                f"{where}: synergy[{i}]: unknown keys {sorted(extra)}; allowed: "
                f"x, x_values, y, y_values, effect, name, fixed"
            )
    opt = data.get("optimize")
    if opt is not None:
        extra = set(opt) - {
            "space",
            "constraints",
            "method",
            "objective",
            "aggregate",
            "budget",
            "seed",
            "n_boot",
            "fixed",
        }
        if extra:
            raise ParameterError(f"{where}: [optimize]: unknown keys {sorted(extra)}")
        if not isinstance(opt.get("space"), Mapping) or not opt["space"]:
            raise ParameterError(f"{where}: [optimize.space] must list at least one factor")
        if opt.get("objective", "responder") not in ("responder", "burden"):
            raise ParameterError(
                f"{where}: optimize.objective must be 'responder' or 'burden' "
                f"(got {opt.get('objective')!r})"
            )
    data["_where"] = where
    return data


# ====================================================================== reasons

# (column, text when the candidate is higher, text when lower, kind, threshold): "ratio"
# compares fold changes, "level" absolute differences
_REASON_LINKS = (
    (
        "cem43_min",
        "more heat (CEM43 {a:.0f} vs {b:.0f} min)",
        "less heat (CEM43 {a:.0f} vs {b:.0f} min)",
        "level",
        5.0,
    ),
    (
        "damp_d1",
        "more immunogenic cell death (DAMPs at +1 d ×{r:.1f})",
        "less immunogenic cell death (DAMPs at +1 d ÷{r:.1f})",
        "ratio",
        1.5,
    ),
    (
        "mature_dc_d7",
        "more mature DCs (+7 d: {a:.2f} vs {b:.2f})",
        "fewer mature DCs (+7 d: {a:.2f} vs {b:.2f})",
        "ratio",
        1.5,
    ),
    (
        "cd8_effectors_d7",
        "more CD8 effectors (+7 d ×{r:.1f})",
        "fewer CD8 effectors (+7 d ÷{r:.1f})",
        "ratio",
        1.5,
    ),
    (
        "pdl1_occupancy_d7",
        "PD-L1 blocked (occupancy {a:.2f} vs {b:.2f})",
        "PD-L1 not blocked (occupancy {a:.2f} vs {b:.2f})",
        "level",
        0.3,
    ),
    (
        "m1_m2_d7",
        "M1 shift of macrophages (M1/M2 ×{r:.1f})",
        "M2 shift of macrophages (M1/M2 ÷{r:.1f})",
        "ratio",
        1.5,
    ),
    ("treg_fraction_d7", "more Tregs (×{r:.1f})", "fewer Tregs (÷{r:.1f})", "ratio", 1.5),
)


def mechanistic_reason(candidate: pd.Series, reference: pd.Series) -> str:
    """Which links of the chain differ between *candidate* and *reference*, and which way.

    Both are rows of :meth:`mhimmune.studies.cohort.TrialResult.mechanisms` (cohort medians).
    A link is named when its readout changes by ≥ 1.5-fold either way (CEM43 by ≥ 5 min,
    PD-L1 occupancy by ≥ 0.3), in the order of the chain: heat → ICD → DC maturation →
    CD8 priming → checkpoint → macrophages → suppression. Returns ``"no link differs"``
    when none does.
    """
    parts = []
    tiny = 1e-12
    for col, up, down, kind, threshold in _REASON_LINKS:
        if col not in candidate or col not in reference:
            continue
        a, b = float(candidate[col]), float(reference[col])
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        if kind == "level":
            if a - b >= threshold:
                parts.append(up.format(a=a, b=b))
            elif b - a >= threshold:
                parts.append(down.format(a=a, b=b))
        elif a > 0 and a >= threshold * max(b, tiny):
            parts.append(up.format(r=a / max(b, tiny), a=a, b=b))
        elif b > 0 and b >= threshold * max(a, tiny):
            parts.append(down.format(r=b / max(a, tiny), a=a, b=b))
    return "; ".join(parts) if parts else "no link differs"


# ======================================================================= report


@dataclass
class HypothesisReport:
    """What :func:`run_hypotheses` computed and wrote.

    Attributes
    ----------
    ranking
        Candidates ranked by responder fraction: arm, responder fraction with CI,
        median time to endpoint, log-rank p vs control, reason vs control, reason vs
        the best single agent.
    trial
        The :class:`~mhimmune.studies.cohort.TrialResult` (spec arms + optimised schedules).
    optimization
        The :class:`~mhimmune.studies.optimize.OptimizationResult` or ``None``.
    synergy
        :class:`~mhimmune.studies.synergy.SynergyResult` per grid name.
    files
        Paths written, by name.
    """

    ranking: pd.DataFrame
    trial: Any
    optimization: Any = None
    synergy: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    title: str = ""

    def __repr__(self) -> str:
        top = self.ranking.head(3)
        lines = [f"<HypothesisReport {self.title!r}: {len(self.ranking)} candidates>"]
        for _, r in top.iterrows():
            lines.append(
                f"  {r['rank']}. {r['arm']}: {100 * r['responders']:.0f} % responders "
                f"({100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f} %); {r['reason_vs_control']}"
            )
        return "\n".join(lines)


def _sized(values: list[float], limit: int | None) -> list[float]:
    if limit is None or len(values) <= limit:
        return list(values)
    idx = np.unique(np.linspace(0, len(values) - 1, limit).round().astype(int))
    return [values[i] for i in idx]


def run_hypotheses(
    spec: str | Path | Mapping[str, Any],
    out: str | Path,
    *,
    quick: bool | None = None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> HypothesisReport:
    """Optimise, trial and map synergy as *spec* says; write ``report.md`` and figures to *out*.

    Parameters
    ----------
    spec
        TOML path or dict (see the module documentation).
    out
        Output folder (created); every file is written atomically, ``report.md`` last.
    quick
        Shrink the work to :data:`QUICK_LIMITS` (for tests and CI); default: true when
        the environment variable ``CI`` is ``true``.
    n_jobs
        Local worker processes (default the spec's ``[run] n_jobs``, else 1).
    progress
        Progress bars (default: on unless ``TQDM_DISABLE`` is set).

    Returns
    -------
    HypothesisReport
    """
    import os

    import matplotlib.pyplot as plt

    from mhimmune.core.io import atomic_path, save_figure, write_csv
    from mhimmune.runs.ensemble import ModelEvaluator, ScheduleTemplate
    from mhimmune.studies.cohort import STANDARD_ARMS, Arm, ResponderRule, run_trial, sample_cohort
    from mhimmune.studies.synergy import synergy_grid

    t0 = time.perf_counter()
    data = load_hypothesis_spec(spec)
    where = data.pop("_where")
    if quick is None:
        quick = os.environ.get("CI", "").lower() == "true"
    run = dict(data.get("run", {}))
    n_jobs = int(n_jobs if n_jobs is not None else run.get("n_jobs", 1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    title = str(data.get("title", "MH + anti-PD-L1 hypotheses"))

    tpl = dict(data.get("template", {}))
    template = ScheduleTemplate(tpl.pop("duration", "60 d"), **tpl)
    coh = dict(data.get("cohort", {}))
    n_animals = int(coh.get("n", 20))
    if quick:
        n_animals = min(n_animals, QUICK_LIMITS["n_animals"])
    variability = coh.get("variability")
    if "sigma" in coh:
        from mhimmune.studies.cohort import load_variability

        base = load_variability(variability) if variability else load_variability()
        extra = pd.DataFrame.from_dict(
            {
                k: {"distribution": "lognormal", "sigma": float(v), "source": "spec", "notes": ""}
                for k, v in dict(coh["sigma"]).items()
            },
            orient="index",
        )
        variability = pd.concat(
            [base.drop(index=[k for k in extra.index if k in base.index]), extra]
        )
    bad = set(coh) - {"n", "seed", "variability", "sigma", "correlation"}
    if bad:
        raise ParameterError(
            f"{where}: [cohort]: unknown keys {sorted(bad)}; allowed: n, seed, "
            f"variability, sigma, correlation"
        )
    cohort = sample_cohort(
        n_animals,
        variability=variability,
        correlation=coh.get("correlation"),
        seed=int(coh.get("seed", 0)),
    )
    rr = dict(data.get("responder", {}))
    try:
        responder = ResponderRule(**rr)
    except TypeError:
        raise ParameterError(
            f"{where}: [responder]: allowed keys threshold_mm3, "
            f"day_after_first_treatment, endpoint_mm3 (got {sorted(rr)})"
        ) from None
    params = dict(data.get("params", {}))
    files: dict[str, Path] = {}

    from mhimmune.runs.ensemble import pool_for

    with pool_for(n_jobs) as pool:  # one set of workers for all ensembles
        # 1. schedule optimisation --------------------------------------------------
        opt_result = None
        extra_arms: list[Arm] = []
        if data.get("optimize"):
            from mhimmune.studies.optimize import Constraints, optimize_schedule

            o = dict(data["optimize"])
            objective = o.get("objective", "responder")
            day = responder.day_after_first_treatment
            readouts = {
                "responder": f"cure<={responder.threshold_mm3:g}@+{day:g}",
                "burden": f"{_TOTAL}@+{day:g}",
            }
            ev = ModelEvaluator(template, readouts, params=params)
            space = {
                k: (list(v) if isinstance(v, list) else tuple(v) if isinstance(v, tuple) else v)
                for k, v in dict(o["space"]).items()
            }
            method = o.get("method", "grid")
            budget = o.get("budget")
            n_boot = int(o.get("n_boot", 200))
            if quick:
                space = {
                    k: _sized(v, QUICK_LIMITS["grid_levels"]) if isinstance(v, list) else v
                    for k, v in space.items()
                }
                budget = (
                    min(int(budget), QUICK_LIMITS["budget"])
                    if budget
                    else (QUICK_LIMITS["budget"] if method != "grid" else None)
                )
                n_boot = min(n_boot, QUICK_LIMITS["n_boot"])
            opt_result = optimize_schedule(
                ev,
                space,
                cohort=cohort,
                objective=objective,
                aggregate=o.get("aggregate", "mean"),
                maximize=objective == "responder",
                constraints=Constraints.from_dict(dict(o.get("constraints", {}))),
                method=method,
                fixed=o.get("fixed"),
                budget=budget,
                seed=int(o.get("seed", 0)),
                n_boot=n_boot,
                n_jobs=n_jobs,
                pool=pool,
                progress=progress,
            )
            extra_arms.append(
                Arm("optimised", dict(opt_result.best), description="optimised schedule")
            )
            runner = (opt_result.robustness or {}).get("runner_up")
            if runner:
                extra_arms.append(
                    Arm("runner-up", dict(runner), description="second-best schedule")
                )
            write_csv(opt_result.table, out / "optimisation.csv", index=False)
            files["optimisation"] = out / "optimisation.csv"
            fig = plt.figure(figsize=(7, 4))
            opt_result.plot(ax=fig.gca())
            files["optimisation_figure"] = save_figure(fig, out / "optimisation.png")
            plt.close(fig)

        # 2. virtual trial ------------------------------------------------------------
        tr = dict(data.get("trial", {}))
        arms: list[Arm] = []
        for a in tr.get("arms", ["control", "mh", "anti_pdl1", "mh+anti_pdl1"]):
            if isinstance(a, str):
                if a not in STANDARD_ARMS:
                    raise ParameterError(
                        f"{where}: trial.arms: {a!r} is not a standard arm "
                        f"({', '.join(STANDARD_ARMS)}); define it in "
                        f"[[trial.custom_arms]] with name and factors"
                    )
                arms.append(STANDARD_ARMS[a])
        for c in tr.get("custom_arms", []):
            arms.append(
                Arm(
                    str(c.get("name", "")),
                    dict(c.get("factors", {})),
                    description=str(c.get("description", "")),
                )
            )
        arms += extra_arms
        trial = run_trial(
            arms,
            cohort,
            template=template,
            responder=responder,
            params=params,
            n_jobs=n_jobs,
            pool=pool,
            progress=progress,
        )
        files.update({f"trial_{k}": v for k, v in trial.save(out / "trial").items()})
        fig = trial.figure()
        files["km_figure"] = save_figure(fig, out / "kaplan_meier.png")
        plt.close(fig)
        axes = trial.plot_volumes()
        files["volumes_figure"] = save_figure(axes[0].figure, out / "tumour_volumes.png")
        plt.close(axes[0].figure)

        # 3. synergy maps -----------------------------------------------------------------
        synergy = {}
        for i, s in enumerate(data["synergy"]):
            xs, ys = list(s["x_values"]), list(s["y_values"])
            if quick:
                xs, ys = (
                    _sized(xs, QUICK_LIMITS["grid_levels"]),
                    _sized(ys, QUICK_LIMITS["grid_levels"]),
                )
            name = str(s.get("name", f"{s['x']}_x_{s['y']}"))
            res = synergy_grid(
                (s["x"], xs),
                (s["y"], ys),
                cohort=cohort,
                template=template,
                effect=s.get("effect", "responder"),
                responder=responder,
                fixed=dict(s.get("fixed", {})),
                params=params,
                n_jobs=n_jobs,
                pool=pool,
                progress=progress,
            )
            synergy[name] = res
            write_csv(res.table, out / f"synergy_{name}.csv", index=False)
            fig = res.plot()
            files[f"synergy_{name}"] = save_figure(fig, out / f"synergy_{name}.png")
            plt.close(fig)

    # 4. ranking with reasons ----------------------------------------------------------
    ranking = _rank(trial)
    write_csv(ranking, out / "ranking.csv", index=False)
    files["ranking"] = out / "ranking.csv"
    seconds = time.perf_counter() - t0
    text = _markdown(
        title,
        template,
        cohort,
        responder,
        trial,
        ranking,
        opt_result,
        synergy,
        files,
        out,
        seconds,
        quick,
    )
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(text, encoding="utf-8")
    files["report"] = out / "report.md"
    return HypothesisReport(
        ranking=ranking,
        trial=trial,
        optimization=opt_result,
        synergy=synergy,
        files=files,
        seconds=seconds,
        title=title,
    )


_SINGLE = {"mh", "anti_pdl1"}
#: the standard combination that add-ons and alternative schedules are compared with
BASE_COMBINATION = "mh+anti_pdl1"


def _fisher_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of two responder counts."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])


def _rank(trial) -> pd.DataFrame:
    rt = trial.responder_table()
    mech = trial.mechanisms()
    lr = trial.logrank().set_index("group_a") if "control" in trial.arm_names else None
    singles = [a for a in trial.arm_names if a in _SINGLE]
    burden = trial.successful().groupby("arm")["total_at_responder_day_mm3"].median()
    # the best single agent: most responders, then the longest time to the endpoint
    best_single = (
        max(singles, key=lambda a: (rt.loc[a, "fraction"], rt.loc[a, "median_time_to_event_day"]))
        if singles
        else None
    )
    rows = []
    for arm in trial.arm_names:
        if arm == "control":
            continue
        r = rt.loc[arm]
        rows.append(
            {
                "arm": arm,
                "description": next(a.description for a in trial.arms if a.name == arm),
                "responders": r["fraction"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "n": int(r["n_ok"]),
                "median_days_to_endpoint": r["median_time_to_event_day"],
                "median_total_at_responder_day_mm3": float(burden.get(arm, np.nan)),
                "logrank_p_vs_control": float(lr.loc[arm, "p_adjusted"])
                if lr is not None
                else np.nan,
                "reason_vs_control": mechanistic_reason(mech.loc[arm], mech.loc["control"])
                if "control" in mech.index
                else "",
                "reason_vs_best_single": (
                    mechanistic_reason(mech.loc[arm], mech.loc[best_single])
                    if best_single and arm != best_single and arm not in _SINGLE
                    else ""
                ),
                "best_single": best_single or "",
                "reason_vs_combination": (
                    mechanistic_reason(mech.loc[arm], mech.loc[BASE_COMBINATION])
                    if BASE_COMBINATION in mech.index
                    and arm != BASE_COMBINATION
                    and arm not in _SINGLE
                    else ""
                ),
                "fisher_p_vs_combination": (
                    _fisher_p(
                        int(r["responders"]),
                        int(r["n_ok"]),
                        int(rt.loc[BASE_COMBINATION, "responders"]),
                        int(rt.loc[BASE_COMBINATION, "n_ok"]),
                    )
                    if BASE_COMBINATION in rt.index and arm != BASE_COMBINATION
                    else np.nan
                ),
            }
        )
    df = pd.DataFrame(rows)
    df = df.sort_values(
        ["responders", "median_days_to_endpoint", "median_total_at_responder_day_mm3"],
        ascending=[False, False, True],
        kind="stable",
    ).reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def _p(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.2g}"


def _key_findings(trial, ranking, opt, synergy) -> list[str]:
    """A few sentences computed from the results (no hand-written conclusions)."""
    out = []
    r = ranking.set_index("arm")
    top = ranking.iloc[0]
    tied = ranking[ranking["responders"] >= top["responders"] - 1e-12]["arm"].tolist()
    out.append(
        f"Most responders: {', '.join(tied)} ({100 * top['responders']:.0f} %, 95 % CI "
        f"{100 * top['ci_low']:.0f}–{100 * top['ci_high']:.0f} %)."
    )
    if BASE_COMBINATION in r.index:
        c = r.loc[BASE_COMBINATION]
        singles = [a for a in ("mh", "anti_pdl1") if a in r.index]
        if singles:
            best = max(singles, key=lambda a: r.loc[a, "responders"])
            p = _fisher_p(
                int(round(c["responders"] * c["n"])),
                int(c["n"]),
                int(round(r.loc[best, "responders"] * r.loc[best, "n"])),
                int(r.loc[best, "n"]),
            )
            out.append(
                f"MH + anti-PD-L1 gives {100 * c['responders']:.0f} % responders vs "
                f"{100 * r.loc[best, 'responders']:.0f} % for the better single agent "
                f"({best}; Fisher p = {p:.2g}); relative to it the combination adds: "
                f"{c['reason_vs_best_single'] or 'no link differs'}."
            )
        same, other = [], []
        for arm, row in r.iterrows():
            if (
                arm == BASE_COMBINATION
                or arm in _SINGLE
                or not math.isfinite(row["fisher_p_vs_combination"])
            ):
                continue
            delta = row["responders"] - c["responders"]
            text = (
                f"{arm} {100 * delta:+.0f} points (Fisher p = "
                f"{row['fisher_p_vs_combination']:.2g}; {row['reason_vs_combination']})"
            )
            (same if row["fisher_p_vs_combination"] > 0.05 else other).append(text)
        if other:
            out.append(
                "Differ from MH + anti-PD-L1 beyond cohort noise (p ≤ 0.05): "
                + "; ".join(other)
                + "."
            )
        if same:
            out.append(
                "Within cohort noise of MH + anti-PD-L1 (p > 0.05): " + "; ".join(same) + "."
            )
    if opt is not None:
        rob = opt.robustness or {}
        out.append(
            f"Optimised schedule ({_fmt_schedule(opt.best)}): {opt.best_value:.3g} "
            f"(bootstrap CI {rob.get('ci_low', float('nan')):.3g}–"
            f"{rob.get('ci_high', float('nan')):.3g}); it stays best in "
            f"{100 * rob.get('p_best', float('nan')):.0f} % of resamples, so "
            + (
                "the optimum is robust across the cohort."
                if rob.get("p_best", 0) >= 0.8
                else "several schedules are about as good: test the family, not one point."
            )
        )
    for name, res in synergy.items():
        b = res.best("bliss_excess")
        out.append(
            f"Synergy {name}: largest Bliss excess {b['bliss_excess']:+.2f} at "
            f"{res.x} = {b[res.x]:g}, {res.y} = {b[res.y]:g}"
            + (
                f" (CEM43 {b['cem43_min']:.0f} min)"
                if "cem43_min" in b and math.isfinite(b["cem43_min"]) and b["cem43_min"] > 0
                else ""
            )
            + "."
        )
    return out


def _fmt_schedule(factors: Mapping[str, float]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in factors.items()) or "template defaults"


def _markdown(
    title, template, cohort, responder, trial, ranking, opt, synergy, files, out, seconds, quick
) -> str:
    from mhimmune.studies.cohort import MECHANISM_READOUTS

    rel = {k: Path(v).relative_to(out).as_posix() for k, v in files.items()}
    L = [
        f"# {title}",
        "",
        "> **Model predictions, not measurements.** mhimmune is a hypothesis-generating "
        "model: many immune constants are assumed (see `mhimmune params`), and the cohort "
        "spreads below are partly assumed. Use the ranking to choose which experiments to "
        "run, not to predict their outcome.",
        "",
    ]
    if quick:
        L += [
            "> Quick run (`quick=True` or `CI=true`): small cohort and coarse grids; "
            "intervals are wide.",
            "",
        ]
    var = cohort.attrs.get("variability", {})
    L += [
        "## Set-up",
        "",
        f"- Template: {template.duration_h / 24:g} d, agent `{template.agent}`; defaults "
        f"{_fmt_schedule({k: v for k, v in template.defaults.items() if k in ('mh_start_day', 'field_kA_per_m', 'frequency_kHz', 'session_duration_min', 'n_sessions', 'session_interval_day', 'pdl1_delay_day', 'pdl1_dose_mg_per_kg', 'pdl1_count', 'pdl1_interval_day')})}.",
        f"- Virtual cohort: {len(cohort)} animals (seed {cohort.attrs.get('seed')}); "
        f"log-normal between-animal variability of "
        + ", ".join(f"`{k}` (σ {v['sigma']:g})" for k, v in var.items())
        + ".",
        f"- Responder: total tumour (treated + distant) ≤ {responder.threshold_mm3:g} mm³ "
        f"{responder.day_after_first_treatment:g} d after the first treatment "
        f"(day {trial.responder_day:.4g}); time-to-event endpoint: total tumour ≥ "
        f"{responder.endpoint_mm3:g} mm³.",
        "",
    ]
    L += (
        ["## Key findings (computed)", ""]
        + [f"- {t}" for t in _key_findings(trial, ranking, opt, synergy)]
        + [""]
    )
    L += [
        "## Ranking of candidates",
        "",
        "Ranked by responder fraction (95 % Wilson interval), then by median days to the "
        "endpoint, then by the median total tumour at the responder day. *Why* lists the "
        "links of the chain that move, from the model's own readouts (cohort medians; "
        "+1 d / +7 d after each arm's first MH session, or first treatment without MH).",
        "",
        f"Fisher p compares responder counts with {BASE_COMBINATION}; *why (vs "
        f"{BASE_COMBINATION})* says what an add-on or another schedule changes.",
        "",
        "| rank | candidate | responders | 95 % CI | median days to endpoint | log-rank p vs control | Fisher p vs combination | why (vs control) | why (vs best single agent) | why (vs combination) |",
        "|---:|---|---:|---|---:|---:|---:|---|---|---|",
    ]
    for _, r in ranking.iterrows():
        med = (
            "not reached"
            if not math.isfinite(r["median_days_to_endpoint"])
            else f"{r['median_days_to_endpoint']:.1f}"
        )
        vs_single = r["reason_vs_best_single"]
        if vs_single:
            vs_single = f"vs {r['best_single']}: {vs_single}"
        L.append(
            f"| {r['rank']} | {r['arm']} ({r['description']}) | {100 * r['responders']:.0f} % "
            f"({int(round(r['responders'] * r['n']))}/{r['n']}) | {100 * r['ci_low']:.0f}–"
            f"{100 * r['ci_high']:.0f} % | {med} | {r['logrank_p_vs_control']:.2g} | "
            f"{_p(r['fisher_p_vs_combination'])} | {r['reason_vs_control']} | {vs_single} | "
            f"{r['reason_vs_combination']} |"
        )
    L += [
        "",
        f"![Kaplan–Meier curves and responder fractions]({rel['km_figure']})",
        "",
        f"![Tumour volume of every animal]({rel['volumes_figure']})",
        "",
    ]
    mech = trial.mechanisms()
    labels = {c: lab for c, _, _, lab in MECHANISM_READOUTS}
    L += [
        "### Mechanistic readouts (cohort medians)",
        "",
        "| arm | " + " | ".join(labels[c] for c in mech.columns) + " |",
        "|---|" + "---:|" * len(mech.columns),
    ]
    for arm, row in mech.iterrows():
        L.append(f"| {arm} | " + " | ".join(f"{v:.3g}" for v in row.values) + " |")
    L.append("")
    if opt is not None:
        rob = opt.robustness or {}
        L += [
            "## Optimised schedule",
            "",
            f"- Objective: {'responder fraction (maximised)' if opt.maximize else 'mean total tumour at the responder day (minimised)'}; "
            f"method `{opt.method}`; {int(opt.table['feasible'].sum())} feasible of "
            f"{len(opt.table)} candidates.",
            f"- Optimum: {_fmt_schedule(opt.best)} → {opt.best_value:.3g}"
            + (
                f" (bootstrap 95 % CI {rob['ci_low']:.3g}–{rob['ci_high']:.3g})"
                if "ci_low" in rob and rob["ci_low"] is not None
                else ""
            )
            + ".",
            f"- Robustness across the cohort: the optimum stays best in "
            f"{100 * rob.get('p_best', float('nan')):.0f} % of {rob.get('n_boot', 0)} bootstrap "
            f"resamples of the animals"
            + (f"; runner-up {_fmt_schedule(rob['runner_up'])}" if rob.get("runner_up") else "")
            + ".",
            "",
            f"![Candidates ranked]({rel['optimisation_figure']})",
            "",
        ]
    for name, res in synergy.items():
        L += [
            f"## Synergy: {res.x} × {res.y}",
            "",
            res.summary() + ".",
            "",
            f"![Synergy {name}]({rel[f'synergy_{name}']})",
            "",
        ]
    L += ["## Files", ""] + [f"- `{p}`" for k, p in rel.items() if k != "report"]
    L += ["", f"Computed in {seconds:.0f} s."]
    return "\n".join(L) + "\n"
