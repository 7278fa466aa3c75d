"""Global sensitivity analysis with SALib over protocol factors and model parameters.

The functional core follows SALib: a :class:`Problem` is plain data (factors with
bounds and distributions), :func:`sample` returns a :class:`Sample` (the design to
run), :func:`analyze` turns outputs into indices. Every method returns the same tidy
table (:data:`INDEX_COLUMNS`)::

    method, output, time_day, factor, factor2, index, value, conf_low, conf_high,
    n_runs, n_dropped

with ``time_day`` NaN for scalar outputs and set for time-resolved indices along a
trajectory, ``factor2`` set only for second-order Sobol indices, and confidence bounds
NaN where a method gives none.

Sampling happens in the unit hypercube; each factor maps it through its distribution:
``uniform`` linearly, ``loguniform`` uniformly in the logarithm, ``normal`` and
``lognormal`` by the inverse CDF with [lower, upper] as the 2.5–97.5 % range (clipped
to the 0.1–99.9 % quantiles), ``integer`` to equally likely integers in
[lower, upper]. Indices therefore describe each factor over its distribution; Morris
elementary effects are per fraction of a factor's (log-)range.

Methods: ``sobol`` (S1, ST, optional S2; Saltelli sampling), ``morris`` (mu_star,
sigma, mu), ``efast`` (S1, ST), and two that tolerate failed runs by using only the
successful rows and reporting how many were dropped: ``pawn`` (KS-statistic
summaries) and ``delta`` (Borgonovo's moment-independent delta); both run on a
Latin-hypercube sample.

Outputs of a hypothesis-generating model: the indices say which factors the *model*
is sensitive to, over the ranges given.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mhimmune.core.errors import MhimmuneError, ParameterError
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.runs.ensemble import EnsembleResult, run_ensemble
from mhimmune.runs.executor import Executor
from mhimmune.studies.execution import study_executor
from mhimmune.studies.sa_analysis import (
    INDEX_COLUMNS,
    IncompleteRunsError,
    analyze,
    empty_indices,
    wide_intervals,
)
from mhimmune.studies.sa_problem import METHODS, Factor, Problem, define_problem
from mhimmune.studies.sa_sampling import MIN_SAMPLE_SIZE, Sample, SampleSizeWarning, sample
from mhimmune.studies.sa_specs import load_spec, write_outputs

__all__ = [
    "Factor",
    "Problem",
    "Sample",
    "SensitivityResult",
    "IncompleteRunsError",
    "SampleSizeWarning",
    "MIN_SAMPLE_SIZE",
    "wide_intervals",
    "METHODS",
    "INDEX_COLUMNS",
    "define_problem",
    "sample",
    "analyze",
    "run_sensitivity",
    "check_factor_bounds",
    "sobol",
    "morris",
    "efast",
    "pawn",
    "delta",
    "load_spec",
    "write_outputs",
]


# ============================================================================ high level


@dataclass
class SensitivityResult:
    """Indices plus everything that produced them.

    Attributes
    ----------
    indices : pandas.DataFrame
        Tidy indices (:data:`INDEX_COLUMNS`); empty when the method could not run
        (see *error*).
    sample : Sample
        Design and problem.
    ensemble : EnsembleResult
        Per-run outputs, trajectories and failures.
    skipped : list of str
        Outputs without indices (constant over the runs).
    error : str
        Why no indices were computed (failed runs with a method needing all), else "".
    """

    indices: pd.DataFrame
    sample: Sample
    ensemble: EnsembleResult
    skipped: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def failures(self) -> pd.DataFrame:
        """The failed runs with status, message and factor values."""
        return self.ensemble.failures

    def summary(self) -> str:
        """One line: method, factors, runs, failures, outputs analysed."""
        n_out = self.indices["output"].nunique() if len(self.indices) else 0
        return (
            f"{self.sample.method}: {self.sample.problem.num_vars} factors, "
            f"{self.ensemble.summary()}; indices for {n_out} output(s)"
            + (f"; skipped (constant): {', '.join(self.skipped)}" if self.skipped else "")
            + (f"; {self.error}" if self.error else "")
        )

    def __repr__(self) -> str:
        return f"<SensitivityResult {self.summary()}>"


def run_sensitivity(
    protocol,
    factors: Sequence[str] | Mapping[str, Any],
    *,
    method: str = "sobol",
    n: int = 1024,
    readouts=None,
    trajectories: Sequence[str] = (),
    time_grid_day=None,
    params: Mapping[str, Any] | None = None,
    model=None,
    evaluator=None,
    seed: int | None = 0,
    second_order: bool = False,
    num_levels: int = 4,
    M: int = 4,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    executor: Executor | None = None,
    out=None,
    resume: bool = False,
    progress: bool | None = None,
    chunk_size: int | None = None,
    simulate_options: Mapping[str, Any] | None = None,
) -> SensitivityResult:
    """Sample, run the ensemble and analyse: one call for a whole analysis.

    Parameters
    ----------
    protocol
        A :class:`~mhimmune.mh.template.ScheduleTemplate` (protocol factors allowed) or a
        fixed :class:`~mhimmune.Protocol` (parameters only); ignored with *evaluator*.
    factors
        Factor names or name -> bounds (see :func:`define_problem`).
    method
        One of :data:`METHODS`.
    n
        Base sample size (see :func:`sample`).
    readouts, trajectories, time_grid_day, params, simulate_options
        Passed to :class:`~mhimmune.mh.evaluator.ModelEvaluator` (readout specs, variables
        for time-resolved indices, their time grid in days, fixed overrides).
    model
        A loaded model whose links workers rebuild (default: the full model).
    evaluator
        Any evaluator (e.g. a toy function of the factors) instead of the model.
    seed
        Seed of the sampler and the bootstrap.
    second_order, num_levels, M
        Method options (see :func:`sample`).
    num_resamples, conf_level
        Bootstrap settings of the confidence intervals.
    executor
        Where the runs go: ``None`` runs them in this process; a
        :class:`~mhimmune.runs.executor.WorkerPool` (local processes) or
        :class:`~mhimmune.runs.dask_executor.DaskExecutor` (a Dask cluster), e.g. from
        :func:`~mhimmune.runs.executor.make_executor`. It is used, not closed.
    out, resume, progress, chunk_size
        Passed to :func:`~mhimmune.runs.ensemble.run_ensemble` (checkpoints, the tqdm
        bar, runs per task).

    Returns
    -------
    SensitivityResult
        Indices, sample and ensemble. With failed runs, Sobol/Morris/eFAST return no
        indices, an ``error`` and a warning; PAWN and delta drop the failed runs.
    """
    executor = study_executor(executor)
    table = model if model is not None else None
    problem = define_problem(factors, table=table)
    if evaluator is None:
        check_factor_bounds(problem, protocol, model)
        kw = dict(
            trajectories=trajectories,
            time_grid_day=time_grid_day,
            params=params,
            simulate_options=simulate_options,
        )
        evaluator = (
            ModelEvaluator.from_model(model, protocol, readouts, **kw)
            if model is not None
            else ModelEvaluator(protocol, readouts, **kw)
        )
    s = sample(problem, method, n, seed=seed, second_order=second_order, num_levels=num_levels, M=M)
    ens = run_ensemble(
        evaluator,
        s.design,
        executor=executor,
        out=out,
        resume=resume,
        progress=progress,
        chunk_size=chunk_size,
        desc=s.method,
    )
    error = ""
    try:
        indices = analyze(s, ens, num_resamples=num_resamples, conf_level=conf_level, seed=seed)
    except IncompleteRunsError as exc:
        indices, error = empty_indices(), str(exc)
        warnings.warn(error, stacklevel=2)
    wanted = list(ens.output_names) + list(ens.trajectory_names)
    skipped = [o for o in wanted if not error and o not in set(indices["output"])]
    return SensitivityResult(indices=indices, sample=s, ensemble=ens, skipped=skipped, error=error)


def check_factor_bounds(problem: Problem, protocol, model=None) -> None:
    """Check each factor's lower and upper bound before any run.

    A protocol factor's bounds must give valid protocols of the template *protocol*
    (field, frequency, doses, durations within the limits of the intervention kinds);
    a parameter factor's bounds must be valid overrides (physical domain, > 0 on a log
    scale). Raises :class:`~mhimmune.core.errors.ParameterError` naming the factor.
    """
    from mhimmune.core.params import ParameterTable

    table = None
    for f in problem.factors:
        for which, x in (("lower", f.lower), ("upper", f.upper)):
            try:
                if f.kind == "protocol" and hasattr(protocol, "build"):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # H·f is checked per run
                        protocol.build({f.name: x})
                elif f.kind == "parameter":
                    if table is None:
                        table = model.table if model is not None else ParameterTable.load()
                    table.check_override(f.name, x)
            except MhimmuneError as exc:
                raise ParameterError(
                    f"factor {f.name}: {which} bound {x:g} is outside the allowed range ({exc})"
                ) from None


def _with_method(method):
    def run(model, protocol, factors, n: int = 1024, **kwargs) -> SensitivityResult:
        return run_sensitivity(protocol, factors, method=method, n=n, model=model, **kwargs)

    run.__name__ = method
    run.__qualname__ = method
    run.__doc__ = (
        f"{method} analysis of *model* under *protocol* (Protocol or ScheduleTemplate) "
        f"over *factors*; *n* base samples; keywords as :func:`run_sensitivity`. "
        f"*model* may be None (the full model). Returns a :class:`SensitivityResult`."
    )
    return run


sobol = _with_method("sobol")
morris = _with_method("morris")
efast = _with_method("efast")
pawn = _with_method("pawn")
delta = _with_method("delta")
