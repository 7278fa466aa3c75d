"""Virtual trials: every animal of a cohort gets every arm, and the outcomes are classified.

:func:`run_trial` builds each arm's protocol, groups template arms with the same anchor
day into one ensemble, records the mechanistic readouts and the total tumour volume of
every animal and returns a :class:`~mhimmune.studies.trial_result.TrialResult` that
classifies the animals:

* **responder**: total tumour (treated + distant) ≤ 10 mm³ at day 50 after the first
  treatment of the trial (Kosinsky et al. 2018's definition; both configurable);
* optionally **RECIST-like** categories (CR/PR/SD/PD from the change in total volume
  between the first treatment and the responder day);
* **time to event**: days from the first treatment until the total tumour reaches the
  humane endpoint volume (default 2000 mm³ for treated + distant tumour together,
  assumed), censored at the end; a mouse that reaches it before the responder day is
  culled there and is no responder, even if its simulated tumour shrinks later.

The rule may read the treated or the distant tumour instead of the total
(``ResponderRule(site=...)``); the design options of :mod:`~mhimmune.studies.trial_options`
give one- or two-tumour mice with the distant tumour inoculated on a chosen day, a
rechallenge of cured animals and caliper noise on the recorded volumes.

Model outputs are predictions of a hypothesis-generating model.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import ParameterError
from mhimmune.core.units import hours_to_days
from mhimmune.mh.catalogue import Readout
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.field_safety import HfWarning
from mhimmune.mh.template import PROTOCOL_FACTORS, ScheduleTemplate
from mhimmune.runs.ensemble import run_ensemble
from mhimmune.runs.executor import Executor
from mhimmune.runs.readout import Readout as GenericReadout
from mhimmune.studies.execution import study_executor
from mhimmune.studies.trial_design import (
    ASSAY_MECHANISMS,
    MECHANISM_READOUTS,
    STANDARD_ARMS,
    TRIAL_VOLUMES,
    Arm,
    ResponderRule,
    standard_arms,
)
from mhimmune.studies.trial_options import (
    DistantTumour,
    ImplantTemplate,
    Rechallenge,
    caliper_noise,
    distant_inputs,
    implanted,
)
from mhimmune.studies.trial_result import SITE_COLUMNS, TrialResult
from mhimmune.studies.virtual_cohort import check_cohort, nominal_cohort

__all__ = ["run_trial"]


def run_trial(
    arms: Sequence[Arm | str] | None = None,
    cohort: pd.DataFrame | None = None,
    *,
    template=None,
    responder: ResponderRule | None = None,
    recist: bool = True,
    grid_step_day: float = 0.5,
    params: Mapping[str, Any] | None = None,
    executor: Executor | None = None,
    progress: bool | None = None,
    distant: DistantTumour | None = DistantTumour(),
    rechallenge: Rechallenge | None = None,
    caliper_cv: float = 0.0,
    caliper_seed: int = 0,
) -> TrialResult:
    """Give every animal of *cohort* every arm and classify the outcomes.

    Parameters
    ----------
    arms
        :class:`Arm` objects or names of :data:`STANDARD_ARMS`; default control, MH,
        anti-PD-L1 and MH + anti-PD-L1.
    cohort
        From :func:`sample_cohort`; ``None``: one nominal animal.
    template
        The :class:`~mhimmune.mh.template.ScheduleTemplate` that factor-defined arms use;
        default ``ScheduleTemplate("60 d")`` (MH from day 7, three 30-min sessions every
        2 days, anti-PD-L1 10 mg/kg three times every 3 days from the first session).
    responder
        :class:`ResponderRule` (default ≤ 10 mm³ at day 50 after the first treatment,
        endpoint 2000 mm³).
    recist
        Also classify RECIST-like categories (CR/PR/SD/PD).
    grid_step_day
        Spacing of the recorded tumour-volume curves (days).
    params
        Fixed parameter overrides for every animal (cohort columns take precedence).
    executor
        Where every ensemble of the trial runs: ``None`` in this process; a
        :class:`~mhimmune.runs.executor.WorkerPool` (local processes kept for all the
        trial's ensembles) or :class:`~mhimmune.runs.dask_executor.DaskExecutor`, e.g. from
        :func:`~mhimmune.runs.executor.make_executor`. It is used, not closed.
    progress
        Show tqdm bars (``None``: unless ``TQDM_DISABLE`` is set).
    distant
        The distant tumour (:class:`~mhimmune.studies.trial_options.DistantTumour`):
        default inoculated on day 0 with the model's size; a later day and an implant
        volume; ``None``: one-tumour mice (no distant tumour).
    rechallenge
        :class:`~mhimmune.studies.trial_options.Rechallenge` of every animal on a day at or
        after the responder day (protocols lengthened to its follow-up); ``None``: none.
    caliper_cv, caliper_seed
        Multiplicative log-normal measurement noise of this coefficient of variation on
        every recorded volume (curves and the volumes the classification reads; each
        tumour measured on its own), drawn from *caliper_seed*; 0: exact volumes.

    Returns
    -------
    TrialResult
    """
    executor = study_executor(executor)
    responder = responder or ResponderRule()
    if template is None:
        template = ScheduleTemplate("60 d", name="trial")
    elif not isinstance(template, ScheduleTemplate):
        raise ParameterError(
            f"template: expected a ScheduleTemplate, got {type(template).__name__}"
        )
    arm_list: list[Arm] = []
    for given in arms if arms is not None else standard_arms():
        arm = STANDARD_ARMS[given] if isinstance(given, str) and given in STANDARD_ARMS else given
        if not isinstance(arm, Arm):
            raise ParameterError(
                f"arms: {arm!r} is neither an Arm nor a standard arm ({', '.join(STANDARD_ARMS)})"
            )
        arm_list.append(arm)
    if not arm_list:
        raise ParameterError("arms: give at least one arm")
    names = [a.name for a in arm_list]
    if len(set(names)) != len(names):
        raise ParameterError(
            f"arms: duplicate names {sorted({n for n in names if names.count(n) > 1})}"
        )
    cohort = nominal_cohort() if cohort is None else check_cohort(cohort, PROTOCOL_FACTORS)
    if not (isinstance(grid_step_day, (int, float)) and 0 < grid_step_day <= 5):
        raise ParameterError(f"grid_step_day: must be in (0, 5] days (got {grid_step_day!r})")
    if distant is not None and not isinstance(distant, DistantTumour):
        raise ParameterError(
            f"distant: expected a DistantTumour or None (one tumour), got {distant!r}"
        )
    if rechallenge is not None and not isinstance(rechallenge, Rechallenge):
        raise ParameterError(f"rechallenge: expected a Rechallenge or None, got {rechallenge!r}")
    if distant is None and responder.site == "distant":
        raise ParameterError(
            "responder.site: 'distant' needs a distant tumour (distant is None: one tumour)"
        )
    caliper_noise(np.zeros(1), caliper_cv, np.random.default_rng(0))  # checks the CV
    cohort, params, implants = distant_inputs(distant, cohort, dict(params or {}))
    if rechallenge is not None:
        implants.append((rechallenge.day, rechallenge.volume_mm3))
    extend = rechallenge.read_day if rechallenge is not None else None
    if implants or extend is not None:
        template = ImplantTemplate(template, implants, extend)
        arm_list = [
            a
            if a.protocol is None
            else Arm(
                a.name, protocol=implanted(a.protocol, implants, extend), description=a.description
            )
            for a in arm_list
        ]

    with warnings.catch_warnings():  # H·f warnings: the template's choice, reported by plans
        warnings.simplefilter("ignore", HfWarning)
        plans = {a.name: a.build(template) for a in arm_list}
    firsts = [p.first_treatment_h for p in plans.values() if p.first_treatment_h is not None]
    if not firsts:
        raise ParameterError("arms: no arm has a treatment; a trial needs at least one")
    start_day = hours_to_days(min(firsts))
    resp_day = start_day + responder.day_after_first_treatment
    for a in arm_list:
        end = hours_to_days(plans[a.name].duration_h)
        if end + 1e-9 < resp_day:
            raise ParameterError(
                f"arm {a.name}: its protocol ends at day {end:g}, before the "
                f"responder day {resp_day:.4g} (first treatment day {start_day:.4g} "
                f"+ {responder.day_after_first_treatment:g}); lengthen the "
                f"template's duration or shorten the responder day"
            )
    if rechallenge is not None and rechallenge.day < resp_day - 1e-9:
        raise ParameterError(
            f"rechallenge.day: {rechallenge.day:g} is before the responder day "
            f"{resp_day:.4g}; rechallenge cured animals after they are classified"
        )
    if distant is not None and distant.day > resp_day:
        raise ParameterError(
            f"distant.day: {distant.day:g} is after the responder day {resp_day:.4g}"
        )
    # mechanistic readouts (@+D) are sampled D days after each arm's anchor: its first MH
    # session, else its first treatment, else (untreated) the trial's first treatment
    mh_starts = [
        hours_to_days(p.mh_sessions()[0].start_h) for p in plans.values() if p.mh_sessions()
    ]
    untreated_anchor = min(mh_starts) if mh_starts else start_day

    def anchor(plan) -> float:
        sessions = plan.mh_sessions()
        if sessions:
            return hours_to_days(sessions[0].start_h)
        first = plan.first_treatment_h
        return untreated_anchor if first is None else hours_to_days(first)

    mechanisms = {
        name: Readout.parse(spec, name=name)
        for name, spec, _, _ in (*MECHANISM_READOUTS, *ASSAY_MECHANISMS)
    }

    def shifted(ro: GenericReadout, day0: float) -> GenericReadout:
        if not ro.relative:
            return ro
        assert ro.day is not None  # a relative readout ('@+D') has its day
        return replace(ro, day=day0 + ro.day, relative=False)

    def readouts_for(day0: float) -> list[GenericReadout]:
        """The readouts of an arm anchored at *day0*, each named as its column."""
        out = [shifted(ro, day0) for ro in mechanisms.values()]
        for site, var in SITE_COLUMNS.items():
            out += [
                Readout(f"{site}_at_start_mm3", "at", var, start_day),
                Readout(f"{site}_at_responder_day_mm3", "at", var, resp_day),
            ]
        if rechallenge is not None:  # just before the implant, and at the follow-up
            out += [
                Readout(
                    "total_before_rechallenge_mm3", "at", TRIAL_VOLUMES, rechallenge.day - 1e-3
                ),
                Readout("rechallenge_site_mm3", "at", (TRIAL_VOLUMES[1],), rechallenge.read_day),
            ]
        return out

    frames: list[pd.DataFrame] = []
    curves: list[tuple[str, dict[str, np.ndarray]]] = []
    grid_end = hours_to_days(min(p.duration_h for p in plans.values()))
    grid = np.arange(0.0, grid_end + 1e-9, float(grid_step_day))
    groups: dict[float, list[Arm]] = {}
    for a in arm_list:
        if a.protocol is None:
            groups.setdefault(anchor(plans[a.name]), []).append(a)
    jobs = []
    for day0, group in groups.items():  # template arms with the same anchor: one ensemble
        cols = sorted({k for a in group for k in a.factors})
        blocks = []
        for a in group:
            block = cohort.reset_index(drop=True).copy()
            vals = template.values(a.factors)
            for c in cols:
                block[c] = vals[c]
            blocks.append(block)
        jobs.append(
            (
                [a.name for a in group],
                ModelEvaluator(
                    template,
                    readouts_for(day0),
                    trajectories=TRIAL_VOLUMES,
                    time_grid_day=grid.tolist(),
                    params=params,
                ),
                pd.concat(blocks, ignore_index=True),
            )
        )
    for a in arm_list:
        if a.protocol is not None:
            jobs.append(
                (
                    [a.name],
                    ModelEvaluator(
                        a.protocol,
                        readouts_for(anchor(a.protocol)),
                        trajectories=TRIAL_VOLUMES,
                        time_grid_day=grid.tolist(),
                        params=params,
                    ),
                    cohort.reset_index(drop=True),
                )
            )
    n = len(cohort)
    results = [
        (
            arm_names,
            run_ensemble(
                ev,
                design,
                executor=executor,
                progress=progress,
                desc=f"trial: {', '.join(arm_names)}",
            ),
        )
        for arm_names, ev, design in jobs
    ]
    for arm_names, res in results:
        table = res.results.reset_index(drop=True)
        traj = res.trajectories(list(TRIAL_VOLUMES))
        for k, name in enumerate(arm_names):
            rows = table.iloc[k * n : (k + 1) * n].copy()
            rows.insert(0, "animal", np.asarray(cohort.index))
            rows.insert(0, "arm", name)
            frames.append(rows.drop(columns=["run"]))
            t = traj[(traj["run"] >= k * n) & (traj["run"] < (k + 1) * n)]
            per_site = {}
            for site, var in SITE_COLUMNS.items():
                if site == "total":
                    continue
                curve = t[t["variable"] == var[0]].pivot_table(
                    index="run", columns="time_day", values="value", aggfunc="sum"
                )
                per_site[site] = curve.reindex(range(k * n, (k + 1) * n)).to_numpy()
            curves.append((name, per_site))
    order = {name: i for i, name in enumerate(names)}
    frames.sort(key=lambda f: order[f["arm"].iloc[0]])
    animals = pd.concat(frames, ignore_index=True)
    site_volumes = {
        site: {name: c[site] for name, c in sorted(curves, key=lambda c: order[c[0]])}
        for site in ("treated", "distant")
    }
    if caliper_cv > 0:  # each tumour measured on its own; totals are sums of measurements
        rng = np.random.default_rng(caliper_seed)
        for site in ("treated", "distant"):
            for name in names:
                site_volumes[site][name] = caliper_noise(site_volumes[site][name], caliper_cv, rng)
            for col in (f"{site}_at_start_mm3", f"{site}_at_responder_day_mm3"):
                animals[col] = caliper_noise(animals[col].to_numpy(float), caliper_cv, rng)
        for when in ("at_start", "at_responder_day"):
            animals[f"total_{when}_mm3"] = (
                animals[f"treated_{when}_mm3"] + animals[f"distant_{when}_mm3"]
            )
    volumes = {n: site_volumes["treated"][n] + site_volumes["distant"][n] for n in names}
    return TrialResult(
        animals=animals,
        volumes=volumes,
        time_day=grid,
        arms=arm_list,
        plans=plans,
        cohort=cohort,
        responder=responder,
        start_day=start_day,
        recist=recist,
        site_volumes=site_volumes,
        distant=distant,
        rechallenge=rechallenge,
        caliper_cv=float(caliper_cv),
    )
