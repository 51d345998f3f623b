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
  ``model_concurrency`` model workers frees up: the wait is latency) and lasts the simulated
  model delay plus the measured inference; its entry is stamped with its start (``created_at``)
  and written to the store when it ends.

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

import numpy as np

from predcache.bench.workload import Workload
from predcache.clock import ManualClock
from predcache.entry import Entry
from predcache.errors import StoreError
from predcache.predictor import COLLAPSED, HIT, MISS, STALE, Predictor
from predcache.registry import ModelSource
from predcache.stampede import (
    COALESCE,
    NONE,
    REFRESH_AHEAD,
    STALE_WHILE_REVALIDATE,
    Strategy,
    xfetch_due,
)
from predcache.store import Store, open_store
from predcache.store.base import ProxyStore

#: How many requests between two progress callbacks (a power of two minus one, for a cheap mask).
PROGRESS_MASK = 1023
#: Outcome codes in :attr:`Replay.outcome` (index into this tuple).
OUTCOMES: tuple[str, ...] = (HIT, COLLAPSED, STALE, MISS)
_HIT, _COLLAPSED, _STALE, _MISS = range(4)


class TimedStore(ProxyStore):
    """Adds up the time spent in ``get``: the measured lookup time. Everything else passes
    straight through, so the predictor sees the real backend."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        #: seconds spent in ``get`` since the engine last reset it
        self.lookup_s = 0.0

    def get(self, key: str) -> Entry | None:
        t0 = time.perf_counter()
        try:
            return self.inner.get(key)
        finally:
            self.lookup_s += time.perf_counter() - t0


@dataclass(frozen=True)
class Replay:
    """Per-request records of one configuration, plus the engine's counters.

    ``outcome`` holds codes into :data:`OUTCOMES`. ``latency_ms`` is the measured store and
    model work plus every simulated wait (model delay, waiting for an in-flight computation,
    the model queue). ``age_s`` is the served entry's age when the answer goes out.
    """

    ttl_s: float
    outcome: np.ndarray  # int8 codes into OUTCOMES
    age_s: np.ndarray
    lookup_ms: np.ndarray
    model_ms: np.ndarray
    latency_ms: np.ndarray
    served_price: np.ndarray
    served_as_of: np.ndarray  # the served entry's market time (epoch s): how stale its data was
    model_calls: int
    backend_errors: int
    wall_s: float
    #: per request: answered with an error (a simulated model failure, no stale entry to serve)
    failed: np.ndarray
    #: per request: its model call failed and the expired entry was served (stale-if-error)
    stale_if_error: np.ndarray
    stampede: Strategy = COALESCE
    #: model calls that started while another computation of the same key was in flight
    duplicate_calls: int = 0
    #: most model computations in flight (running or queued) at one moment
    max_inflight: int = 0

    @property
    def requests(self) -> int:
        return len(self.outcome)

    @property
    def hit(self) -> np.ndarray:
        """True where the request was a plain hit (fresh entry, no waiting)."""
        out: np.ndarray = self.outcome == _HIT
        return out

    @property
    def answered(self) -> np.ndarray:
        """True where the request was answered with a prediction (not ``failed``)."""
        out: np.ndarray = ~self.failed
        return out

    def count(self, outcome: str) -> int:
        """How many requests had ``outcome`` (one of :data:`OUTCOMES`)."""
        return int(np.count_nonzero(self.outcome == OUTCOMES.index(outcome)))


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


def replay(
    workload: Workload,
    registry: ModelSource,
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
) -> Replay:
    """Run ``workload`` once through a real predictor on a fresh namespace of ``backend``
    (emptied afterwards). ``ttl_s == 0`` is the no-cache baseline: every request is computed
    and no store is opened."""
    sim = Simulation(
        ttl_s, model_delay_s, stampede, stale_grace_s, model_concurrency,
        seed=workload.seed or 0, model_fail_rate=model_fail_rate,
        stale_if_error_s=stale_if_error_s,
    )  # fmt: skip
    timed = None
    if ttl_s > 0:
        timed = TimedStore(
            open_store(backend, cache_dir=cache_dir, namespace=namespace, size_limit=size_limit)
        )
    try:
        return _Run(workload, registry, sim, timed).run(progress)
    finally:
        if timed is not None:
            timed.clear()
            timed.close()


class _Run:
    """The event loop of one replay and its state (per key: computations in flight, the end
    and entry of the latest one)."""

    def __init__(
        self, workload: Workload, registry: ModelSource, sim: Simulation, timed: TimedStore | None
    ) -> None:
        self.w = workload
        self.sim = sim
        self.timed = timed
        self.clock = ManualClock(float(workload.times[0]) if workload.requests else 0.0)
        # One process replays the requests: no other process can compete for a key, so the
        # store's cross-process lease lock would only add two writes per miss.
        self.predictor = Predictor(
            timed, registry, clock=self.clock, ttl_s=sim.ttl_s, model_delay_s=sim.model_delay_s,
            sleep=_no_sleep, cross_process_lock=False, stampede=sim.stampede,
            stale_grace_s=sim.stale_grace_s,
        )  # fmt: skip
        nkeys = len(workload.keys)
        self.names = [self.predictor.key_for(p, h) for p, h in workload.keys] if timed else []
        self.inflight = [0] * nkeys
        self.flight_end = [0.0] * nkeys
        self.flight_entry: list[Entry | None] = [None] * nkeys
        #: whether the latest computation of each key fails (simulated)
        self.flight_failed = [False] * nkeys
        #: its own seed stream: the failure draws leave refresh-ahead's die as it was
        self.fail_die = random.Random(f"{sim.seed}:model-fail")
        #: (end, sequence, key, entry or None when it failed, request that waits or -1)
        self.pending: list[tuple[float, int, int, Entry | None, int]] = []
        self.seq = 0
        self.total_inflight = 0
        self.max_inflight = 0
        self.duplicates = 0
        self.backend_errors = 0
        start = self.clock.now()
        n_workers = sim.model_concurrency
        self.workers: list[float] | None = None if n_workers is None else [start] * n_workers
        self.latency = [0.0] * workload.requests
        self.model_ms = [0.0] * workload.requests
        self.failed = [False] * workload.requests
        self.stale_if_error = [False] * workload.requests

    def start(
        self, k: int, t: float, origin: int, after: float | None = None
    ) -> tuple[Entry, float, bool]:
        """Start a computation of key ``k`` requested at ``t`` (not before ``after``, when it
        follows a failed one); (its entry, its end, whether it succeeds)."""
        begin = t if after is None else max(t, after)
        if self.workers is not None:
            begin = max(begin, heapq.heappop(self.workers))
        self.clock.set(begin)
        pair, horizon = self.w.keys[k]
        entry = self.predictor.compute(pair, horizon)
        end = begin + self.sim.model_delay_s + float(entry["compute_ms"]) / 1000.0
        if self.workers is not None:
            heapq.heappush(self.workers, end)
        ok = not (
            self.sim.model_fail_rate > 0 and self.fail_die.random() < self.sim.model_fail_rate
        )
        if self.inflight[k] and after is None:  # a retry after a failure duplicates nothing
            self.duplicates += 1
        self.inflight[k] += 1
        self.total_inflight += 1
        self.max_inflight = max(self.max_inflight, self.total_inflight)
        self.flight_end[k], self.flight_entry[k], self.flight_failed[k] = end, entry, not ok
        heapq.heappush(self.pending, (end, self.seq, k, entry if ok else None, origin))
        self.seq += 1
        self.clock.set(t)
        return entry, end, ok

    def own(
        self, i: int, k: int, t: float, stored: Entry | None, lookup_ms: float, after: float | None
    ) -> tuple[int, Entry | None, float]:
        """Request ``i`` computes key ``k`` itself (from ``after``: the failure it waited
        for); (outcome, what it is served or None when it failed, the served entry's age)."""
        entry, end, ok = self.start(k, t, i, after)
        self.latency[i] = lookup_ms + (end - t) * 1000.0
        self.model_ms[i] = entry["compute_ms"]
        if ok:
            return _MISS, entry, 0.0
        if stored is not None and self.timed is not None:
            age = end - float(stored["created_at"])
            if self.sim.ttl_s <= age < self.sim.ttl_s + self.sim.stale_if_error_s:
                self.stale_if_error[i] = True
                return _STALE, stored, age
        self.failed[i] = True
        return _MISS, None, 0.0

    def finish_until(self, t: float) -> None:
        """Every computation that ended by ``t`` writes its entry (real store write)."""
        pending = self.pending
        while pending and pending[0][0] <= t:
            end, _, k, entry, origin = heapq.heappop(pending)
            self.inflight[k] -= 1
            self.total_inflight -= 1
            if self.timed is None or entry is None:
                continue
            self.clock.set(end)
            t0 = time.perf_counter()
            try:
                self.predictor.put(self.names[k], entry)
            except StoreError:
                self.backend_errors += 1
            if origin >= 0:
                self.latency[origin] += (time.perf_counter() - t0) * 1000.0

    def run(self, progress: Callable[[int], None] | None) -> Replay:
        w, sim, timed, predictor = self.w, self.sim, self.timed, self.predictor
        n = w.requests
        times = w.times.tolist()
        key_ids = w.key_index.tolist()
        outcome = [_MISS] * n
        age = [0.0] * n
        lookup = [0.0] * n
        model_ms = self.model_ms
        latency = self.latency
        price = [0.0] * n
        as_of = [0.0] * n
        ttl, delay = sim.ttl_s, sim.model_delay_s
        single_flight = sim.stampede != NONE
        swr, ahead = sim.stampede == STALE_WHILE_REVALIDATE, sim.stampede == REFRESH_AHEAD
        die = random.Random(sim.seed)
        set_now, usable, read, inflight = (
            self.clock.set,
            predictor.usable,
            predictor.read,
            self.inflight,
        )
        started = time.perf_counter()
        for i in range(n):
            t, k = times[i], key_ids[i]
            if self.pending and self.pending[0][0] <= t:
                self.finish_until(t)
            set_now(t)
            served: Entry | None = None
            stored: Entry | None = None
            if timed is None:  # ttl 0: no cache, every request computes
                outcome[i], served, _ = self.own(i, k, t, None, 0.0, None)
            else:
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
                    outcome[i], served, latency[i] = _HIT, stored, lk
                    age[i] = t - float(stored["created_at"])
                    if ahead and not inflight[k]:
                        delta = delay + float(stored["compute_ms"]) / 1000.0
                        created = float(stored["created_at"])
                        if xfetch_due(created, delta, t, ttl, sim.refresh_beta, 1.0 - die.random()):
                            self.start(k, t, -1)
                elif stored is not None and state == STALE and swr:
                    outcome[i], served, latency[i] = _STALE, stored, lk
                    age[i] = t - float(stored["created_at"])
                    if not inflight[k]:
                        self.start(k, t, -1)
                elif single_flight and inflight[k] and not self.flight_failed[k]:
                    served = self.flight_entry[k]
                    assert served is not None
                    end = self.flight_end[k]
                    outcome[i], latency[i] = _COLLAPSED, lk + (end - t) * 1000.0
                    age[i] = end - float(served["created_at"])
                else:  # a miss; or it waited for a computation that fails, then computes
                    after = self.flight_end[k] if single_flight and inflight[k] else None
                    outcome[i], served, age[i] = self.own(i, k, t, stored, lk, after)
            if served is None:
                price[i] = as_of[i] = age[i] = math.nan
            else:
                price[i] = served["predicted_price"]
                as_of[i] = served["as_of"]
            if progress is not None and not i & PROGRESS_MASK:
                progress(i)
        self.finish_until(float("inf"))  # write the last entries: their requests' latency too
        wall = time.perf_counter() - started
        if progress is not None:
            progress(n)
        return Replay(
            ttl_s=ttl,
            outcome=np.array(outcome, dtype=np.int8),
            age_s=np.array(age),
            lookup_ms=np.array(lookup),
            model_ms=np.array(model_ms),
            latency_ms=np.array(latency),
            served_price=np.array(price),
            served_as_of=np.array(as_of),
            model_calls=predictor.stats.model_calls,
            backend_errors=self.backend_errors,
            wall_s=wall,
            stampede=sim.stampede,
            duplicate_calls=self.duplicates,
            max_inflight=self.max_inflight,
            failed=np.array(self.failed, dtype=bool),
            stale_if_error=np.array(self.stale_if_error, dtype=bool),
        )
