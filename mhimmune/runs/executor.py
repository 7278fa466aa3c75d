"""Executors: where the chunks of a run are evaluated (this process, local processes, Dask).

In the style of pyPESTO's engines, an :class:`Executor` takes a batch of :class:`Tasks`
(one evaluator, the design rows and their division into chunks) and yields the raw result
of each chunk as it finishes: :class:`SerialExecutor` in this process, :class:`WorkerPool`
on local processes kept alive across calls (each worker sets an evaluator up once and
keeps it), :class:`DaskExecutor` on a Dask cluster (set up once per worker).
:func:`make_executor` builds one from the ``n_jobs`` / ``client`` / ``pool`` arguments of
:func:`~mhimmune.runs.ensemble.run_ensemble`. Failures are data: an evaluation that
raises is recorded with a status and message (:func:`evaluate_chunk`), not raised.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import inspect
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from mhimmune.core.errors import MhimmuneError, ParameterError, ProtocolError, SolverError
from mhimmune.core.io import atomic_path
from mhimmune.runs.lifetime import exit_with_owner
from mhimmune.runs.results import STATUS_OK

__all__ = [
    "Tasks",
    "Executor",
    "SerialExecutor",
    "WorkerPool",
    "make_executor",
    "check_pool",
    "pool_for",
    "evaluate_chunk",
    "relax_allocator",
    "settle_worker",
    "set_up",
    "status_of",
    "POOL_CACHE_SIZE",
]


@dataclass(frozen=True)
class Tasks:
    """A batch of work: chunks of design rows evaluated by one evaluator.

    Parameters
    ----------
    evaluator
        Callable ``f(values: dict) -> number | mapping``, with optional ``setup()``.
    names
        Design column names (keys of *values*).
    X
        Design rows (runs × columns).
    chunks
        Run numbers (rows of *X*) of each chunk; one task per chunk.
    """

    evaluator: Callable[[dict], Any]
    names: list[str]
    X: np.ndarray
    chunks: Sequence[np.ndarray]

    def __len__(self) -> int:
        return len(self.chunks)


class Executor(ABC):
    """Base of the executors: :meth:`execute` yields the raw result of each chunk as it ends.

    A raw result is a dict with ``runs`` (run numbers), ``status``, ``message``,
    ``seconds`` and ``values`` (one output mapping or ``None`` per run). Executors are
    context managers; :meth:`close` frees what they hold.
    """

    #: parallel workers (sets the default chunk size)
    n_workers: int = 1

    def execute(
        self, tasks: Tasks, progress: Callable[[int], object] | None = None
    ) -> Iterator[dict]:
        """Yield the raw result of each chunk of *tasks* as it finishes.

        Parameters
        ----------
        tasks
            The batch.
        progress
            Called with the number of runs of each finished chunk.
        """
        if not tasks.chunks:
            return
        for raw in self.results(tasks):
            if progress is not None:
                progress(len(raw["runs"]))
            yield raw

    @abstractmethod
    def results(self, tasks: Tasks) -> Iterator[dict]:
        """Yield raw chunk results in any order (implemented by each executor)."""

    def close(self) -> None:
        """Free workers or connections this executor owns (nothing by default)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(Executor):
    """Evaluate the chunks one after the other in this process."""

    def results(self, tasks: Tasks) -> Iterator[dict]:
        """Set the evaluator up, then evaluate each chunk."""
        set_up(tasks.evaluator, tasks.names)
        for runs in tasks.chunks:
            yield evaluate_chunk(tasks.evaluator, tasks.names, runs, tasks.X[runs])

    def __repr__(self) -> str:
        return "<SerialExecutor>"


# ------------------------------------------------------------------------ evaluation


def status_of(exc: BaseException) -> str:
    """Status of a run that raised *exc* (``solver_error``, ``protocol_error``...)."""
    if isinstance(exc, SolverError):
        return "solver_error"
    if isinstance(exc, ProtocolError):
        return "protocol_error"
    if isinstance(exc, ParameterError):
        return "parameter_error"
    return "error"


def set_up(evaluator: Any, names: Sequence[str]) -> None:
    """Call the evaluator's optional ``setup()`` (with the design names if it takes them)."""
    if not hasattr(evaluator, "setup"):
        return
    try:
        takes_names = len(inspect.signature(evaluator.setup).parameters) >= 1
    except (TypeError, ValueError):
        takes_names = False
    evaluator.setup(list(names)) if takes_names else evaluator.setup()


def evaluate_chunk(evaluator: Any, names: list[str], runs: np.ndarray, X: np.ndarray) -> dict:
    """Evaluate rows *X* (runs *runs*) with *evaluator*; failures are recorded, not raised.

    Returns the raw result (see :class:`Executor`); a number output becomes ``{"y": x}``.
    """
    status: list[str] = []
    message: list[str] = []
    seconds: list[float] = []
    values: list[dict | None] = []
    for row in X:
        t0 = time.perf_counter()
        try:
            out = evaluator(dict(zip(names, row.tolist())))
            if isinstance(out, Mapping):
                out = dict(out)
            elif isinstance(out, (int, float, np.integer, np.floating)) and not isinstance(
                out, bool
            ):
                out = {"y": float(out)}
            else:
                raise TypeError(
                    f"evaluator returned {type(out).__name__}; expected a number or "
                    f"a mapping name -> number/array"
                )
            status.append(STATUS_OK)
            message.append("")
            values.append(out)
        except Exception as exc:  # failures are data; KeyboardInterrupt etc. still stop
            status.append(status_of(exc))
            message.append(f"{type(exc).__name__}: {exc}"[:2000])
            values.append(None)
        seconds.append(time.perf_counter() - t0)
    return {
        "runs": runs,
        "status": status,
        "message": message,
        "seconds": seconds,
        "values": values,
    }


# ------------------------------------------------------------------------- worker pool

_WORKER: dict[str, Any] = {}

#: evaluators a :class:`WorkerPool` worker keeps set up (least recently used dropped first)
POOL_CACHE_SIZE = 8
#: pickled evaluators up to this size travel with every task; larger ones are written
#: once to the pool's temporary folder and read by each worker that lacks them
INLINE_PAYLOAD_MAX = 256 * 1024


def _pool_worker_init(
    cache_size: int,
    owner_pid: int | None = None,
    owner_thread: int | None = None,
    start_method: str | None = None,
) -> None:
    """Initializer of a :class:`WorkerPool` process: an empty evaluator cache, and an
    exit when the process that owns the pool (*owner_pid*) dies."""
    _WORKER["pool"] = OrderedDict()
    _WORKER["pool_size"] = int(cache_size)
    if owner_pid is not None:
        exit_with_owner(owner_pid, owner_thread, start_method)


#: glibc's mallopt parameter numbers (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: blocks up to this size come from the heap in worker processes (glibc's largest dynamic
#: mmap threshold)
WORKER_MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory at the top of a worker's heap above this size goes back to the OS
WORKER_TRIM_THRESHOLD = 64 * 1024 * 1024


def relax_allocator() -> bool:
    """Let this worker process reuse freed heap memory from run to run (glibc only).

    A run allocates and frees arrays of a few hundred kB. glibc serves such blocks from
    its heap once a first free has raised its dynamic mmap threshold, unless the process
    started with a malloc setting in its environment: Dask's nanny starts its workers
    with ``MALLOC_TRIM_THRESHOLD_=65536``, and local processes spawned after
    ``distributed`` was imported inherit it. Then every such block is a new mapping whose
    pages fault in again: about 1 ms of system time per run in a Dask worker, none after
    this call. Sets the mmap threshold to :data:`WORKER_MMAP_THRESHOLD` and the trim
    threshold to :data:`WORKER_TRIM_THRESHOLD`; returns whether the C library accepted
    both (``False`` without glibc, which leaves the allocator alone).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs with
    except (OSError, AttributeError, TypeError):  # no mallopt (macOS, musl, Windows)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD)
    trim_ok = mallopt(_M_TRIM_THRESHOLD, WORKER_TRIM_THRESHOLD)
    return bool(mmap_ok) and bool(trim_ok)


def settle_worker() -> None:
    """Once per worker process, after its first evaluator set-up (pool and Dask workers).

    What exists now (modules, the compiled model) leaves the garbage collector's scans,
    which then visit only what the runs allocate (a few % of a run's time; O(1), no
    collection here), and :func:`relax_allocator` lets the runs reuse heap memory.
    """
    if _WORKER.get("settled"):
        return
    gc.freeze()
    relax_allocator()
    _WORKER["settled"] = True


def _pool_chunk(
    key: str, ref: bytes | str, names: list[str], runs: np.ndarray, X: np.ndarray
) -> dict:
    """WorkerPool task: evaluate a chunk with the evaluator *key*, set up once per worker.

    *ref* is the pickled evaluator (bytes) or the path of a file holding it; it is
    unpickled and set up only when this worker does not hold *key* yet.
    """
    cache = _WORKER.get("pool")
    if cache is None:  # a pool process whose initializer did not run: should not happen
        _pool_worker_init(POOL_CACHE_SIZE)
        cache = _WORKER["pool"]
    ev = cache.get(key)
    if ev is None:
        payload = ref if isinstance(ref, bytes) else Path(ref).read_bytes()
        ev = cloudpickle.loads(payload)
        set_up(ev, names)
        cache[key] = ev
        while len(cache) > _WORKER.get("pool_size", POOL_CACHE_SIZE):
            cache.popitem(last=False)
        settle_worker()
    else:
        cache.move_to_end(key)
    return evaluate_chunk(ev, names, runs, X)


def _shutdown_pool(executor: ProcessPoolExecutor, tmpdir: list) -> None:
    executor.shutdown(wait=True, cancel_futures=True)
    if tmpdir:
        shutil.rmtree(tmpdir.pop(), ignore_errors=True)


def check_pool(pool, client=None) -> None:
    """Raise :class:`~mhimmune.core.errors.ParameterError` unless *pool* is ``None`` or an open,
    working :class:`WorkerPool` given without a Dask *client*."""
    if pool is None:
        return
    if client is not None:
        raise ParameterError(
            "pool, client: give a WorkerPool (local processes) or a Dask client, not both"
        )
    if not isinstance(pool, WorkerPool):
        raise ParameterError(
            f"pool: expected a mhimmune.runs.ensemble.WorkerPool, got {type(pool).__name__}"
        )
    pool._check()


@contextmanager
def pool_for(n_jobs: int = 1, client: Any = None, pool: WorkerPool | None = None):
    """Context manager giving the pool a caller with several ensembles should use: *pool*
    itself, ``None`` (serial, or *client*), or — for ``n_jobs > 1`` without either — a
    :class:`WorkerPool` opened here and closed on exit."""
    check_pool(pool, client)
    if pool is None and client is None and int(n_jobs) > 1:
        with WorkerPool(int(n_jobs)) as own:
            yield own
    else:
        yield pool


class WorkerPool(Executor):
    """Local worker processes kept alive across :func:`~mhimmune.runs.ensemble.run_ensemble` calls.

    ``run_ensemble(..., n_jobs=4)`` opens a pool of four processes for that call only and
    sets the evaluator up in each (with the ``spawn`` start method, the default on macOS
    and Windows, that means importing mhimmune and loading the compiled model, seconds per
    call). A ``WorkerPool`` kept by the caller starts its processes once; every call that
    is given ``pool=`` (or ``executor=``) sends
    its chunks to them. Each worker keeps the evaluators it has seen, keyed by a hash of
    the pickled evaluator and the design's column names, and calls an evaluator's
    ``setup()`` once, so different evaluators can share one pool (the last
    :data:`POOL_CACHE_SIZE` per worker are kept by default). Results are identical to
    ``n_jobs=1`` and to ``n_jobs>1`` without a pool.

    Parameters
    ----------
    n_jobs
        Number of worker processes, an integer ≥ 1 (1 still runs in a separate process).
    cache_size
        Evaluators each worker keeps set up; the least recently used is dropped first.
    start_method
        ``"fork"``, ``"spawn"`` or ``"forkserver"`` (see :mod:`multiprocessing`);
        ``None`` uses the default of the platform, as ``run_ensemble(n_jobs=...)`` does.

    Raises
    ------
    ParameterError
        *n_jobs*, *cache_size* or *start_method* out of range (the message names it).

    Notes
    -----
    Use it as a context manager, or call :meth:`close` when done::

        with WorkerPool(4) as pool:
            for design in designs:
                run_ensemble(evaluator, design, pool=pool)

    With the ``fork`` start method (the Linux default) the processes start at the first
    task and inherit what this process has loaded then (the compiled model after
    the evaluator's ``validate``). A worker that dies (killed, out of memory, a crash
    in native code) breaks the pool: the running call raises
    :class:`~mhimmune.core.errors.MhimmuneError` and later calls refuse the pool; close it
    and create a new one (with ``out=`` checkpoints, ``resume=True`` continues).
    The pool can be shared by threads of this process, but not pickled.
    """

    def __init__(
        self, n_jobs: int, *, cache_size: int = POOL_CACHE_SIZE, start_method: str | None = None
    ):
        if (
            isinstance(n_jobs, bool)
            or not isinstance(n_jobs, (int, np.integer, float))
            or not math.isfinite(n_jobs)
            or int(n_jobs) != n_jobs
            or n_jobs < 1
        ):
            raise ParameterError(
                f"n_jobs: a WorkerPool needs an integer number of processes ≥ 1 (got {n_jobs!r})"
            )
        if (
            isinstance(cache_size, bool)
            or not isinstance(cache_size, (int, np.integer))
            or cache_size < 1
        ):
            raise ParameterError(f"cache_size: must be an integer ≥ 1 (got {cache_size!r})")
        methods = multiprocessing.get_all_start_methods()
        if start_method is not None and start_method not in methods:
            raise ParameterError(
                f"start_method: must be one of {', '.join(methods)} or None (got {start_method!r})"
            )
        self._n_jobs = int(n_jobs)
        self._cache_size = int(cache_size)
        self._start_method = start_method
        context = multiprocessing.get_context(start_method)
        self._executor = ProcessPoolExecutor(
            max_workers=self._n_jobs,
            mp_context=context,
            initializer=_pool_worker_init,
            initargs=(
                self._cache_size,
                os.getpid(),
                threading.main_thread().ident,
                context.get_start_method(),
            ),
        )
        self._tmpdir: list[str] = []
        self._spilled: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._broken: str | None = None
        self._finalizer = weakref.finalize(self, _shutdown_pool, self._executor, self._tmpdir)

    # -------------------------------------------------------------------- state
    @property
    def n_jobs(self) -> int:
        """Number of worker processes."""
        return self._n_jobs

    @property
    def n_workers(self) -> int:  # type: ignore[override]
        """Number of worker processes (as :attr:`n_jobs`)."""
        return self._n_jobs

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def broken(self) -> bool:
        """Whether a worker died, so the pool cannot run anything more."""
        return self._broken is not None

    def close(self) -> None:
        """Stop the workers (queued chunks are cancelled, running ones finish) and free
        the temporary folder. Calling it again does nothing."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "broken" if self._broken else "open"
        method = f", {self._start_method}" if self._start_method else ""
        plural = "es" if self._n_jobs != 1 else ""
        return f"<WorkerPool: {self._n_jobs} process{plural}{method}, {state}>"

    def __reduce__(self):
        raise TypeError(
            "a WorkerPool cannot be pickled; pass it to run_ensemble(pool=...) in "
            "the process that created it"
        )

    def _check(self) -> None:
        """Raise if the pool cannot take work."""
        if self._closed:
            raise ParameterError(
                "pool: the WorkerPool is closed; create a new WorkerPool (or "
                "use it inside its `with` block)"
            )
        if self._broken is not None:
            raise MhimmuneError(
                f"pool: the WorkerPool is broken ({self._broken}); close it and "
                f"create a new WorkerPool"
            )

    # --------------------------------------------------------------------- work
    def _reference(self, key: str, payload: bytes) -> bytes | str:
        """What a task carries to find the evaluator: the bytes, or a file for large ones."""
        if len(payload) <= INLINE_PAYLOAD_MAX:
            return payload
        with self._lock:
            if not self._tmpdir:
                self._tmpdir.append(tempfile.mkdtemp(prefix="mhimmune-pool-"))
            path = os.path.join(self._tmpdir[0], f"{key}.pkl")
            if key not in self._spilled:
                with atomic_path(Path(path)) as tmp:
                    Path(tmp).write_bytes(payload)
                self._spilled.add(key)
        return path

    def results(self, tasks: Tasks) -> Iterator[dict]:
        """Yield raw chunk results as they finish; the workers keep the evaluator set up."""
        self._check()
        names, X = tasks.names, tasks.X
        payload = cloudpickle.dumps(tasks.evaluator)
        h = hashlib.sha256(payload)
        h.update(json.dumps(list(names)).encode())
        key = h.hexdigest()[:32]
        ref = self._reference(key, payload)
        pending: set = set()
        try:
            for runs in tasks.chunks:
                pending.add(self._executor.submit(_pool_chunk, key, ref, names, runs, X[runs]))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
        except BrokenProcessPool as exc:
            self._broken = "a worker process died: killed, out of memory or a crash in native code"
            raise MhimmuneError(
                f"pool: a worker process of the WorkerPool died while running "
                f"the ensemble (killed, out of memory or a crash in native "
                f"code: {exc}); the pool cannot be used any more: close it and "
                f"create a new WorkerPool (with out=, resume=True keeps the "
                f"finished chunks)"
            ) from None
        except RuntimeError as exc:
            if self._closed:  # closed by another thread while this call ran
                raise ParameterError(
                    "pool: the WorkerPool was closed while the ensemble ran"
                ) from exc
            raise
        finally:
            for fut in pending:
                fut.cancel()


# ------------------------------------------------------------------------------ dask


# ---------------------------------------------------------------------------- choice


def make_executor(n_jobs: int = 1, client: Any = None, pool: WorkerPool | None = None) -> Executor:
    """The executor the old arguments describe: *pool* itself, a
    :class:`~mhimmune.runs.dask_executor.DaskExecutor` for
    *client*, a new :class:`WorkerPool` of *n_jobs* processes, or serial for ``n_jobs <= 1``.

    Parameters
    ----------
    n_jobs
        Local worker processes (ignored with *client* or *pool*).
    client
        A ``distributed.Client`` or a scheduler address.
    pool
        An open :class:`WorkerPool` (not together with *client*).

    Notes
    -----
    Close what this returns unless it is *pool* (``with make_executor(4) as ex: ...``).
    """
    check_pool(pool, client)
    if pool is not None:
        return pool
    if client is not None:
        # deferred: mhimmune.runs.dask_executor builds on this module's Executor
        from mhimmune.runs.dask_executor import DaskExecutor

        return DaskExecutor(client)
    n = max(1, int(n_jobs))
    return WorkerPool(n) if n > 1 else SerialExecutor()
