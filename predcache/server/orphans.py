"""No orphans: ``--workers`` processes end with their parent, and leave no metrics files.

When the ``serve`` parent is killed (kill -9, OOM), uvicorn cannot stop its workers: they kept
answering on the port, held it against a new ``serve``, and the parent's metrics directory was
never removed. Each worker therefore asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG`` through libc's ``prctl``, Linux) and, everywhere, watches its parent
pid from a daemon thread as well; on the parent's death it removes the metrics directory,
shuts down like on SIGTERM, and exits hard if that takes more than :data:`GRACE_S`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from predcache.parent import signal_on_parent_death, watch_parent

GRACE_S = 5.0
METRICS_PREFIX = "predcache-metrics-"


def die_with_parent(parent_pid: int, metrics_dir: str | None) -> None:
    """Called in each worker at start: end this process when ``parent_pid`` is gone."""
    signal_on_parent_death(signal.SIGTERM)

    def gone() -> None:
        cleanup_if_orphaned(parent_pid, metrics_dir)
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown
        time.sleep(GRACE_S)
        os._exit(1)

    watch_parent(parent_pid, gone)


def cleanup_if_orphaned(parent_pid: int | None, metrics_dir: str | None) -> None:
    """On a worker's shutdown: with its parent gone, nobody else will remove the metrics
    directory. Called from the app's shutdown (uvicorn re-raises SIGTERM after it, so no
    ``atexit`` handler would run) and from the parent watch."""
    if parent_pid is not None and metrics_dir and os.getppid() != parent_pid:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def make_metrics_dir() -> str:
    """A private directory for this server's metrics files, named after its pid."""
    sweep_metrics_dirs()
    return tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")


def sweep_metrics_dirs() -> int:
    """Remove metrics directories of servers that are gone (killed before their cleanup)."""
    removed = 0
    for d in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = d.name[len(METRICS_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if d.is_dir() and d.stat().st_uid == os.geteuid():
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
