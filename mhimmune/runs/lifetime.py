"""Worker processes that end with the process that started them.

A program killed with SIGKILL (or crashing) cannot shut its process pool down; its
workers would be re-parented and compute on. :func:`exit_with_owner`, called in a
worker's initializer, ends the worker soon after the owner dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["exit_with_owner", "PARENT_POLL_SECONDS"]

#: seconds between a worker's checks that the process owning its pool is still alive
PARENT_POLL_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def exit_with_owner(owner_pid: int, owner_thread: int | None, start_method: str | None) -> None:
    """Make this worker exit when the process *owner_pid* that opened its pool dies, so a
    killed program (SIGKILL, a crash) leaves no orphan workers computing on.

    On Linux the kernel sends SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), set
    only where "parent" means the owner process: forked from its main thread (the signal
    follows the forking *thread*, which may end before the process does), or started by a
    forkserver (which exits when the owner does). Everywhere, a daemon thread checks every
    :data:`PARENT_POLL_SECONDS` that the parent and the owner still exist and ends this
    process with ``os._exit`` otherwise.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        safe = (start_method == "forkserver" and parent != owner_pid) or (
            start_method == "fork" and threading.get_ident() == owner_thread
        )
        if safe:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            except (OSError, AttributeError):  # no usable prctl: the thread below suffices
                pass
    if not _process_alive(owner_pid):  # the owner died before the signal was set
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent or not _process_alive(owner_pid):
                os._exit(1)

    threading.Thread(target=watch, name="mhimmune-parent-watch", daemon=True).start()
