"""The no-cache row (TTL 0), derived cheaply and honestly.

Without a cache every request calls the model, but the toy model's answer depends only on the
key and the market minute (it reads closed one-minute candles), so one real computation per
distinct (key, minute), through the same predictor the cached rows use, gives every request's
answer and a measured inference time: each request of that key and minute is served that
prediction, and its latency is the simulated model delay plus that computation's measured
inference. ``model_calls`` is the number a cache-less server makes (one per request);
``model_runs`` the real computations made here, so a run of millions of requests costs a few
thousand model calls instead of millions. (A ``--model`` function is called the same way, once
per key and minute.) With ``--model-concurrency`` the requests queue for the simulated workers
exactly as in the cached rows. Duplicate calls and the most computations in flight follow
from the arrival times: a computation is in flight for the model delay after its request.
Simulated failures (``--model-fail-rate``) draw the engine's seeded die once per request.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from predcache.bench.records import MISS_CODE, Chunk, Counters
from predcache.bench.workload import CHUNK, Workload
from predcache.clock import ManualClock
from predcache.predictor import Predictor
from predcache.registry import ModelSource

if TYPE_CHECKING:
    from predcache.bench.engine import Simulation

_MINUTE_BITS = 40  # key id above, market minute below


def no_cache(
    workload: Workload,
    registry: ModelSource,
    sink: Callable[[Chunk], None],
    sim: Simulation,
    progress: Callable[[int], None] | None,
) -> Counters:
    """Replay ``workload`` with no cache (``sim`` is the engine's Simulation)."""
    delay, workers_n = sim.model_delay_s, sim.model_concurrency
    clock = ManualClock(workload.first_s)
    predictor = Predictor(
        None, registry, clock=clock, ttl_s=0.0, model_delay_s=delay, sleep=_no_sleep
    )
    memo: dict[int, tuple[float, float, float]] = {}
    last_end = np.full(len(workload.keys), -np.inf)
    tail = np.zeros(0)  # arrivals whose computation may still be in flight
    workers = None if workers_n is None else [workload.first_s] * workers_n
    running: list[float] = []  # ends of the queued computations in flight
    duplicates = max_inflight = 0
    # the engine's failure die, one draw per computation: here, one per request in order
    fail_die, rate = random.Random(f"{sim.seed}:model-fail"), sim.model_fail_rate
    started, sink_s = time.perf_counter(), 0.0
    for c, (times, keys) in enumerate(workload.chunks(CHUNK)):
        minute = np.floor(times / 60.0).astype(np.int64)
        codes = (keys.astype(np.int64) << _MINUTE_BITS) | minute
        uniq, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        table = np.empty((len(uniq), 3))
        for u, (code, i) in enumerate(zip(uniq.tolist(), first.tolist(), strict=True)):
            if code not in memo:
                clock.set(float(times[i]))
                k = code >> _MINUTE_BITS
                entry = predictor.compute(*workload.keys[k])
                memo[code] = (entry["predicted_price"], entry["as_of"], entry["compute_ms"])
            table[u] = memo[code]
        floor = int(minute[0])
        memo = {code: v for code, v in memo.items() if (code & ((1 << _MINUTE_BITS) - 1)) >= floor}
        price, as_of, ms = table[inverse, 0], table[inverse, 1], table[inverse, 2]
        if workers is None:
            ends = times + delay
            latency = delay * 1000.0 + ms
            # per key: in flight when the previous request's computation ends after this one
            prev = _previous_end(keys, ends, last_end)
            duplicates += int(np.count_nonzero(prev > times))
            both = np.concatenate((tail, times))
            active = np.arange(len(both)) - np.searchsorted(both, both - delay, side="right") + 1
            max_inflight = max(max_inflight, int(active[len(tail) :].max()))
            tail = both[both > times[-1] - delay]
        else:
            latency, dup, most = _queued(times, keys, ms, delay, workers, running, last_end)
            duplicates += dup
            max_inflight = max(max_inflight, most)
        zeros = np.zeros(len(times))
        failed = np.zeros(len(times), dtype=bool)
        if rate > 0:
            failed = np.array([fail_die.random() < rate for _ in range(len(times))], dtype=bool)
            price, as_of = np.where(failed, np.nan, price), np.where(failed, np.nan, as_of)
        chunk = Chunk(
            c * CHUNK, times, keys, np.full(len(times), MISS_CODE, dtype=np.int8),
            np.where(failed, np.nan, zeros), zeros, ms, latency, price, as_of, failed,
            np.zeros(len(times), dtype=bool),
        )  # fmt: skip
        t0 = time.perf_counter()
        sink(chunk)
        sink_s += time.perf_counter() - t0
        if progress is not None:
            progress(c * CHUNK + len(times))
    wall = time.perf_counter() - started - sink_s
    n = workload.requests
    return Counters(
        0.0, sim.stampede, n, n, 0, wall, duplicates, max_inflight,
        predictor.stats.model_calls,
    )  # fmt: skip


def _no_sleep(seconds: float) -> None:
    """The model delay is simulated: counted in the latency, never slept."""


def _previous_end(keys: np.ndarray, ends: np.ndarray, last_end: np.ndarray) -> np.ndarray:
    """Per request, when the previous computation of its key ends (updates ``last_end``)."""
    order = np.argsort(keys, kind="stable")
    k_sorted, e_sorted = keys[order], ends[order]
    prev_sorted = np.empty(len(keys))
    prev_sorted[1:] = e_sorted[:-1]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = k_sorted[1:] != k_sorted[:-1]
    prev_sorted[starts] = last_end[k_sorted[starts]]
    last = np.r_[starts[1:], True]  # the last request of each key in this chunk
    last_end[k_sorted[last]] = e_sorted[last]
    prev = np.empty(len(keys))
    prev[order] = prev_sorted
    return prev


def _queued(
    times: np.ndarray,
    keys: np.ndarray,
    ms: np.ndarray,
    delay: float,
    workers: list[float],
    running: list[float],
    last_end: np.ndarray,
) -> tuple[np.ndarray, int, int]:
    """Latencies behind ``len(workers)`` simulated model workers; duplicates; most in flight."""
    latency = np.empty(len(times))
    duplicates = most = 0
    for i, (t, k, m) in enumerate(zip(times.tolist(), keys.tolist(), ms.tolist(), strict=True)):
        begin = max(t, heapq.heappop(workers))
        end = begin + delay
        heapq.heappush(workers, end + m / 1000.0)
        while running and running[0] <= t:
            heapq.heappop(running)
        heapq.heappush(running, end)
        most = max(most, len(running))
        if last_end[k] > t:
            duplicates += 1
        last_end[k] = max(last_end[k], end)
        latency[i] = (end - t) * 1000.0 + m
    return latency, duplicates, most


#: How the no-cache row was obtained (params.json ``baseline.method``).
METHOD = (
    "each distinct (key, market minute) computed once through the real predictor; every "
    "request of that key and minute is served that prediction, with latency = simulated model "
    "delay + that computation's measured inference (model_runs: computations made)"
)
