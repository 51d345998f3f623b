"""The simulated-clock engine: replay a workload through the real predictor and store.

For each request, in arrival order, the engine sets a :class:`ManualClock` to the arrival time
and calls :meth:`Predictor.get_or_compute` on a real store backend, so freshness, keys, JSON
entries, locks and writes are exactly what ``predcache predict`` and ``serve`` do. What is real
and what is simulated:

- **measured** (``time.perf_counter``): the store reads (``lookup_ms``, through
  :class:`TimedStore`), the model inference on a miss (the entry's ``compute_ms``) and the whole
  predictor call (lookup, lock, model, write), which is the request's latency;
- **simulated**: the clock (a run of hours of traffic takes seconds) and the model delay, the
  seed's stand-in for a slow model, which is added to a miss's latency and never slept.

Entries are stamped with the clock at the miss, and requests are served one after another, so a
request that arrives during another's simulated model delay is not held back by it (a real
server would coalesce it onto that computation); this is what the TTL model assumes too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predcache.bench.workload import Workload
from predcache.clock import ManualClock
from predcache.entry import Entry
from predcache.predictor import HIT, Predictor
from predcache.registry import ModelRegistry
from predcache.store import Store, open_store
from predcache.store.base import ProxyStore

#: How many requests between two progress callbacks (a power of two minus one, for a cheap mask).
PROGRESS_MASK = 1023


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
    """Per-request records of one configuration, plus the predictor's counters.

    ``latency_ms`` is the measured predictor call plus, when the model ran, the simulated delay.
    """

    ttl_s: float
    hit: np.ndarray  # bool
    age_s: np.ndarray
    lookup_ms: np.ndarray
    model_ms: np.ndarray
    latency_ms: np.ndarray
    served_price: np.ndarray
    served_as_of: np.ndarray  # the served entry's market time (epoch s): how stale its data was
    model_calls: int
    backend_errors: int
    wall_s: float

    @property
    def requests(self) -> int:
        return len(self.hit)


def _no_sleep(seconds: float) -> None:
    """The model delay is simulated: recorded as latency, never slept."""


def replay(
    workload: Workload,
    registry: ModelRegistry,
    *,
    ttl_s: float,
    model_delay_s: float,
    backend: str,
    cache_dir: str | Path | None,
    namespace: str,
    size_limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """Run ``workload`` once through a real predictor at ``ttl_s`` on a fresh namespace of
    ``backend`` (emptied afterwards). ``ttl_s == 0`` is the no-cache baseline: every request is
    computed and no store is opened."""
    n = workload.requests
    clock = ManualClock(float(workload.times[0]) if n else 0.0)
    timed = None
    if ttl_s > 0:
        timed = TimedStore(
            open_store(backend, cache_dir=cache_dir, namespace=namespace, size_limit=size_limit)
        )
    # One process replays the requests one by one: no other process can compete for a key, so
    # the store's cross-process lease lock would only add two writes per miss.
    predictor = Predictor(
        timed,
        registry,
        clock=clock,
        ttl_s=ttl_s,
        model_delay_s=model_delay_s,
        sleep=_no_sleep,
        cross_process_lock=False,
    )
    times = workload.times.tolist()
    key_of = [workload.keys[k] for k in workload.key_index.tolist()]
    hit = [False] * n
    age = [0.0] * n
    lookup = [0.0] * n
    model_ms = [0.0] * n
    latency = [0.0] * n
    price = [0.0] * n
    as_of = [0.0] * n
    delay_ms = model_delay_s * 1000.0
    get, set_now = predictor.get_or_compute, clock.set
    started = time.perf_counter()
    try:
        for i in range(n):
            set_now(times[i])
            pair, horizon = key_of[i]
            if timed is not None:
                timed.lookup_s = 0.0
            served = get(pair, horizon)
            entry = served.entry
            price[i] = entry["predicted_price"]
            as_of[i] = entry["as_of"]
            age[i] = served.age_s
            if served.cache == HIT:
                hit[i] = True
                latency[i] = served.latency_ms
            else:
                model_ms[i] = entry["compute_ms"]
                latency[i] = served.latency_ms + delay_ms
            if timed is not None:
                lookup[i] = timed.lookup_s * 1000.0
            if progress is not None and not i & PROGRESS_MASK:
                progress(i)
        wall = time.perf_counter() - started
    finally:
        if timed is not None:
            timed.clear()
            timed.close()
    if progress is not None:
        progress(n)
    return Replay(
        ttl_s=ttl_s,
        hit=np.array(hit, dtype=bool),
        age_s=np.array(age),
        lookup_ms=np.array(lookup),
        model_ms=np.array(model_ms),
        latency_ms=np.array(latency),
        served_price=np.array(price),
        served_as_of=np.array(as_of),
        model_calls=predictor.stats.model_calls,
        backend_errors=predictor.stats.backend_errors,
        wall_s=wall,
    )
