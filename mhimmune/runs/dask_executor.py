"""Dask executor: the chunks of a run on a Dask cluster, the evaluator set up once per
worker process."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import cloudpickle
import numpy as np

from mhimmune.core.errors import MhimmuneError
from mhimmune.runs.executor import Executor, Tasks, evaluate_chunk, set_up, settle_worker

__all__ = ["DaskExecutor", "DASK_CONNECT_TIMEOUT_S", "dask_chunk"]

#: evaluators set up in this (worker) process, by payload hash
_WORKER_EVALUATORS: dict[str, Any] = {}

#: seconds :class:`DaskExecutor` waits for a scheduler given by address
DASK_CONNECT_TIMEOUT_S = 5


class DaskExecutor(Executor):
    """Run the chunks on a Dask cluster; each worker process sets an evaluator up once.

    Parameters
    ----------
    client
        A ``distributed.Client``, or a scheduler address (``"tcp://host:8786"``) for a
        client that this executor opens and :meth:`close` closes.
    """

    def __init__(self, client: Any):
        if isinstance(client, str):
            from distributed import Client  # optional dependency, imported when used

            try:  # fail fast on an unreachable scheduler (distributed waits 30 s)
                self.client = Client(client, timeout=DASK_CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError, ValueError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise MhimmuneError(
                    f"Dask scheduler {client!r}: cannot connect within "
                    f"{DASK_CONNECT_TIMEOUT_S} s ({reason})"
                ) from None
            self._owns_client = True
        else:
            self.client, self._owns_client = client, False

    @property
    def n_workers(self) -> int:  # type: ignore[override]
        """Workers of the cluster (2 if the client cannot tell)."""
        try:
            return max(1, len(self.client.scheduler_info().get("workers", {})))
        except Exception:  # an unusual client object: assume a small cluster
            return 2

    def results(self, tasks: Tasks) -> Iterator[dict]:
        """Yield raw chunk results as they finish (the evaluator is scattered once)."""
        from distributed import as_completed  # optional dependency, imported when used

        client = self.client
        payload = cloudpickle.dumps(tasks.evaluator)
        key = hashlib.sha256(payload).hexdigest()[:16]
        [payload_future] = client.scatter([payload], broadcast=True)
        futures = [
            client.submit(
                dask_chunk, key, payload_future, tasks.names, runs, tasks.X[runs], pure=False
            )
            for runs in tasks.chunks
        ]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.cancel(futures)

    def close(self) -> None:
        """Close the client if this executor opened it."""
        if self._owns_client:
            self.client.close()
            self._owns_client = False

    def __repr__(self) -> str:
        return f"<DaskExecutor: {self.client!r}>"


def dask_chunk(key: str, payload: bytes, names: list[str], runs: np.ndarray, X: np.ndarray) -> dict:
    """Dask task: the evaluator is unpickled and set up once per worker process (cached by
    key), which is then settled (:func:`~mhimmune.runs.executor.settle_worker`)."""
    cache = _WORKER_EVALUATORS
    if key not in cache:
        ev = cloudpickle.loads(payload)
        set_up(ev, names)
        cache.clear()
        cache[key] = ev
        settle_worker()  # once per worker process, as in a WorkerPool worker
    return evaluate_chunk(cache[key], names, runs, X)
