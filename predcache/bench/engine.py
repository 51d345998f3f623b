"""The simulated-clock engine: a discrete-event replay through the real predictor and store.

Events are the workload's arrivals (in order) and the ends of model computations (a heap).
Before an arrival at ``t`` every computation that ended by ``t`` writes its entry to the real
store; then the arrival reads the real store through the predictor and is handled by the
stampede strategy (:mod:`predcache.stampede`):

- a fresh entry is a ``hit``; under ``refresh-ahead`` it may start one background computation
  (XFetch's die, seeded);
- an entry within stale-while-revalidate's grace is served at once as ``stale`` and starts one
  background computation unless one is running;
- with a computation for its key in flight, ``coalesce`` (and the strategies built on it) makes
  the request wait for it (``collapsed``; its latency is the time remaining); ``none`` makes it
  a ``miss`` that computes too;
- otherwise it is a ``miss``: a computation starts at ``t`` (or when one of
  ``model_concurrency`` model workers frees up: the wait is latency) and ends the simulated
  model delay later; its entry is stamped with its start (``created_at``) and written to the
  store when it ends. Its measured inference is added to the latency (and age) of the request
  that ran it and of every request that waited for it, but does not move events on the
  simulated timeline: a run's outcomes follow from the seed alone, not from the machine's speed
  or load, so sweeps split across processes (``--jobs``) count exactly the same. (Two
  exceptions: a ``--model-concurrency`` worker stays busy for the measured inference too, and
  refresh-ahead's die weighs the measured recompute time, as XFetch does.)

Requests are replayed a chunk at a time (:data:`predcache.bench.workload.CHUNK`); each chunk's
records go to a ``sink`` once every computation its misses started has been written (their
latency includes the store write), so nothing per request outlives its chunk unless the sink
keeps it (:func:`replay` does, for small runs and tests; the bench streams).

Simulated model failures (``--model-fail-rate``): a die seeded by the workload's seed fails
that fraction of computations. A failed one lasts its time, counts as a model call and writes
nothing; its request is served the stored entry if it expired less than ``stale_if_error_s``
before the failure (``stale``, counted in ``stale_if_error``), else it ``failed``. A request
that waited for a failing computation then computes itself from the failure on (in ``serve``
the next waiter takes the key's lock and calls the model again).

What is real and what is simulated:

- **measured** (``time.perf_counter``): the store reads (``lookup_ms``, through
  :class:`TimedStore`), the model inference (the entry's ``compute_ms``) and the store write;
- **simulated**: the clock (hours of traffic replay in seconds), the model delay (never slept)
  and every wait that follows from them (collapsed requests, the model queue).
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Required, TypedDict, Unpack

from predcache.bench.records import (
    COLLAPSED_CODE,
    HIT_CODE,
    MISS_CODE,
    OUTCOMES,
    STALE_CODE,
    Buffer,
    Chunk,
    Counters,
    Replay,
)
from predcache.bench.timedstore import TimedStore
from predcache.bench.workload import CHUNK, Workload
from predcache.clock import ManualClock
from predcache.entry import Entry
from predcache.errors import StoreError
from predcache.predictor import HIT, STALE, Predictor
from predcache.registry import ModelSource
from predcache.stampede import (
    COALESCE,
    NONE,
    REFRESH_AHEAD,
    STALE_WHILE_REVALIDATE,
    Strategy,
    xfetch_due,
)
from predcache.store import open_store

__all__ = ["OUTCOMES", "Replay", "Simulation", "TimedStore", "replay", "replay_stream"]

#: How many requests between two progress callbacks (a power of two minus one, for a cheap mask).
PROGRESS_MASK = 1023
Sink = Callable[[Chunk], None]


@dataclass(frozen=True)
class Simulation:
    """How one configuration serves: TTL, simulated model, stampede strategy."""

    ttl_s: float
    model_delay_s: float
    stampede: Strategy = COALESCE
    stale_grace_s: float = 0.0
    #: at most this many computations run at once, the rest queue (None: unlimited)
    model_concurrency: int | None = None
    #: XFetch's beta for refresh-ahead (as ``serve --refresh-ahead``)
    refresh_beta: float = 1.0
    #: seeds refresh-ahead's die and the failure die, so a run repeats exactly
    seed: int = 0
    #: simulated: this fraction of model calls fail (0 to 1)
    model_fail_rate: float = 0.0
    #: serve the expired entry when a computation fails within this long past expiry (0: off)
    stale_if_error_s: float = 0.0


def _no_sleep(seconds: float) -> None:
    """The model delay is simulated: recorded as latency, never slept."""


class ReplaySettings(TypedDict, total=False):
    """:func:`replay_stream`'s keyword arguments, so :func:`replay` forwards them unrepeated
    (mypy checks each against ``replay_stream``'s signature)."""

    ttl_s: Required[float]
    model_delay_s: Required[float]
    backend: Required[str]
    cache_dir: Required[str | Path | None]
    namespace: Required[str]
    size_limit: int | None
    progress: Callable[[int], None] | None
    stampede: Strategy
    stale_grace_s: float
    model_concurrency: int | None
    model_fail_rate: float
    stale_if_error_s: float


def replay(workload: Workload, registry: ModelSource, **settings: Unpack[ReplaySettings]) -> Replay:
    """Run ``workload`` once and keep every request's record (small runs and tests; the bench
    streams with :func:`replay_stream`). ``ttl_s == 0`` is the no-cache baseline
    (:mod:`predcache.bench.baseline`)."""
    chunks: list[Chunk] = []
    counters = replay_stream(workload, registry, chunks.append, **settings)
    return Replay.of(chunks, counters)


def replay_stream(
    workload: Workload,
    registry: ModelSource,
    sink: Sink,
    *,
    ttl_s: float,
    model_delay_s: float,
    backend: str,
    cache_dir: str | Path | None,
    namespace: str,
    size_limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    stampede: Strategy = COALESCE,
    stale_grace_s: float = 0.0,
    model_concurrency: int | None = None,
    model_fail_rate: float = 0.0,
    stale_if_error_s: float = 0.0,
) -> Counters:
    """Replay ``workload`` through a real predictor on a fresh namespace of ``backend``
    (emptied afterwards), handing each chunk of records to ``sink`` in order."""
    sim = Simulation(
        ttl_s, model_delay_s, stampede, stale_grace_s, model_concurrency,
        seed=workload.seed or 0, model_fail_rate=model_fail_rate,
        stale_if_error_s=stale_if_error_s,
    )  # fmt: skip
    if ttl_s <= 0:
        from predcache.bench.baseline import no_cache

        return no_cache(workload, registry, sink, sim, progress)
    timed = TimedStore(
        open_store(backend, cache_dir=cache_dir, namespace=namespace, size_limit=size_limit)
    )
    try:
        return _Run(workload, registry, sim, timed, sink).run(progress)
    finally:
        timed.clear()
        timed.close()


class _Run:
    """The event loop of one replay and its state (per key: computations in flight, the end
    and entry of the latest one)."""

    def __init__(
        self,
        workload: Workload,
        registry: ModelSource,
        sim: Simulation,
        timed: TimedStore,
        sink: Sink,
    ) -> None:
        self.w = workload
        self.sim = sim
        self.timed = timed
        self.sink = sink
        self.sink_s = 0.0
        self.clock = ManualClock(workload.first_s)
        # One process replays the requests: no other process can compete for a key, so the
        # store's cross-process lease lock would only add two writes per miss.
        self.predictor = Predictor(
            timed, registry, clock=self.clock, ttl_s=sim.ttl_s, model_delay_s=sim.model_delay_s,
            sleep=_no_sleep, cross_process_lock=False, stampede=sim.stampede,
            stale_grace_s=sim.stale_grace_s,
        )  # fmt: skip
        nkeys = len(workload.keys)
        self.names = [self.predictor.key_for(p, h) for p, h in workload.keys]
        self.inflight = [0] * nkeys
        self.flight_end = [0.0] * nkeys
        self.flight_entry: list[Entry | None] = [None] * nkeys
        #: whether the latest computation of each key fails (simulated)
        self.flight_failed = [False] * nkeys
        #: measured inference (ms) of the failed computations the latest one follows
        self.flight_chain = [0.0] * nkeys
        #: its own seed stream: the failure draws leave refresh-ahead's die as it was
        self.fail_die = random.Random(f"{sim.seed}:model-fail")
        #: (end, sequence, key, entry or None when it failed, request that waits or -1)
        self.pending: list[tuple[float, int, int, Entry | None, int]] = []
        self.seq = 0
        self.total_inflight = 0
        self.max_inflight = 0
        self.duplicates = 0
        self.backend_errors = 0
        n_workers = sim.model_concurrency
        start = self.clock.now()
        self.workers: list[float] | None = None if n_workers is None else [start] * n_workers
        self.buffers: dict[int, Buffer] = {}
        self.done: list[int] = []  # replayed chunks not yet handed to the sink, in order
        self.die = random.Random(sim.seed)  # refresh-ahead's die, seeded: a run repeats

    def start(
        self, k: int, t: float, origin: int, after: float | None = None, chain: float = 0.0
    ) -> tuple[Entry, float, bool]:
        """Start a computation of key ``k`` requested at ``t`` (not before ``after``, when it
        follows a failed one); (its entry, its end, whether it succeeds)."""
        begin = t if after is None else max(t, after)
        if self.workers is not None:
            begin = max(begin, heapq.heappop(self.workers))
        self.clock.set(begin)
        pair, horizon = self.w.keys[k]
        entry = self.predictor.compute(pair, horizon)
        end = begin + self.sim.model_delay_s
        if self.workers is not None:  # the worker is busy for the measured inference too
            heapq.heappush(self.workers, end + float(entry["compute_ms"]) / 1000.0)
        rate = self.sim.model_fail_rate
        ok = not (rate > 0 and self.fail_die.random() < rate)
        if self.inflight[k] and after is None:  # a retry after a failure duplicates nothing
            self.duplicates += 1
        self.inflight[k] += 1
        self.total_inflight += 1
        self.max_inflight = max(self.max_inflight, self.total_inflight)
        self.flight_end[k], self.flight_entry[k], self.flight_failed[k] = end, entry, not ok
        self.flight_chain[k] = chain
        heapq.heappush(self.pending, (end, self.seq, k, entry if ok else None, origin))
        if origin >= 0:
            self.buffers[origin // CHUNK].open_writes += 1
        self.seq += 1
        self.clock.set(t)
        return entry, end, ok

    def own(
        self, buf: Buffer, i: int, t: float, stored: Entry | None, lk: float, after: float | None
    ) -> tuple[int, Entry | None, float]:
        """Request ``i`` of ``buf`` computes its key itself (from ``after``: the failure it
        waited for); (outcome, what it is served or None when it failed, the served age)."""
        k = int(buf.key_index[i])
        chain = 0.0  # it waited for the failed computations before it: their inference too
        if after is not None:
            failed = self.flight_entry[k]
            assert failed is not None
            chain = self.flight_chain[k] + float(failed["compute_ms"])
        entry, end, ok = self.start(k, t, buf.start + i, after, chain)
        ms = float(entry["compute_ms"]) + chain
        buf.latency[i] = lk + (end - t) * 1000.0 + ms
        buf.model_ms[i] = float(entry["compute_ms"])
        if ok:
            return MISS_CODE, entry, 0.0
        if stored is not None:
            age = end - float(stored["created_at"])  # on the simulated clock: deterministic
            if self.sim.ttl_s <= age < self.sim.ttl_s + self.sim.stale_if_error_s:
                buf.stale_if_error[i] = True
                return STALE_CODE, stored, age + ms / 1000.0
        buf.failed[i] = True
        return MISS_CODE, None, 0.0

    def finish_until(self, t: float) -> None:
        """Every computation that ended by ``t`` writes its entry (real store write)."""
        pending = self.pending
        while pending and pending[0][0] <= t:
            end, _, k, entry, origin = heapq.heappop(pending)
            self.inflight[k] -= 1
            self.total_inflight -= 1
            t0 = time.perf_counter()
            if entry is not None:  # a failed computation writes nothing
                self.clock.set(end)
                try:
                    self.predictor.put(self.names[k], entry)
                except StoreError:
                    self.backend_errors += 1
            if origin >= 0:
                buf = self.buffers[origin // CHUNK]
                if entry is not None:
                    buf.latency[origin % CHUNK] += (time.perf_counter() - t0) * 1000.0
                buf.open_writes -= 1

    def flush(self) -> None:
        """Hand every replayed chunk whose writes are all done to the sink, in order."""
        while self.done and self.buffers[self.done[0]].open_writes == 0:
            t0 = time.perf_counter()
            self.sink(self.buffers.pop(self.done.pop(0)).chunk())
            self.sink_s += time.perf_counter() - t0

    def run(self, progress: Callable[[int], None] | None) -> Counters:
        started = time.perf_counter()
        for c, (times_c, keys_c) in enumerate(self.w.chunks(CHUNK)):
            buf = self.buffers[c] = Buffer(c * CHUNK, times_c, keys_c)
            self.replay_chunk(buf, progress)
            self.done.append(c)
            self.flush()
        self.finish_until(float("inf"))  # write the last entries: their requests' latency too
        self.flush()
        wall = time.perf_counter() - started - self.sink_s
        if progress is not None:
            progress(self.w.requests)
        return Counters(
            self.sim.ttl_s, self.sim.stampede, self.w.requests,
            self.predictor.stats.model_calls, self.backend_errors, wall, self.duplicates,
            self.max_inflight, self.predictor.stats.model_calls,
        )  # fmt: skip

    def replay_chunk(self, buf: Buffer, progress: Callable[[int], None] | None) -> None:
        sim, timed, predictor = self.sim, self.timed, self.predictor
        times, key_ids = buf.times.tolist(), buf.key_index.tolist()
        outcome, age, lookup = buf.outcome, buf.age, buf.lookup
        latency, price, as_of = buf.latency, buf.price, buf.as_of
        ttl, delay, base = sim.ttl_s, sim.model_delay_s, buf.start
        single_flight = sim.stampede != NONE
        swr, ahead = sim.stampede == STALE_WHILE_REVALIDATE, sim.stampede == REFRESH_AHEAD
        die = self.die
        set_now, usable, read, inflight = (
            self.clock.set,
            predictor.usable,
            predictor.read,
            self.inflight,
        )
        for i in range(len(times)):
            t, k = times[i], key_ids[i]
            served: Entry | None
            if self.pending and self.pending[0][0] <= t:
                self.finish_until(t)
            set_now(t)
            timed.lookup_s = 0.0
            try:
                stored = read(self.names[k])
            except StoreError:
                stored = None
                self.backend_errors += 1
            lk = timed.lookup_s * 1000.0
            lookup[i] = lk
            state = usable(stored, ttl)
            if stored is not None and state == HIT:
                outcome[i], served, latency[i] = HIT_CODE, stored, lk
                age[i] = t - float(stored["created_at"])
                if ahead and not inflight[k]:
                    delta = delay + float(stored["compute_ms"]) / 1000.0
                    created = float(stored["created_at"])
                    if xfetch_due(created, delta, t, ttl, sim.refresh_beta, 1.0 - die.random()):
                        self.start(k, t, -1)
            elif stored is not None and state == STALE and swr:
                outcome[i], served, latency[i] = STALE_CODE, stored, lk
                age[i] = t - float(stored["created_at"])
                if not inflight[k]:
                    self.start(k, t, -1)
            elif single_flight and inflight[k] and not self.flight_failed[k]:
                flight = self.flight_entry[k]
                assert flight is not None
                served = flight
                inference = float(flight["compute_ms"]) + self.flight_chain[k]
                waited = self.flight_end[k] - t + inference / 1000.0
                outcome[i], latency[i] = COLLAPSED_CODE, lk + waited * 1000.0
                age[i] = t + waited - float(flight["created_at"])
            else:  # a miss; or it waited for a computation that fails, then computes
                after = self.flight_end[k] if single_flight and inflight[k] else None
                outcome[i], served, age[i] = self.own(buf, i, t, stored, lk, after)
            if served is None:
                price[i] = as_of[i] = age[i] = math.nan
            else:
                price[i] = served["predicted_price"]
                as_of[i] = served["as_of"]
            if progress is not None and not (base + i) & PROGRESS_MASK:
                progress(base + i)
