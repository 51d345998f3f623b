"""Child processes that end with their parent: ``serve --workers`` and ``bench --jobs``.

A parent killed with SIGKILL (or by the OOM killer) cannot stop its children: uvicorn's workers
kept answering on the port, and the bench's row processes kept replaying rows nobody would
read, each holding a core. A child therefore asks the kernel for a signal when its parent dies
(``PR_SET_PDEATHSIG`` through libc's ``prctl``; Linux) and, on every platform, watches its
parent's pid from a daemon thread as well. The watch also covers the moment before the
``prctl``: a parent that died before it was asked is seen at the first check.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
WATCH_EVERY_S = 0.5


def signal_on_parent_death(sig: int) -> bool:
    """Ask the kernel to send ``sig`` when the parent dies (Linux only); True when set."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(parent_pid: int, on_gone: Callable[[], None]) -> None:
    """Call ``on_gone`` (in a daemon thread) once ``parent_pid`` is no longer the parent."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCH_EVERY_S)
        on_gone()

    threading.Thread(target=watch, name="predcache-parent-watch", daemon=True).start()
