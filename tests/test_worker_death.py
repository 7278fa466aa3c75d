"""Worker processes of a WorkerPool end when the process that opened the pool dies.

A program killed with SIGKILL cannot shut its pool down; its workers must not live on,
re-parented, computing. A child Python process opens a 2-worker pool whose tasks write
their pid to a folder and sleep; the test kills the child and checks the workers are
gone within 5 s.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mhimmune.runs.executor import Tasks, WorkerPool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from mhimmune.runs.executor import Tasks, WorkerPool

    folder, method = sys.argv[1], sys.argv[2]

    def slow(values):
        open(os.path.join(folder, str(os.getpid())), "w").close()
        time.sleep(120)
        return 0.0

    with WorkerPool(2, start_method=method) as pool:
        tasks = Tasks(slow, ["x"], np.zeros((2, 1)), [np.array([0]), np.array([1])])
        for _ in pool.results(tasks):
            pass
    """
)


def _alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie waiting for a reaper counts as dead)."""
    status = Path(f"/proc/{pid}/status")
    if status.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            state = next(ln for ln in status.read_text().splitlines() if ln.startswith("State:"))
        except (OSError, StopIteration):
            return False
        return "Z" not in state.split()[1]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


@pytest.mark.parametrize(
    "method",
    [
        m
        for m in ("fork", "forkserver")
        if m in __import__("multiprocessing").get_all_start_methods()
    ],
)
def test_workers_exit_when_the_owner_is_killed(tmp_path, method):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), method], env=env)
    try:
        assert _wait_for(lambda: len(list(tmp_path.iterdir())) == 2, 30), "workers did not start"
        pids = [int(p.name) for p in tmp_path.iterdir()]
        assert all(_alive(pid) for pid in pids)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        gone = _wait_for(lambda: not any(_alive(pid) for pid in pids), 5)
        survivors = [pid for pid in pids if _alive(pid)]
        for pid in survivors:  # do not leave them running if the test fails
            os.kill(pid, signal.SIGKILL)
        assert gone, f"worker processes {survivors} outlived their killed parent"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _pid(values):
    return float(os.getpid())


def test_a_pool_started_from_a_thread_survives_the_thread():
    """The parent-death signal follows the thread that forked a worker; a pool whose
    workers were started by a short-lived thread must keep working after it ends."""
    tasks = Tasks(_pid, ["x"], np.zeros((2, 1)), [np.array([0]), np.array([1])])
    with WorkerPool(2) as pool:
        first: list = []
        t = threading.Thread(target=lambda: first.extend(pool.results(tasks)))
        t.start()
        t.join()
        time.sleep(1.5)  # longer than the workers' poll of their parent
        again = list(pool.results(tasks))
        assert not pool.broken
        assert all(r["status"] == ["ok"] for r in first + again)
