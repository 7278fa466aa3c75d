"""Choose a treatment schedule: optimise protocol factors over a virtual cohort.

A *candidate* is one combination of factor values (``n_sessions=3,
session_interval_day=2.5``); it is simulated once per virtual animal of a *cohort*
(one row per animal, one column per model parameter) and the per-animal values of one
output (``objective``, e.g. a responder flag) are aggregated (mean, median or a
quantile) into the candidate's objective. :func:`optimize_schedule` searches the
candidates

* ``"grid"``: every combination of the factors' levels;
* ``"random"``: ``budget`` candidates drawn with a seeded :class:`numpy.random.Generator`;
* ``"differential_evolution"``: :func:`scipy.optimize.differential_evolution`, one
  generation at a time, with integer variables for counts and for lists of levels;

and every batch (the whole grid, all random candidates, or one generation) goes through
one :func:`~mhimmune.runs.ensemble.run_ensemble` call on the search's executor, so runs
are spread over local processes or a Dask cluster; local processes are one
:class:`~mhimmune.runs.executor.WorkerPool` kept for the whole search, so a generation
does not pay the start-up of its workers. Constraints (a limit on H·f, on the number of
sessions, on the total antibody dose, or any predicate) are checked before simulating:
infeasible candidates are listed but never simulated. Failed runs are data: they are
counted per candidate, and a candidate whose runs all failed cannot be the optimum.

With more than one animal, animals are resampled (bootstrap) to tell how robust the
choice is: how often the chosen optimum stays the best (``p_best``), a percentile
interval of its objective, and whether the runner-up lies inside it.

>>> from mhimmune.mh.evaluator import ModelEvaluator
>>> from mhimmune.mh.template import ScheduleTemplate
>>> from mhimmune.runs.executor import WorkerPool
>>> pool = WorkerPool(4)   # close it when done (or use it in a ``with`` block)
>>> ev = ModelEvaluator(ScheduleTemplate("60 d"), {"responder": "cure<=10@+50"})
>>> res = optimize_schedule(ev, {"n_sessions": [1, 2, 3], "pdl1_delay_day": (-2.0, 6.0)},
...                         cohort=animals, method="differential_evolution", budget=300,
...                         constraints=Constraints(hf_max=5e9), executor=pool)
>>> print(res.summary()); res.plot()

Results are predictions of a hypothesis-generating model: an optimum is a schedule
worth testing, and its bootstrap interval only reflects the variability of the virtual
cohort, not the uncertainty of the model.
"""

from __future__ import annotations

import difflib
import math
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.runs.ensemble import STATUS_OK, EnsembleFailureWarning
from mhimmune.runs.executor import Executor
from mhimmune.studies.constraints import Constraints, is_number
from mhimmune.studies.execution import study_executor
from mhimmune.studies.optimization_result import OptimizationResult
from mhimmune.studies.search import CI_LEVEL as CI_LEVEL
from mhimmune.studies.search import Search, bootstrap, percentiles
from mhimmune.studies.search_methods import DE_OPTIONS as DE_OPTIONS
from mhimmune.studies.search_methods import DEFAULT_DE_GENERATIONS as DEFAULT_DE_GENERATIONS
from mhimmune.studies.search_methods import DEFAULT_GRID_LEVELS as DEFAULT_GRID_LEVELS
from mhimmune.studies.search_methods import (
    grid_candidates,
    random_candidates,
    run_de,
)
from mhimmune.studies.search_space import TABLE_COLUMNS as TABLE_COLUMNS
from mhimmune.studies.search_space import (
    parse_aggregate,
    parse_cohort,
    parse_fixed,
    parse_space,
    template_of,
)

__all__ = ["Constraints", "optimize_schedule", "OptimizationResult", "AllRunsFailedError"]

#: methods of :func:`optimize_schedule`
METHODS = ("grid", "random", "differential_evolution")
#: candidates drawn by ``method="random"`` when no budget is given
DEFAULT_RANDOM_BUDGET = 100


class AllRunsFailedError(MhimmuneError):
    """Every run of every feasible candidate failed; ``table`` (the candidates) and
    ``runs`` (every run with its status and message) say which and why."""

    table: pd.DataFrame
    runs: pd.DataFrame


def optimize_schedule(
    evaluator: Callable[[dict], Any],
    space: Mapping[str, Any],
    *,
    cohort: pd.DataFrame | None = None,
    objective: str = "responder",
    aggregate: str = "mean",
    maximize: bool = True,
    constraints: Constraints | Mapping[str, Any] | None = None,
    method: str = "grid",
    fixed: Mapping[str, float] | None = None,
    budget: int | None = None,
    seed: int = 0,
    n_boot: int = 200,
    executor: Executor | None = None,
    progress: bool | None = None,
    de_options: Mapping[str, Any] | None = None,
) -> OptimizationResult:
    """Find the schedule whose aggregated outcome over a virtual cohort is best.

    Parameters
    ----------
    evaluator
        A :class:`~mhimmune.mh.evaluator.ModelEvaluator` (with a
        :class:`~mhimmune.mh.template.ScheduleTemplate`, the space holds protocol factors) or
        any picklable callable ``f(values: dict) -> dict`` of scalar outputs, as
        :func:`~mhimmune.runs.ensemble.run_ensemble` accepts.
    space
        Factor name -> a list of levels (discrete) or a ``(low, high)`` tuple (a range;
        integers for the count and switch factors of
        :data:`~mhimmune.mh.template.PROTOCOL_FACTORS`). Values are bare numbers in the unit
        of the factor's name. With a ScheduleTemplate evaluator every name must be a
        protocol factor; with other callables any name is passed on.
    cohort
        One row per virtual animal, one column per model parameter (overrides of the
        evaluator; for plain callables any column). ``None``: one nominal animal (and no
        bootstrap). Every candidate is simulated for every animal.
    objective
        Name of the scalar output to optimise (a readout name of a ModelEvaluator).
    aggregate
        How per-animal values make a candidate's objective: ``"mean"`` (e.g. the
        responder fraction of a 0/1 flag), ``"median"`` or a quantile ``"qP"``
        (``"q0.25"``). Failed runs are left out.
    maximize
        Maximise (default) or minimise the objective.
    constraints
        :class:`Constraints` or a mapping for :meth:`Constraints.from_dict`. They are
        checked on the full factor dict: ``template.values(candidate + fixed)`` when the
        evaluator's ``protocol`` is a ScheduleTemplate, otherwise the candidate and the
        fixed values merged over the defaults of
        :data:`~mhimmune.mh.template.PROTOCOL_FACTORS` (other names are kept). Infeasible
        candidates are listed in the table but never simulated.
    method
        ``"grid"``: every combination of levels; a ``(low, high)`` factor gets *n* evenly
        spaced levels including both ends (the distinct rounded ones for a count range):
        *n* = :data:`DEFAULT_GRID_LEVELS` without a budget, otherwise the largest *n*,
        the same for every range factor, whose grid has at most ``budget`` candidates.
        A grid with more than ``budget`` candidates is an error, not truncated.
        ``"random"``: ``budget`` (default :data:`DEFAULT_RANDOM_BUDGET`) candidates drawn
        with ``numpy.random.default_rng(seed)`` (uniform over levels, ranges, or the
        integers of a count range); duplicates are evaluated once.
        ``"differential_evolution"``: :func:`scipy.optimize.differential_evolution` with
        integer variables for count ranges and for list factors (the index of the level),
        ``updating="deferred"``, one ensemble per generation, no polishing, infeasible and
        all-failed candidates penalised; ``budget`` is the largest number of candidate
        evaluations: ``maxiter = budget // population - 1`` with ``population =
        max(5, popsize × n_variables)`` (default :data:`DEFAULT_DE_GENERATIONS`
        generations); it may stop earlier at scipy's convergence tolerance. Candidates
        proposed again are not simulated again.
    fixed
        Factor values (protocol factors or model parameters) held for every candidate.
    budget
        Number of candidates, see *method*.
    seed
        Seed of the random draws, of differential evolution and of the bootstrap; the
        same seed gives the same table.
    n_boot
        Bootstrap resamples of animals (with more than one animal); 0 skips it.
    executor
        Where every batch of the search runs: ``None`` in this process; a
        :class:`~mhimmune.runs.executor.WorkerPool` (local processes started once for all
        the batches) or :class:`~mhimmune.runs.dask_executor.DaskExecutor` (a Dask cluster),
        e.g. from :func:`~mhimmune.runs.executor.make_executor`. It is used, not closed:
        the caller closes it (also on errors).
    progress
        Show tqdm bars (``None``: unless ``TQDM_DISABLE`` is set).
    de_options
        Further options of :func:`scipy.optimize.differential_evolution`: ``strategy``,
        ``popsize``, ``tol``, ``atol``, ``mutation``, ``recombination``, ``init``.

    Returns
    -------
    OptimizationResult
        The optimum (among feasible candidates with at least one successful run; ties go
        to the candidate proposed first), the table of all candidates, the optimum's
        per-animal runs and the bootstrap robustness.

    Notes
    -----
    The bootstrap resamples animals (with replacement, ``n_boot`` times, with
    ``numpy.random.default_rng(seed)``) and recomputes the objective of every evaluated
    feasible candidate from the same resampled animals. ``p_best`` is the fraction of
    resamples in which a candidate is the best (ties split evenly). With many
    near-identical candidates (a fine grid, differential evolution near its optimum)
    the exact optimum's ``p_best`` is naturally small; its interval and whether the
    runner-up lies inside it are then the more useful summary.

    Raises
    ------
    ParameterError
        Bad space, objective, aggregate, method, budget, cohort, fixed values,
        constraints or *executor* (not an executor, or a closed pool), naming the field and the
        allowed values; also when every candidate is infeasible.
    ProtocolError
        A level that is not a valid value of its protocol factor (a non-integer count).
    AllRunsFailedError
        A :class:`~mhimmune.core.errors.MhimmuneError`: every run of every feasible
        candidate failed (the exception carries ``table`` and ``runs``).

    Warns
    -----
    EnsembleFailureWarning
        Some runs failed; they are counted per candidate (``n_failed``) and listed in
        :attr:`OptimizationResult.runs`.
    """
    t0 = time.perf_counter()
    if not callable(evaluator):
        raise ParameterError(
            f"evaluator: expected a ModelEvaluator or a callable f(values) -> "
            f"dict, got {type(evaluator).__name__}"
        )
    executor = study_executor(executor)
    if method not in METHODS:
        raise ParameterError(f"method: must be one of {', '.join(METHODS)} (got {method!r})")
    if not isinstance(objective, str) or not objective:
        raise ParameterError(f"objective: must be the name of an output (text), got {objective!r}")
    aggregate, q = parse_aggregate(aggregate)
    if not isinstance(maximize, (bool, np.bool_)):
        raise ParameterError(f"maximize: must be True or False (got {maximize!r})")
    if budget is not None and (not is_number(budget) or int(budget) != budget or budget < 1):
        raise ParameterError(f"budget: must be an integer ≥ 1 or None (got {budget!r})")
    budget = None if budget is None else int(budget)
    if not is_number(seed) or int(seed) != seed or seed < 0:
        raise ParameterError(f"seed: must be an integer ≥ 0 (got {seed!r})")
    seed = int(seed)
    if not is_number(n_boot) or int(n_boot) != n_boot or n_boot < 0:
        raise ParameterError(f"n_boot: must be an integer ≥ 0 (got {n_boot!r})")
    n_boot = int(n_boot)
    if de_options is None:
        de_options = {}
    if not isinstance(de_options, Mapping):
        raise ParameterError(f"de_options: expected a mapping, got {type(de_options).__name__}")
    unknown = [k for k in de_options if k not in DE_OPTIONS]
    if unknown:
        raise ParameterError(
            f"de_options: unknown option(s) {unknown}; allowed: {', '.join(DE_OPTIONS)} "
            f"(bounds, maxiter, workers, seed and polish are set from the space, "
            f"budget and seed)"
        )
    if de_options and method != "differential_evolution":
        raise ParameterError(
            f"de_options: only used by method='differential_evolution' (method is {method!r})"
        )
    if constraints is None:
        constraints = Constraints()
    elif isinstance(constraints, Mapping):
        constraints = Constraints.from_dict(constraints)
    elif not isinstance(constraints, Constraints):
        raise ParameterError(
            f"constraints: expected Constraints or a mapping, got {type(constraints).__name__}"
        )

    template = template_of(evaluator)
    template_based = isinstance(evaluator, ModelEvaluator) and template is not None
    factors = parse_space(space, template, template_based)
    fixed = parse_fixed(fixed, factors, template)
    cohort = parse_cohort(cohort, {f.name for f in factors} | set(fixed))

    names = (
        [f.name for f in factors] + list(fixed) + ([] if cohort is None else list(cohort.columns))
    )
    if hasattr(evaluator, "validate"):
        evaluator.validate(names)
    if isinstance(evaluator, ModelEvaluator) and objective not in evaluator.output_names:
        hints = difflib.get_close_matches(objective, evaluator.output_names, n=3)
        raise ParameterError(
            f"objective: {objective!r} is not a readout of the evaluator "
            f"(close matches: {hints}); its readouts: {evaluator.output_names}"
        )

    info: dict[str, Any] = {}
    search = Search(
        evaluator,
        factors,
        fixed,
        cohort,
        constraints,
        template,
        objective,
        aggregate,
        q,
        bool(maximize),
        {"executor": executor, "progress": progress},
        method,
    )
    if method == "grid":
        search.evaluate(grid_candidates(factors, budget), "optimize: grid")
    elif method == "random":
        rng = np.random.default_rng(seed)
        n = DEFAULT_RANDOM_BUDGET if budget is None else budget
        search.evaluate(random_candidates(factors, n, rng), "optimize: random")
    else:
        info = run_de(search, factors, budget, seed, de_options)

    table = search.table()
    runs = search.all_runs()
    valid = table["feasible"] & np.isfinite(table["objective"])
    if not table["feasible"].any():
        first = table["violation"].iloc[0]
        raise ParameterError(
            f"constraints: every one of the {len(table)} candidates is infeasible "
            f"(e.g. {first}); relax the constraints or change the space"
        )
    if not valid.any():
        counts = runs.loc[runs["status"] != STATUS_OK, "status"].value_counts()
        msg = runs.loc[runs["status"] != STATUS_OK, "message"]
        err = AllRunsFailedError(
            f"every run of every feasible candidate failed ({len(runs)} runs; "
            f"{', '.join(f'{k}: {v}' for k, v in counts.items())}); e.g. "
            f"{msg.iloc[0][:300] if len(msg) else '?'}"
        )
        err.table, err.runs = table, runs
        raise err

    # ----------------------------------------------------------------- robustness
    ranked = table.loc[valid].sort_values(["rank"], kind="stable")
    best_id = int(ranked.index[0])
    table["ci_low"] = np.nan
    table["ci_high"] = np.nan
    table["p_best"] = np.nan
    robustness: dict[str, Any] = {
        "n_boot": 0,
        "level": CI_LEVEL,
        "p_best": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "runner_up": None,
        "runner_up_value": math.nan,
        "runner_up_within_ci": None,
        "runner_up_p_best": math.nan,
        "n_within_ci": None,
        "n_animals": search.n_animals,
        "aggregate": aggregate,
    }
    if len(ranked) > 1:
        r2 = ranked.iloc[1]
        robustness["runner_up"] = {n: float(r2[n]) for n in search.names}
        robustness["runner_up_value"] = float(r2["objective"])
    if search.n_animals > 1 and n_boot > 0:
        ids = ranked.index.to_numpy()
        Y = np.vstack([search.Y[int(c)] for c in ids])
        B, share = bootstrap(Y, aggregate, q, bool(maximize), n_boot, np.random.default_rng(seed))
        for j, c in enumerate(ids):
            lo, hi = percentiles(B[:, j])
            table.loc[c, ["ci_low", "ci_high", "p_best"]] = [lo, hi, share[j]]
        lo, hi = table.at[best_id, "ci_low"], table.at[best_id, "ci_high"]
        others = ranked["objective"].to_numpy()[1:]
        robustness.update(
            n_boot=n_boot,
            p_best=float(share[0]),
            ci_low=float(lo),
            ci_high=float(hi),
            n_within_ci=int(np.sum((others >= lo) & (others <= hi))),
        )
        if len(ranked) > 1:
            v = robustness["runner_up_value"]
            robustness["runner_up_within_ci"] = bool(lo <= v <= hi)
            robustness["runner_up_p_best"] = float(share[1])

    per_animal = (
        runs[runs["candidate"] == best_id]
        .drop(columns=["candidate", *search.names, *fixed])
        .set_index("animal")
    )
    n_failed_runs = int((runs["status"] != STATUS_OK).sum())
    if n_failed_runs:
        bad = table[table["n_failed"] > 0]
        first = runs.loc[runs["status"] != STATUS_OK].iloc[0]
        warnings.warn(
            f"{n_failed_runs} of {len(runs)} runs failed, in {len(bad)} candidate(s) "
            f"(e.g. candidate {int(first['candidate'])}, animal {first['animal']}: "
            f"{str(first['message'])[:200]}); their objectives use the successful runs "
            f"only; see result.table['n_failed'] and result.runs",
            EnsembleFailureWarning,
            stacklevel=2,
        )
    return OptimizationResult(
        best={n: float(table.at[best_id, n]) for n in search.names},
        best_value=float(table.at[best_id, "objective"]),
        table=table,
        per_animal=per_animal,
        robustness=robustness,
        objective=objective,
        maximize=bool(maximize),
        method=method,
        aggregate=aggregate,
        fixed=dict(fixed),
        runs=runs,
        constraints=constraints,
        n_simulations=search.n_simulated,
        n_batches=search.batches,
        elapsed_s=time.perf_counter() - t0,
        info=info,
    )
