"""The rows of a sweep (TTL x strategy, and the no-cache baseline), in one process or many.

Each row is independent of the others: its own namespace of the backend (or its own memory
store), its own replay of the same workload, its own streamed statistics. So rows can run in
parallel processes (``--jobs``, a spawn-context :class:`ProcessPoolExecutor`) and give exactly
the counts they give one after the other: outcomes follow from the seed (see
:mod:`predcache.bench.engine`). Each process loads the models again and gets the workload
(its seed, or a trace's arrays) and the scorer's market data from the parent.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from predcache.bench.accuracy import Scorer
from predcache.bench.engine import replay_stream
from predcache.bench.records import Chunk, Counters
from predcache.bench.requests_out import RequestWriter
from predcache.bench.rowstats import RowStats
from predcache.bench.summary import number
from predcache.bench.workload import Workload
from predcache.parent import signal_on_parent_death, watch_parent
from predcache.registry import ModelSource
from predcache.stampede import Strategy

if TYPE_CHECKING:
    from predcache.bench.runner import BenchOptions, ProgressFactory


@dataclass(frozen=True)
class RowSpec:
    """One row to replay: its TTL and strategy (``shown`` is None for the no-cache row)."""

    ttl_s: float
    stampede: Strategy
    shown: Strategy | None
    what: str
    namespace: str
    #: where this row's requests go (a part file), or None
    requests: str | None = None
    #: sum the fresh predictions' errors (else the no-cache row's sums are used)
    score_fresh: bool = True


@dataclass(frozen=True)
class RowResult:
    counters: Counters
    stats: RowStats


def run_row(
    opts: BenchOptions,
    registry: ModelSource,
    workload: Workload,
    score: Scorer,
    spec: RowSpec,
    tick: Callable[[int], None] | None,
) -> RowResult:
    """Replay one row, streaming each chunk into its statistics (and requests file)."""
    stats = RowStats(score.paths, score_fresh=spec.score_fresh)
    writer = None
    if spec.requests is not None:
        writer = RequestWriter(spec.requests, workload.keys, header=False)

    def sink(chunk: Chunk) -> None:
        view = score.view(chunk.times, chunk.key_index)
        stats.add(chunk, view)
        if writer is not None:
            writer.write(chunk, view, number(spec.ttl_s), spec.shown)

    try:
        counters = replay_stream(
            workload, registry, sink, ttl_s=spec.ttl_s, model_delay_s=opts.model_delay_s,
            backend=opts.backend, cache_dir=opts.cache_dir, namespace=spec.namespace,
            size_limit=opts.size_limit, progress=tick, stampede=spec.stampede,
            stale_grace_s=opts.stale_grace_s, model_concurrency=opts.model_concurrency,
            model_fail_rate=opts.model_fail_rate, stale_if_error_s=opts.stale_if_error_s,
        )  # fmt: skip
    finally:
        if writer is not None:
            writer.close()
    return RowResult(counters, stats)


#: Without ``--jobs``: rows go to other processes once they hold this many requests in all;
#: below, starting processes (each imports numpy and loads the models) costs more than it saves.
PARALLEL_MIN = 400_000


def auto_jobs(requests: int) -> int:
    """``--jobs`` left out: every core for a large sweep, one process for a small one."""
    return (os.cpu_count() or 1) if requests >= PARALLEL_MIN else 1


def run_rows(
    opts: BenchOptions,
    registry: ModelSource,
    workload: Workload,
    score: Scorer,
    specs: list[RowSpec],
    progress: ProgressFactory | None,
) -> list[RowResult]:
    """Every row, in ``specs`` order; on ``opts.jobs`` processes when more than one."""
    jobs = min(auto_jobs(workload.requests * len(specs)) if opts.jobs is None else opts.jobs,
               len(specs))  # fmt: skip
    if jobs <= 1:
        out = []
        for spec in specs:
            tick = progress(spec.what, workload.requests) if progress is not None else None
            out.append(run_row(opts, registry, workload, score, spec, tick))
        return out
    portable = copy.copy(score)
    portable.plugin = None  # a plugged model is loaded again in each process
    total = workload.requests * len(specs)
    tick = progress(f"{len(specs)} rows on {jobs} processes", total) if progress else None
    results: dict[int, RowResult] = {}
    context = multiprocessing.get_context("spawn")
    done_by_row = context.Array("q", len(specs), lock=False)  # each worker's requests replayed
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_share,
        initargs=(done_by_row, os.getpid()),
    ) as pool:
        futures = {
            pool.submit(_worker, opts, workload, portable, spec, i): i
            for i, spec in enumerate(specs)
        }
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for future in finished:
                    results[futures[future]] = future.result()
                if tick is not None:
                    tick(sum(done_by_row))
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return [results[i] for i in range(len(specs))]


#: in a worker process: how many requests each row has replayed (shared with the parent)
_done_by_row: Any = None


def _share(done_by_row: Any, parent_pid: int) -> None:
    """A worker's start: the shared progress counters, and an end with the bench (a bench
    killed with SIGKILL cannot stop its pool, whose rows would replay on for nobody)."""
    global _done_by_row
    _done_by_row = done_by_row
    signal_on_parent_death(signal.SIGKILL)
    watch_parent(parent_pid, lambda: os._exit(1))


def _worker(
    opts: BenchOptions, workload: Workload, score: Scorer, spec: RowSpec, index: int
) -> RowResult:
    """One row in a worker process: the models loaded again, the rest as the parent had it;
    its progress goes to the parent's bar through shared memory."""
    from predcache.factory import select_models

    registry = select_models(opts.model, opts.model_version, opts.models_dir, notify=_quiet)
    if opts.model is not None:
        score.plugin = registry

    def tick(done: int) -> None:
        _done_by_row[index] = done

    return run_row(opts, registry, workload, score, spec, tick)


def _quiet(message: str) -> None:
    """Notices (a model trained) were already shown by the parent."""
