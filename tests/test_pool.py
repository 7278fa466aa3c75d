"""WorkerPool: worker processes reused across run_ensemble calls.

The pool must not change results (same outputs, order and failure handling as
``n_jobs=1`` and as a fresh ``n_jobs=2`` pool), must set each evaluator up once per
worker however many calls use it, and must fail clearly when closed, broken or
combined with a Dask client. Toy evaluators keep these tests fast; the real model is
used once to check that a ModelEvaluator gives identical numbers through a pool.
"""

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mhimmune.core.errors import MhimmuneError, ParameterError, SolverError
from mhimmune.mh.evaluator import ModelEvaluator
from mhimmune.mh.template import ScheduleTemplate
from mhimmune.runs import ensemble as en
from mhimmune.runs import executor
from mhimmune.runs.ensemble import WorkerPool, run_ensemble
from mhimmune.studies import optimize as opt

# ------------------------------------------------------------------ toy evaluators


def linear(values):
    """y = 2a + b, and a second output a·b."""
    return {"y": 2 * values["a"] + values["b"], "ab": values["a"] * values["b"]}


def fails_above(values):
    """Raises for a > 0.75: an evaluator that fails on purpose."""
    if values["a"] > 0.75:
        raise SolverError("toy solver gave up", segment=0, time_h=1.0, overrides=values)
    return {"y": values["a"]}


def dies_above(values):
    """Kills its own worker process for a > 0.5 (a crash in native code, the OOM killer)."""
    if values["a"] > 0.5:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"y": values["a"]}


class SetupLog:
    """Records each setup() as a line 'TAG PID' in a file; outputs carry the worker's pid."""

    def __init__(self, path, tag, delay=0.0):
        self.path = str(path)
        self.tag = tag
        self.delay = delay

    def fingerprint(self):
        return f"setup-log-{self.tag}"

    def setup(self):
        with open(self.path, "a") as fh:
            fh.write(f"{self.tag} {os.getpid()}\n")

    def __call__(self, values):
        time.sleep(self.delay)
        return {"y": 2 * values["a"] + values["b"], "pid": float(os.getpid())}


class Counting:
    """Appends one line per evaluation to a file (works across processes)."""

    def __init__(self, path):
        self.path = str(path)

    def fingerprint(self):
        return "counting-linear"

    def __call__(self, values):
        with open(self.path, "a") as fh:
            fh.write(f"{values['a']}\n")
        return linear(values)


def design(n=40, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.uniform(0, 1, n), "b": rng.uniform(-1, 1, n)})


def setups(path):
    """(tag, pid) of every setup() call logged in *path*."""
    if not Path(path).exists():
        return []
    return [(t, int(p)) for t, p in (line.split() for line in Path(path).read_text().splitlines())]


def same(a, b):
    """The results tables agree in everything but wall times."""
    pd.testing.assert_frame_equal(
        a.results.drop(columns=["seconds"]), b.results.drop(columns=["seconds"])
    )
    assert a.output_names == b.output_names and a.n_failed == b.n_failed


# ------------------------------------------------------------------ identical results


def test_a_shared_pool_gives_the_same_results_as_serial_and_fresh_processes():
    d = design(60)
    serial = run_ensemble(linear, d, n_jobs=1, progress=False)
    fresh = run_ensemble(linear, d, n_jobs=2, chunk_size=7, progress=False)
    np.testing.assert_allclose(serial.output("y"), 2 * d["a"] + d["b"], rtol=0, atol=1e-15)
    with WorkerPool(2) as pool:
        first = run_ensemble(linear, d, pool=pool, chunk_size=7, progress=False)
        other = run_ensemble(fails_above, d, pool=pool, chunk_size=5, progress=False, warn=False)
        again = run_ensemble(linear, d, pool=pool, n_jobs=7, progress=False)  # n_jobs ignored
    assert pool.closed and not pool.broken
    for res in (fresh, first, again):
        same(serial, res)
    assert list(first.results["run"]) == list(range(60))
    expected = (d["a"] > 0.75).sum()
    assert other.n_failed == expected and expected > 0
    np.testing.assert_allclose(other.output("y")[other.ok], d["a"][other.ok])


def test_real_model_evaluators_share_one_pool_with_identical_numbers(model):
    d = en.grid_design(session_interval_day=[1.0, 2.5], field_kA_per_m=[12.0, 16.0])
    assert len(d) == 4
    ev_volume = ModelEvaluator(ScheduleTemplate("40 d"), ["final_volume_treated_mm3"])
    ev_heat = ModelEvaluator(ScheduleTemplate("40 d"), ["cem43_total_min", "peak_temperature_C"])
    serial = {
        k: run_ensemble(ev, d, n_jobs=1, progress=False)
        for k, ev in (("volume", ev_volume), ("heat", ev_heat))
    }
    fresh = {
        k: run_ensemble(ev, d, n_jobs=2, chunk_size=1, progress=False)
        for k, ev in (("volume", ev_volume), ("heat", ev_heat))
    }
    with WorkerPool(2) as pool:
        pooled = {
            k: run_ensemble(ev, d, pool=pool, chunk_size=1, progress=False)
            for k, ev in (("volume", ev_volume), ("heat", ev_heat))
        }
        volume_again = run_ensemble(ev_volume, d, pool=pool, progress=False)
    for k in ("volume", "heat"):
        assert serial[k].n_failed == 0
        same(serial[k], fresh[k])
        same(serial[k], pooled[k])
    same(serial["volume"], volume_again)
    vol = serial["volume"].output("final_volume_treated_mm3")
    assert np.all(np.isfinite(vol)) and np.all(vol >= 0)
    cem = serial["heat"].output("cem43_total_min")
    # a stronger field heats more: rows 1 and 3 (16 kA/m) above rows 0 and 2 (12 kA/m)
    assert cem[1] > cem[0] and cem[3] > cem[2]
    peak = serial["heat"].output("peak_temperature_C")
    assert np.all((peak > 37.0) & (peak < 60.0))


# ------------------------------------------------------------------ setup once per worker


def test_setup_runs_once_per_worker_and_evaluator_across_calls(tmp_path):
    log = tmp_path / "setups.txt"
    d = design(8)
    ev_a, ev_b = SetupLog(log, "A", delay=0.03), SetupLog(log, "B", delay=0.03)
    pids = {"A": set(), "B": set()}
    with WorkerPool(2) as pool:
        for ev in (ev_a, ev_a, ev_b, ev_a, ev_b):
            res = run_ensemble(ev, d, pool=pool, chunk_size=1, progress=False)
            assert res.n_failed == 0
            np.testing.assert_allclose(res.output("y"), 2 * d["a"] + d["b"])
            pids[ev.tag] |= set(res.output("pid").astype(int))
    lines = setups(log)
    assert len(lines) == len(set(lines))  # no (evaluator, worker) pair set up twice
    for tag in ("A", "B"):
        # exactly the workers that computed runs of the evaluator set it up, once each
        assert sorted(p for t, p in lines if t == tag) == sorted(pids[tag])
    workers = {p for _, p in lines}
    assert 1 <= len(workers) <= 2 and os.getpid() not in workers
    assert pids["A"] | pids["B"] == workers  # the same processes served all five calls

    # without a pool every call starts new processes that set the evaluator up again
    log.unlink()
    seen = set()
    for _ in range(3):
        seen |= set(
            run_ensemble(ev_a, d, n_jobs=2, chunk_size=1, progress=False).output("pid").astype(int)
        )
    assert len(seen) >= 3 and len(setups(log)) >= 3


def test_workers_drop_the_least_recently_used_evaluator_beyond_the_cache_size(tmp_path):
    log = tmp_path / "setups.txt"
    d = design(4)
    a, b = SetupLog(log, "A"), SetupLog(log, "B")
    with WorkerPool(1, cache_size=1) as pool:
        for ev in (a, a, b, a, a):
            run_ensemble(ev, d, pool=pool, progress=False)
    assert [t for t, _ in setups(log)] == ["A", "B", "A"]
    assert len({p for _, p in setups(log)}) == 1
    log.unlink()
    with WorkerPool(1, cache_size=2) as pool:
        for ev in (a, b, a, b, a):
            run_ensemble(ev, d, pool=pool, progress=False)
    assert [t for t, _ in setups(log)] == ["A", "B"]


def test_large_evaluators_travel_through_a_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(executor, "INLINE_PAYLOAD_MAX", 0)  # every evaluator counts as large
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    log = tmp_path / "setups.txt"
    d = design(12)
    ev = SetupLog(log, "A")
    reference = run_ensemble(ev, d, n_jobs=1, progress=False)
    log.unlink()
    with WorkerPool(2) as pool:
        for _ in range(2):
            res = run_ensemble(ev, d, pool=pool, chunk_size=2, progress=False)
            np.testing.assert_allclose(res.output("y"), reference.output("y"))
        assert len(list(tmp_path.glob("mhimmune-pool-*/*.pkl"))) == 1
    assert not list(tmp_path.glob("mhimmune-pool-*"))  # removed on close
    lines = setups(log)
    assert 1 <= len(lines) <= 2 and len(lines) == len(set(lines))


# ------------------------------------------------------------------ failures, checkpoints


def test_failures_through_a_pool_are_counted_as_without_it():
    d = design(40)
    expected = d.index[d["a"] > 0.75].tolist()
    assert expected
    with pytest.warns(en.EnsembleFailureWarning, match=rf"{len(expected)} of 40 runs failed"):
        serial = run_ensemble(fails_above, d, progress=False)
    with WorkerPool(2) as pool:
        with pytest.warns(en.EnsembleFailureWarning, match=rf"{len(expected)} of 40 runs failed"):
            res = run_ensemble(fails_above, d, pool=pool, chunk_size=3, progress=False)
        # the pool still works after failed runs
        ok = run_ensemble(linear, d, pool=pool, progress=False)
    assert res.failures["run"].tolist() == expected
    assert set(res.failures["status"]) == {"solver_error"}
    assert res.failures["message"].str.contains("toy solver gave up").all()
    pd.testing.assert_frame_equal(res.failures, serial.failures)
    same(serial, res)
    assert ok.n_failed == 0


def test_checkpoints_resume_through_a_pool(tmp_path):
    d = design(40)
    out = tmp_path / "run"
    counter = tmp_path / "calls.txt"
    with WorkerPool(2) as pool:
        full = run_ensemble(Counting(counter), d, pool=pool, chunk_size=5, out=out, progress=False)
        assert len(counter.read_text().splitlines()) == 40
        chunks = sorted(out.glob("chunks/chunk-*.parquet"))
        assert len(chunks) == 8
        lost = chunks[2:4]
        n_lost = sum(len(pd.read_parquet(f)) for f in lost)
        for f in lost:
            f.unlink()
        counter.unlink()
        res = run_ensemble(
            Counting(counter), d, pool=pool, chunk_size=5, out=out, resume=True, progress=False
        )
    assert n_lost == 10
    assert len(counter.read_text().splitlines()) == n_lost and res.n_computed == n_lost
    same(full, res)
    np.testing.assert_allclose(res.output("y"), 2 * d["a"] + d["b"])


# ------------------------------------------------------------------ misuse, broken pools


def test_closed_pool_client_and_bad_arguments_are_refused_by_name(tmp_path):
    d = design(4)
    pool = WorkerPool(2)
    assert repr(pool) == "<WorkerPool: 2 processes, open>" and pool.n_jobs == 2
    with pytest.raises(ParameterError, match=r"pool, client: .*not both"):
        run_ensemble(linear, d, pool=pool, client=object(), progress=False)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(pool)
    pool.close()
    pool.close()  # idempotent
    assert pool.closed and repr(pool) == "<WorkerPool: 2 processes, closed>"
    with pytest.raises(ParameterError, match=r"pool: the WorkerPool is closed"):
        run_ensemble(linear, d, pool=pool, progress=False)
    with pytest.raises(ParameterError, match=r"pool: the WorkerPool is closed"):
        run_ensemble(linear, d, pool=pool, out=tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()  # refused before any checkpoint was written
    with pytest.raises(ParameterError, match=r"pool: expected a mhimmune.runs.ensemble.WorkerPool"):
        run_ensemble(linear, d, pool=2, progress=False)
    for bad in (0, -1, 1.5, True, "2", float("inf"), float("nan")):
        with pytest.raises(ParameterError, match=r"^n_jobs: "):
            WorkerPool(bad)
    with pytest.raises(ParameterError, match=r"^cache_size: "):
        WorkerPool(2, cache_size=0)
    with pytest.raises(ParameterError, match=r"^start_method: "):
        WorkerPool(2, start_method="thread")


def test_a_killed_worker_breaks_the_pool_with_a_clear_error_not_a_hang():
    d = pd.DataFrame({"a": [0.1, 0.2, 0.9, 0.3], "b": 0.0})
    pool = WorkerPool(2)
    assert run_ensemble(linear, d, pool=pool, progress=False).n_failed == 0
    t0 = time.perf_counter()
    with pytest.raises(MhimmuneError, match=r"pool: a worker process of the WorkerPool died"):
        run_ensemble(dies_above, d, pool=pool, chunk_size=1, progress=False)
    assert time.perf_counter() - t0 < 60
    assert pool.broken and "broken" in repr(pool)
    with pytest.raises(MhimmuneError, match=r"pool: the WorkerPool is broken"):
        run_ensemble(linear, d, pool=pool, progress=False)
    pool.close()
    assert pool.closed
    with WorkerPool(2) as fresh:  # a new pool works
        assert run_ensemble(linear, d, pool=fresh, progress=False).n_failed == 0


# ------------------------------------------------------------------ optimize_schedule


class Bump:
    """Toy objective over a 'cohort' parameter k: peak at x = 2, y = 1; outputs the pid."""

    def __call__(self, v):
        score = -((v["x"] - 2.0) ** 2) - 0.5 * (v["y"] - 1.0) ** 2 + 0.1 * v["k"]
        return {"score": score, "pid": float(os.getpid())}


def no_score(v):
    return {"other": v["x"]}


SPACE = {"x": (0.0, 4.0), "y": (-1.0, 3.0)}
COHORT = pd.DataFrame({"k": [0.0, 1.0, -1.0]})


def record_pools(monkeypatch):
    """A list that receives every WorkerPool created from now on."""
    created = []
    init = WorkerPool.__init__

    def recording(self, *args, **kwargs):
        init(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(WorkerPool, "__init__", recording)
    return created


def de(**kw):
    return opt.optimize_schedule(
        Bump(),
        SPACE,
        cohort=COHORT,
        objective="score",
        method="differential_evolution",
        budget=60,
        seed=3,
        n_boot=20,
        progress=False,
        de_options={"popsize": 5},
        **kw,
    )


def test_differential_evolution_on_one_pool_gives_the_serial_table(monkeypatch):
    created = record_pools(monkeypatch)
    serial = de()
    assert created == []  # no executor: runs here, no processes
    with executor.make_executor(n_jobs=2) as two:
        parallel = de(executor=two)
        assert not two.closed  # the search leaves the caller's executor open
    assert len(created) == 1 and created[0].closed  # one pool for the search, closed at the end
    assert serial.n_batches >= 3 and parallel.n_batches == serial.n_batches
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    assert serial.best == parallel.best and serial.best_value == parallel.best_value
    assert abs(serial.best["x"] - 2.0) < 0.6 and abs(serial.best["y"] - 1.0) < 1.2
    # every generation ran on the same (at most two) worker processes
    pids = set(parallel.runs["pid"].astype(int))
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids
    pd.testing.assert_frame_equal(
        serial.runs.drop(columns=["seconds", "pid"]), parallel.runs.drop(columns=["seconds", "pid"])
    )

    with WorkerPool(2) as pool:  # a caller's pool is used and left open
        given = de(executor=pool)
        assert not pool.closed
        again = de(executor=pool)
        # two searches, one set of processes
        shared = set(given.runs["pid"].astype(int)) | set(again.runs["pid"].astype(int))
        assert 1 <= len(shared) <= 2 and os.getpid() not in shared
    assert len(created) == 2 and created[1] is pool  # no pool of its own when one is given
    pd.testing.assert_frame_equal(serial.table, given.table)
    pd.testing.assert_frame_equal(serial.table, again.table)


def test_optimize_closes_its_pool_on_errors_and_refuses_pool_with_client(monkeypatch):
    created = record_pools(monkeypatch)
    with executor.make_executor(n_jobs=2) as two:
        with pytest.raises(ParameterError, match=r"objective: 'score' is not an output"):
            opt.optimize_schedule(
                no_score,
                SPACE,
                objective="score",
                method="differential_evolution",
                budget=20,
                executor=two,
                progress=False,
                de_options={"popsize": 5},
            )
        assert not two.closed and not two.broken  # still usable after the error
    assert len(created) == 1 and created[0].closed
    with WorkerPool(1) as pool:
        with pytest.raises(ParameterError, match=r"pool, client: .*not both"):
            de(executor=executor.make_executor(pool=pool, client=object()))
        pool.close()
        with pytest.raises(ParameterError, match=r"pool: the WorkerPool is closed"):
            de(executor=pool)
    with pytest.raises(ParameterError, match=r"pool: expected a mhimmune.runs.ensemble.WorkerPool"):
        de(executor=executor.make_executor(pool="local"))
    with pytest.raises(ParameterError, match=r"executor: expected an Executor"):
        de(executor="local")
    assert len(created) == 2 and created[1] is pool  # refused before starting a pool of its own


# ------------------------------------------------------------------ worker processes

_FAULTS = """
import resource, sys
import numpy as np
from mhimmune.runs.executor import relax_allocator

def faults(n=50):  # page faults of n allocations of 1 MiB, each freed again
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        block = np.ones(131072)
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

faults(5)
before = faults()
accepted = relax_allocator()
faults(5)
print(before, accepted, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_relaxed_allocator_reuses_freed_blocks_under_dasks_trim_setting():
    """A process started as Dask's nanny starts its workers (MALLOC_TRIM_THRESHOLD_=65536)
    maps every freed-and-reallocated 1 MiB block anew: its 256 pages fault in each time
    (at least 200 per block over 50 blocks); after relax_allocator() (accepted by glibc)
    the blocks come from the heap and fault in no page (at most 1 per block)."""
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    before, accepted, after = int(out[0]), out[1], int(out[2])
    assert before >= 200 * 50
    assert accepted == "True"
    assert after <= 50
