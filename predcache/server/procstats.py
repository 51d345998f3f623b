"""Process metrics: this process's with one worker, and with ``serve --workers N`` every
worker's, one series per ``pid``.

prometheus_client's multiprocess mode sums what workers write into ``PROMETHEUS_MULTIPROC_DIR``
and leaves out its process collector: a worker can only describe itself, and a scrape lands on
whichever worker accepts it. Yet the workers are processes of one host and one user, so the
worker that answers a scrape can read every sibling's ``/proc/<pid>`` as well as its own. This
collector does that at scrape time: it finds the workers from the files they keep in the
metrics directory (``counter_<pid>.db`` ...), keeps the live ones whose parent is the serve
process (a pid reused by an unrelated process is not a worker), and yields prometheus_client's
``process_*`` families (resident and virtual memory, CPU seconds, open and max fds, start time)
for each, labelled ``pid``. The values are as fresh as the scrape; no worker writes anything
for them.

Python's own collectors: ``python_info`` (the same for every worker) is included once. The
garbage collector's counters (``python_gc_*``) live inside each interpreter, where no other
process can read them, so they are only shown with one process.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

_WORKER_FILE = re.compile(r"[a-z_]+_(\d+)\.db")


def add_process_collectors(registry: CollectorRegistry) -> None:
    """One process: prometheus_client's process (CPU, memory, fds), platform and GC
    collectors, describing this process."""
    from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR

    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)


def worker_pids(metrics_dir: str, parent_pid: int | None, proc: str = "/proc") -> list[int]:
    """The live workers that keep files in ``metrics_dir``: children of ``parent_pid`` when it
    is known (else any live process), sorted."""
    return sorted(pid for pid in _pids(metrics_dir) if _is_child(pid, parent_pid, proc))


def forget_dead_workers(metrics_dir: str, live: list[int]) -> None:
    """Drop the live-only gauges (``livesum``, ``liveall``: requests in flight, breaker state)
    of workers that are gone, as prometheus_client's ``mark_process_dead`` does; uvicorn
    replaces a dead worker without telling anyone, so the scrape does it. Their counters stay:
    what they counted still happened."""
    from prometheus_client import multiprocess

    for pid in _pids(metrics_dir) - set(live):
        with contextlib.suppress(OSError):  # another worker's scrape removed them first
            multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]


def _pids(metrics_dir: str) -> set[int]:
    try:
        names = os.listdir(metrics_dir)
    except OSError:
        return set()
    return {int(m.group(1)) for m in map(_WORKER_FILE.fullmatch, names) if m is not None}


def _is_child(pid: int, parent_pid: int | None, proc: str) -> bool:
    try:
        with open(os.path.join(proc, str(pid), "stat"), "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False  # gone
    state, ppid = fields[0], int(fields[1])
    return state != b"Z" and (parent_pid is None or ppid == parent_pid)


class WorkersCollector:
    """``process_*`` for each live worker (label ``pid``), and ``python_info`` once."""

    def __init__(self, live: list[int], proc: str = "/proc") -> None:
        self.live = live
        self.proc = proc

    def collect(self) -> Iterator[Metric]:
        from prometheus_client import PLATFORM_COLLECTOR, ProcessCollector
        from prometheus_client.metrics_core import Metric

        merged: dict[str, Metric] = {}
        for pid in self.live:
            reader = ProcessCollector(pid=lambda p=pid: p, proc=self.proc, registry=None)  # type: ignore[misc]
            for family in reader.collect():
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(
                        family.name, family.documentation, family.type
                    )
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()
        yield from PLATFORM_COLLECTOR.collect()
