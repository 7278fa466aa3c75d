"""Hypothesis reports: which MH + anti-PD-L1 combinations and schedules to test, and why.

:func:`run_hypotheses` reads a spec (TOML file or dict), then

1. optimises the schedule over a virtual cohort
   (:func:`mhimmune.studies.optimize.optimize_schedule`) under the spec's constraints (H·f
   limit, maximum sessions, total antibody);
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
    fit_uncertainty = true          # re-run at the ends of the fitted parameters'
                                    # calibration intervals (default true)
    [template]                      # ScheduleTemplate keywords with units
    duration = "60 d"
    [cohort]                        # sample_cohort: n, seed, optional variability file,
    n = 40                          # [cohort.sigma] overrides and [cohort.correlation]
    seed = 1
    [responder]                     # ResponderRule
    threshold_mm3 = 10
    day_after_first_treatment = 50
    site = "total"                  # or "treated", "distant"
    [trial]
    arms = ["control", "mh", "anti_pdl1", "mh+anti_pdl1"]
    distant = { day = 3, volume_mm3 = 1 }   # or "none" (one tumour), "day0" (default)
    rechallenge_day = 60            # cured animals rechallenged (1 mm³, read 30 d later)
    caliper_cv = 0.15               # log-normal caliper noise on recorded volumes
    [stability]                     # re-run the trial over cohort seeds and sizes
    seeds = 5
    sizes = [10, 20]
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

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.core.io import atomic_path, save_figure, write_csv
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.presets import preset_overrides
from mhimmune.mh.template import ScheduleTemplate
from mhimmune.runs.executor import Executor, make_executor
from mhimmune.runs.readout import Readout
from mhimmune.studies.execution import study_executor
from mhimmune.studies.fit_uncertainty import fit_uncertainty, intervals_for
from mhimmune.studies.hypothesis_report import mechanistic_reason, rank_arms, report_markdown
from mhimmune.studies.hypothesis_spec import QUICK_LIMITS, load_hypothesis_spec, trial_options
from mhimmune.studies.optimize import Constraints, optimize_schedule
from mhimmune.studies.preset_evidence import preset_evidence
from mhimmune.studies.seed_stability import seed_stability
from mhimmune.studies.synergy import synergy_grid
from mhimmune.studies.trial import run_trial
from mhimmune.studies.trial_design import STANDARD_ARMS, TRIAL_VOLUMES, Arm, ResponderRule
from mhimmune.studies.trial_options import DistantTumour, ImplantTemplate, distant_inputs
from mhimmune.studies.virtual_cohort import load_variability, sample_cohort

__all__ = [
    "load_hypothesis_spec",
    "run_hypotheses",
    "HypothesisReport",
    "mechanistic_reason",
    "QUICK_LIMITS",
]

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
    evidence
        The validation targets that test the tumour preset's untreated growth and its
        anti-PD-(L)1-alone response, simulated
        (:func:`~mhimmune.studies.preset_evidence.preset_evidence`).
    fit_uncertainty
        The :class:`~mhimmune.studies.fit_uncertainty.FitUncertainty` (responder
        fractions at the ends of the fitted parameters' calibration intervals) or
        ``None`` (spec ``fit_uncertainty = false``).
    """

    ranking: pd.DataFrame
    trial: Any
    optimization: Any = None
    synergy: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    title: str = ""
    stability: Any = None
    evidence: pd.DataFrame | None = None
    fit_uncertainty: Any = None

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


@contextmanager
def _executor_for(executor: Executor | None, run: Mapping[str, Any]) -> Iterator[Executor]:
    """*executor* (checked, left open), or one built from the spec's ``[run] n_jobs`` and
    closed on exit."""
    if executor is not None:
        yield study_executor(executor)
        return
    with make_executor(int(run.get("n_jobs", 1))) as own:
        yield own


def run_hypotheses(
    spec: str | Path | Mapping[str, Any],
    out: str | Path,
    *,
    quick: bool | None = None,
    executor: Executor | None = None,
    progress: bool | None = None,
    seeds: int | None = None,
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
    executor
        Where every ensemble of the optimisation, the trial and the synergy maps runs: a
        :class:`~mhimmune.runs.executor.WorkerPool`, a
        :class:`~mhimmune.runs.dask_executor.DaskExecutor` or a
        :class:`~mhimmune.runs.executor.SerialExecutor` (e.g. from
        :func:`~mhimmune.runs.executor.make_executor`), used and not closed. ``None``:
        the spec's ``[run] n_jobs`` (default 1) builds one with
        :func:`~mhimmune.runs.executor.make_executor`, kept for all the ensembles of
        this call and closed at its end (``n_jobs = 1``: in this process).
    progress
        Progress bars (default: on unless ``TQDM_DISABLE`` is set).
    seeds
        Re-run the trial over this many cohort seeds (and the ``[stability] sizes``,
        default the spec's cohort size) to report how stable each arm's responder
        fraction is; overrides ``[stability] seeds``. Quick runs use at most
        ``QUICK_LIMITS["stability_seeds"]`` seeds of ``QUICK_LIMITS["stability_size"]``
        animals.

    Returns
    -------
    HypothesisReport
    """
    import matplotlib.pyplot as plt  # deferred: heavy, only for the figures

    t0 = time.perf_counter()
    data = load_hypothesis_spec(spec)
    where = data.pop("_where")
    if quick is None:
        quick = os.environ.get("CI", "").lower() == "true"
    run = dict(data.get("run", {}))
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
    preset = preset_overrides(data.get("tumour"), data.get("host"))
    cohort = sample_cohort(
        n_animals,
        variability=variability,
        correlation=coh.get("correlation"),
        seed=int(coh.get("seed", 0)),
        base=preset or None,
    )
    rr = dict(data.get("responder", {}))
    try:
        responder = ResponderRule(**rr)
    except TypeError:
        raise ParameterError(
            f"{where}: [responder]: allowed keys threshold_mm3, "
            f"day_after_first_treatment, endpoint_mm3, site (got {sorted(rr)})"
        ) from None
    params = {**preset, **dict(data.get("params", {}))}
    files: dict[str, Path] = {}
    design = trial_options(dict(data.get("trial", {})), where)
    # optimisation and synergy maps use the same mice (one or two tumours, inoculation day)
    design_cohort, design_params, implants = distant_inputs(
        design.get("distant", DistantTumour()), cohort, params
    )
    design_template = ImplantTemplate(template, implants) if implants else template

    with _executor_for(executor, run) as executor:  # one set of workers for all ensembles
        # 1. schedule optimisation --------------------------------------------------
        opt_result = None
        extra_arms: list[Arm] = []
        if data.get("optimize"):
            o = dict(data["optimize"])
            objective = o.get("objective", "responder")
            day = responder.day_after_first_treatment
            site_vars = {"treated": TRIAL_VOLUMES[:1], "distant": TRIAL_VOLUMES[1:]}.get(
                responder.site, TRIAL_VOLUMES
            )
            # a threshold flag on the rule's site ("cure" kind)
            readouts: dict[str, str | Readout] = {
                "responder": Readout(
                    "responder",
                    "cure",
                    site_vars,
                    float(day),
                    float(responder.threshold_mm3),
                    relative=True,
                ),
                "burden": f"{'+'.join(site_vars)}@+{day:g}",
            }
            ev = ModelEvaluator(design_template, readouts, params=design_params)
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
                cohort=design_cohort,
                objective=objective,
                aggregate=o.get("aggregate", "mean"),
                maximize=objective == "responder",
                constraints=Constraints.from_dict(dict(o.get("constraints", {}))),
                method=method,
                fixed=o.get("fixed"),
                budget=budget,
                seed=int(o.get("seed", 0)),
                n_boot=n_boot,
                executor=executor,
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

        def run_arms(c: pd.DataFrame, extra: Mapping[str, float] | None = None):
            return run_trial(
                arms,
                c,
                template=template,
                responder=responder,
                params={**params, **(extra or {})},
                executor=executor,
                progress=progress,
                **design,
            )

        trial = run_arms(cohort)
        files.update({f"trial_{k}": v for k, v in trial.save(out / "trial").items()})
        fig = trial.figure()
        files["km_figure"] = save_figure(fig, out / "kaplan_meier.png")
        plt.close(fig)
        axes = trial.plot_volumes()
        files["volumes_figure"] = save_figure(axes[0].figure, out / "tumour_volumes.png")
        plt.close(axes[0].figure)

        # 2b. seed stability ------------------------------------------------------------
        stab = dict(data.get("stability", {}))
        n_seeds = seeds if seeds is not None else stab.get("seeds")
        stability = None
        if n_seeds:
            sizes = [int(x) for x in stab.get("sizes", [n_animals])]
            n_seeds = int(n_seeds)
            if quick:
                n_seeds = min(n_seeds, QUICK_LIMITS["stability_seeds"])
                sizes = sorted({min(x, QUICK_LIMITS["stability_size"]) for x in sizes})
            stability = seed_stability(
                run_arms,
                n_seeds,
                sizes,
                cohort_kwargs={
                    "variability": variability,
                    "correlation": coh.get("correlation"),
                    "base": preset or None,
                },
            )
            write_csv(stability.table, out / "seed_stability.csv", index=False)
            files["seed_stability"] = out / "seed_stability.csv"

        # 2c. calibration uncertainty -----------------------------------------------------
        uncertainty = None
        if data.get("fit_uncertainty", True):
            own = dict(data.get("params", {}))  # a spec's own value is not the fit's
            intervals = intervals_for(data.get("tumour"), params)
            uncertainty = fit_uncertainty(
                run_arms,
                intervals[~intervals["parameter"].isin(own)].reset_index(drop=True),
                len(cohort),
                int(coh.get("seed", 0)),
                cohort_kwargs={
                    "variability": variability,
                    "correlation": coh.get("correlation"),
                    "base": preset or None,
                },
                nominal=trial,
            )
            write_csv(
                uncertainty.table.rename_axis("arm").reset_index(),
                out / "fit_uncertainty.csv",
                index=False,
            )
            files["fit_uncertainty"] = out / "fit_uncertainty.csv"

        # 3. synergy maps -----------------------------------------------------------------
        synergy = {}
        for s in data["synergy"]:
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
                cohort=design_cohort,
                template=design_template,
                effect=s.get("effect", "responder"),
                responder=responder,
                fixed=dict(s.get("fixed", {})),
                params=design_params,
                executor=executor,
                progress=progress,
            )
            synergy[name] = res
            write_csv(res.table, out / f"synergy_{name}.csv", index=False)
            fig = res.plot()
            files[f"synergy_{name}"] = save_figure(fig, out / f"synergy_{name}.png")
            plt.close(fig)

    # 4. the preset against published data, then the ranking with reasons ---------------
    evidence = preset_evidence(str(data.get("tumour", "ct26")))
    write_csv(evidence, out / "preset_evidence.csv", index=False)
    files["preset_evidence"] = out / "preset_evidence.csv"
    ranking = rank_arms(trial)
    write_csv(ranking, out / "ranking.csv", index=False)
    files["ranking"] = out / "ranking.csv"
    seconds = time.perf_counter() - t0
    text = report_markdown(
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
        stability=stability,
        uncertainty=uncertainty,
        mice=(data.get("tumour", "ct26"), data.get("host", "mouse")),
        evidence=evidence,
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
        stability=stability,
        fit_uncertainty=uncertainty,
        evidence=evidence,
    )
