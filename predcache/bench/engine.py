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

What is real and what is simulated:

- **measured** (``time.perf_counter``): the store reads (``lookup_ms``, through
  :class:`TimedStore`), the model inference (the entry's ``compute_ms``) and the store write;
- **simulated**: the clock (hours of traffic replay in seconds), the model delay (never slept)
  and every wait that follows from them (collapsed requests, the model queue).
"""

from __future__ import annotations

import heapq
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
    #: seeds refresh-ahead's die, so a run repeats exactly
    seed: int = 0


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
) -> Replay:
    """Run ``workload`` once through a real predictor on a fresh namespace of ``backend``
    (emptied afterwards). ``ttl_s == 0`` is the no-cache baseline: every request is computed
    and no store is opened."""
    sim = Simulation(
        ttl_s, model_delay_s, stampede, stale_grace_s, model_concurrency,
        seed=workload.seed or 0,
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
        #: (end, sequence, key, entry, request that waits for the write or -1)
        self.pending: list[tuple[float, int, int, Entry, int]] = []
        self.seq = 0
        self.total_inflight = 0
        self.max_inflight = 0
        self.duplicates = 0
        self.backend_errors = 0
        start = self.clock.now()
        n_workers = sim.model_concurrency
        self.workers: list[float] | None = None if n_workers is None else [start] * n_workers
        self.latency = [0.0] * workload.requests

    def start(self, k: int, t: float, origin: int) -> tuple[Entry, float]:
        """Start a computation of key ``k`` requested at ``t``; (its entry, its end)."""
        begin = t
        if self.workers is not None:
            begin = max(t, heapq.heappop(self.workers))
        self.clock.set(begin)
        pair, horizon = self.w.keys[k]
        entry = self.predictor.compute(pair, horizon)
        end = begin + self.sim.model_delay_s + float(entry["compute_ms"]) / 1000.0
        if self.workers is not None:
            heapq.heappush(self.workers, end)
        if self.inflight[k]:
            self.duplicates += 1
        self.inflight[k] += 1
        self.total_inflight += 1
        self.max_inflight = max(self.max_inflight, self.total_inflight)
        self.flight_end[k], self.flight_entry[k] = end, entry
        heapq.heappush(self.pending, (end, self.seq, k, entry, origin))
        self.seq += 1
        self.clock.set(t)
        return entry, end

    def finish_until(self, t: float) -> None:
        """Every computation that ended by ``t`` writes its entry (real store write)."""
        pending = self.pending
        while pending and pending[0][0] <= t:
            end, _, k, entry, origin = heapq.heappop(pending)
            self.inflight[k] -= 1
            self.total_inflight -= 1
            if self.timed is None:
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
        model_ms = [0.0] * n
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
            if timed is None:  # ttl 0: no cache, every request computes
                served, end = self.start(k, t, -1)
                latency[i] = (end - t) * 1000.0
                model_ms[i] = served["compute_ms"]
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
                elif single_flight and inflight[k]:
                    served = self.flight_entry[k]
                    assert served is not None
                    end = self.flight_end[k]
                    outcome[i], latency[i] = _COLLAPSED, lk + (end - t) * 1000.0
                    age[i] = end - float(served["created_at"])
                else:
                    served, end = self.start(k, t, i)
                    latency[i] = lk + (end - t) * 1000.0
                    model_ms[i] = served["compute_ms"]
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
        )
