"""Many runs: every row of a design through an evaluator, on an executor, with checkpoints.

A *design* is a table with one row per run and one column per factor (template factors
and model parameters by name, mixed freely; :mod:`mhimmune.runs.designs`). An *evaluator*
turns one row into outputs: :class:`~mhimmune.runs.evaluator.ModelEvaluator` builds the
protocol, simulates the model and computes readouts (and, for time-resolved sensitivity
analysis, trajectories on a fixed time grid), but any picklable callable
``f(values: dict) -> float | dict`` works too (it is shipped with cloudpickle, so
functions defined in a notebook are fine).

:func:`run_ensemble` runs the design in chunks:

* on an :class:`~mhimmune.runs.executor.Executor`: in this process, on local processes
  (a :class:`~mhimmune.runs.executor.WorkerPool`, opened for the call with ``n_jobs>1`` or
  kept alive across calls with ``pool=``; workers set each evaluator up once, and the
  compiled model is loaded from the disk cache once per process, never pickled), or on a
  Dask cluster (``client=``) where the same happens once per worker;
* failures are data: a run that fails gets a ``status`` other than ``"ok"`` and its
  error message, keeps its factor values, is counted and reported (a warning and
  :attr:`EnsembleResult.failures`); outputs are NaN only in such rows;
* with ``out=DIR`` each finished chunk is written atomically as a parquet file, so a
  run killed half-way resumes (``resume=True``) without recomputing finished runs;
  runs are identified by their row number and a hash of the design and evaluator;
* results depend only on the design: the same seed (of the sampler that made the
  design) gives identical results, whatever ``n_jobs`` or chunking.

The generic names of :mod:`mhimmune.runs` (results, executors, designs) are re-exported
here for callers of the former single module.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from mhimmune.core.errors import ParameterError
from mhimmune.runs.designs import design_frame, design_hash, grid_design
from mhimmune.runs.executor import (
    POOL_CACHE_SIZE,
    Executor,
    Tasks,
    WorkerPool,
    check_pool,
    make_executor,
    pool_for,
)
from mhimmune.runs.results import (
    STATUS_OK,
    EnsembleFailureWarning,
    EnsembleResult,
    OutputSchema,
    assemble_result,
)
from mhimmune.runs.store import CheckpointStore

__all__ = [
    "run_ensemble",
    "EnsembleResult",
    "EnsembleFailureWarning",
    "Executor",
    "WorkerPool",
    "make_executor",
    "check_pool",
    "pool_for",
    "grid_design",
    "STATUS_OK",
    "POOL_CACHE_SIZE",
]


def _progress_disabled(progress: bool | None) -> bool:
    if progress is False:
        return True
    env = os.environ.get("TQDM_DISABLE", "")
    return env.strip().lower() not in ("", "0", "false", "no")


def run_ensemble(
    evaluator: Callable[[dict], Any],
    design: Any,
    *,
    executor: Executor | None = None,
    n_jobs: int = 1,
    client: Any = None,
    pool: WorkerPool | None = None,
    chunk_size: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    progress: bool | None = None,
    desc: str = "runs",
    warn: bool = True,
) -> EnsembleResult:
    """Run every row of *design* through *evaluator*, in parallel, with checkpoints.

    Parameters
    ----------
    evaluator
        A :class:`ModelEvaluator` or any picklable callable ``f(values) -> number |
        mapping`` taking a dict factor -> float; mapping values may be numbers (scalar
        outputs) or 1-D arrays (trajectories on the evaluator's ``time_grid_day``).
        An optional ``setup()`` method runs once per worker (per evaluator and worker
        of a *pool*), an optional
        ``validate(names)`` once here before any run, an optional ``fingerprint()``
        identifies what it computes for resume.
    design
        DataFrame (or list of dicts) with one row per run and one numeric column per factor.
    executor
        Where the chunks run (:class:`~mhimmune.runs.executor.SerialExecutor`,
        :class:`WorkerPool`, :class:`~mhimmune.runs.dask_executor.DaskExecutor`); it stays open.
        Without it, *n_jobs*, *client* and *pool* choose one (:func:`make_executor`).
    n_jobs
        Local worker processes, started for this call; 1 runs in this process.
    client
        A ``distributed.Client`` or a scheduler address (``"tcp://host:8786"``); when
        given, runs go to that Dask cluster and *n_jobs* is ignored.
    pool
        A :class:`WorkerPool` whose processes run the chunks and stay alive for the next
        call (callers making many calls save the worker start-up); *n_jobs* is ignored.
        Not together with *client*.
    chunk_size
        Runs per task (and per checkpoint file); default balances per-task overhead
        against load balancing (at most 128).
    out
        Folder for checkpoints (parquet chunks, design, manifest); ``None`` keeps results in memory.
    resume
        Continue the run stored in *out* (same design and evaluator), computing only
        runs that are not on disk.
    retry_failed
        With *resume*, also recompute runs stored as failed.
    progress
        Show a tqdm bar; ``None`` shows it unless ``TQDM_DISABLE`` is set.
    desc
        Label of the progress bar.
    warn
        Issue an :class:`EnsembleFailureWarning` when runs failed.

    Returns
    -------
    EnsembleResult
        Per-run table (status, message, factors, outputs), trajectories, failures.

    Raises
    ------
    ParameterError
        A bad design or chunk size; *pool* together with *client*, not a
        :class:`WorkerPool`, or closed; *executor* together with *pool* or *client*.
    MhimmuneError
        A checkpoint folder that does not match; a worker of *pool* died (the pool is
        then broken).
    """
    t_start = time.perf_counter()
    if executor is not None and (pool is not None or client is not None):
        raise ParameterError("executor: give an executor or pool/client, not both")
    check_pool(pool, client)
    if chunk_size is not None and chunk_size < 1:
        raise ParameterError(f"chunk_size: must be ≥ 1 (got {chunk_size})")
    df = design_frame(design)
    names = list(df.columns)
    if hasattr(evaluator, "validate"):
        evaluator.validate(names)
    n = len(df)
    X = df.to_numpy(dtype=float)
    dhash = design_hash(df, evaluator)
    out_path = Path(out) if out is not None else None
    meta = {
        "factor_names": names,
        "output_names": list(getattr(evaluator, "output_names", []) or []),
        "trajectory_names": list(getattr(evaluator, "trajectory_names", []) or []),
    }
    store = CheckpointStore(out_path, dhash, df, resume, meta) if out_path is not None else None

    collected: list[pd.DataFrame] = []
    done = np.zeros(n, dtype=bool)
    if store is not None:
        collected, done = store.finished(n, retry_failed)
    pending = np.nonzero(~done)[0]

    schema = OutputSchema(
        meta["output_names"], meta["trajectory_names"], getattr(evaluator, "time_grid_day", None)
    )
    if store is not None and store.manifest.get("output_names"):
        schema.outputs = list(store.manifest["output_names"])
        schema.trajectories = list(store.manifest.get("trajectory_names") or [])
        schema.known = True  # else the first computed chunk would add the names again

    owned = executor is None
    if executor is None:
        executor = make_executor(n_jobs, client, pool)
        owned = executor is not pool
    n_computed = 0
    try:
        if chunk_size is None:
            workers = executor.n_workers
            chunk_size = int(min(128, max(1, math.ceil(len(pending) / (workers * 16)))))
        chunks = [pending[i : i + chunk_size] for i in range(0, len(pending), chunk_size)]
        bar = tqdm(
            total=n,
            initial=int(done.sum()),
            desc=desc,
            unit="run",
            disable=_progress_disabled(progress),
            dynamic_ncols=True,
        )
        try:
            for raw in executor.execute(Tasks(evaluator, names, X, chunks), progress=bar.update):
                frame = schema.frame(raw)
                if store is not None:
                    if not store.manifest.get("output_names") and schema.known:
                        store.manifest["output_names"] = schema.outputs
                        store.manifest["trajectory_names"] = schema.trajectories
                        store.write_manifest()
                    store.save(frame)
                collected.append(frame)
                n_computed += len(frame)
        finally:
            bar.close()
    finally:
        if owned:
            executor.close()

    result = assemble_result(collected, df, names, schema, n)
    result.design_hash = dhash
    result.n_computed = n_computed
    result.elapsed_s = time.perf_counter() - t_start
    result.out = out_path
    if warn and result.n_failed:
        counts = result.results.loc[~result.ok, "status"].value_counts()
        first = result.failures.iloc[0]
        warnings.warn(
            f"{result.n_failed} of {n} runs failed "
            f"({', '.join(f'{k}: {v}' for k, v in counts.items())}); e.g. run "
            f"{int(first['run'])}: {first['message'][:200]}; all failed runs with their "
            f"factor values are in result.failures",
            EnsembleFailureWarning,
            stacklevel=2,
        )
    return result
