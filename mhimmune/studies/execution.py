"""Where a study runs its ensembles: one :class:`~mhimmune.runs.executor.Executor` per study.

Every study function (sensitivity, trial, synergy, optimisation, hypotheses) takes one
``executor`` argument instead of ``n_jobs`` / ``client`` / ``pool``:

* ``None``: every run in this process (a :class:`~mhimmune.runs.executor.SerialExecutor`);
* a :class:`~mhimmune.runs.executor.WorkerPool`: local worker processes that stay alive
  across the study's ensembles (and across studies given the same pool);
* a :class:`~mhimmune.runs.dask_executor.DaskExecutor`: a Dask cluster.

:func:`~mhimmune.runs.executor.make_executor` builds one from the former arguments
(``make_executor(n_jobs=4)``, ``make_executor(client="tcp://host:8786")``). A study
uses the executor it is given for all of its ensembles and never closes it: close it
when done (``with make_executor(4) as executor: ...``).
"""

from __future__ import annotations

from typing import Any

from mhimmune.core.errors import ParameterError
from mhimmune.runs.executor import Executor, SerialExecutor, WorkerPool, check_pool

__all__ = ["study_executor"]


def study_executor(executor: Any) -> Executor:
    """The executor a study runs its ensembles on: *executor* itself, checked, or a
    :class:`~mhimmune.runs.executor.SerialExecutor` for ``None``.

    Raises
    ------
    ParameterError
        *executor* is not an :class:`~mhimmune.runs.executor.Executor`, or is a closed
        :class:`~mhimmune.runs.executor.WorkerPool`.
    MhimmuneError
        *executor* is a broken :class:`~mhimmune.runs.executor.WorkerPool`.
    """
    if executor is None:
        return SerialExecutor()
    if isinstance(executor, WorkerPool):
        check_pool(executor)
        return executor
    if not isinstance(executor, Executor):
        raise ParameterError(
            f"executor: expected an Executor (SerialExecutor, WorkerPool, DaskExecutor; "
            f"mhimmune.runs.executor.make_executor builds one from n_jobs or a Dask "
            f"client), got {type(executor).__name__}"
        )
    return executor
