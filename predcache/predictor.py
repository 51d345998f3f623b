"""The cache-aside predictor: the one place where TTL, freshness, single-flight and stats live.

Policy sits here, above every backend (storage is :mod:`predcache.store`):

- **Freshness** (product brief): an entry is fresh while ``now - created_at < limit`` where
  ``limit`` is the TTL, tightened by a request's ``max_age``; a hit does not extend it. ``ttl 0``
  means no caching at all (every request is a ``bypass``).
- **Clock**: ``now`` comes from an injectable clock, so tests tick a fake clock and the bench
  runs on simulated time.
- **Stampede strategy** (:mod:`predcache.stampede`): with ``coalesce`` (the default,
  single-flight) concurrent misses on one key make one model call, in this process (per-key
  locks) and across processes (the store's lease lock); the others wait and are counted
  ``collapsed``. ``none`` lets every miss call the model (the seed's cache).
  ``stale-while-revalidate`` serves an entry that expired less than ``stale_grace_s`` ago as
  ``stale`` (the caller starts one background refresh, :meth:`Predictor.refresh_if_idle`).
- **Degradation**: a backend failure never fails a request; it is computed and served as
  ``bypass`` with ``detail="backend-unavailable"``.

The hit path imports nothing heavy and does one store read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from predcache.clock import Clock, SystemClock
from predcache.config import DEFAULT_TTL_S
from predcache.entry import Entry
from predcache.errors import ComputeError, PredcacheError, StoreError
from predcache.keys import lock_key, prediction_key
from predcache.registry import ModelSource
from predcache.stampede import COALESCE, NONE, STALE_WHILE_REVALIDATE, Strategy
from predcache.store.base import Store

#: the outcomes of a request (product brief, "Outcomes of a request")
HIT, COLLAPSED, STALE, MISS, BYPASS = "hit", "collapsed", "stale", "miss", "bypass"
#: the ``detail`` of a stale answer served by stale-while-revalidate
SWR_DETAIL = "stale-while-revalidate"
#: how much longer than the TTL a backend keeps an entry before garbage-collecting it
DEFAULT_RETAIN_MARGIN_S = 60.0
#: how long a cross-process single-flight lock is held at most (a crashed holder's lease ends)
DEFAULT_LOCK_LEASE_S = 30.0
#: how often a waiter re-reads the store while another process computes
LOCK_POLL_S = 0.01


class Served:
    """A prediction and how it was served.

    A plain slotted class, not a dataclass: this module is on the CLI's cache-hit path, where
    importing ``dataclasses`` and building one is a measurable part of the process (check c of
    ``benchmarks/perf.py``).
    """

    __slots__ = ("age_s", "cache", "detail", "entry", "key", "latency_ms", "stored")

    def __init__(
        self,
        entry: Entry,
        cache: str,
        age_s: float,
        latency_ms: float,
        key: str,
        stored: bool = False,
        detail: str | None = None,
    ) -> None:
        self.entry = entry
        self.cache = cache
        self.age_s = age_s
        self.latency_ms = latency_ms
        self.key = key
        self.stored = stored
        self.detail = detail

    def __repr__(self) -> str:
        return f"Served({self.cache}, age {self.age_s:.3f}s, {self.key})"


class PredictorStats:
    """Counters since the predictor was made."""

    __slots__ = (
        "backend_errors",
        "bypasses",
        "collapsed",
        "errors",
        "hits",
        "misses",
        "model_calls",
        "requests",
        "stale",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0
        self.collapsed = 0
        self.stale = 0
        self.misses = 0
        self.bypasses = 0
        self.model_calls = 0
        self.errors = 0
        self.backend_errors = 0


class _KeyLocks:
    """One lock per key, created on demand (in-process single-flight)."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        lock = self.locks.get(key)
        if lock is None:
            with self.guard:
                lock = self.locks.setdefault(key, threading.Lock())
        return lock


class Predictor:
    """Serve predictions from a store, computing and storing them on a miss."""

    def __init__(
        self,
        store: Store | None,
        models: ModelSource,
        *,
        clock: Clock | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        model_delay_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        retain_margin_s: float = DEFAULT_RETAIN_MARGIN_S,
        lock_lease_s: float = DEFAULT_LOCK_LEASE_S,
        cross_process_lock: bool = True,
        stampede: Strategy = COALESCE,
        stale_grace_s: float = 0.0,
    ) -> None:
        self.store = store
        self.models = models
        self.clock: Clock = clock or SystemClock()
        self.ttl_s = ttl_s
        self.model_delay_s = model_delay_s
        self._sleep = sleep
        self.stampede: Strategy = stampede
        #: how long after expiry stale-while-revalidate may still serve an entry (0: never)
        self.stale_grace_s = stale_grace_s if stampede == STALE_WHILE_REVALIDATE else 0.0
        self.retain_s = ttl_s + self.stale_grace_s + retain_margin_s
        self.lock_lease_s = max(lock_lease_s, 2 * model_delay_s + 5.0)
        #: take the store's lease lock on a miss (single-flight across processes). Only a caller
        #: that is the store's one user may turn it off: the simulated bench engine replays
        #: requests one at a time in one process, where the lock add/release are two extra
        #: store writes per miss that can never find a competitor.
        self.cross_process_lock = cross_process_lock
        self.stats = PredictorStats()
        self._locks = _KeyLocks()

    def key_for(self, pair: str, horizon_s: int) -> str:
        """The cache key (through the one key function)."""
        return prediction_key(self.models.version(pair), pair, horizon_s)

    def freshness_limit(self, max_age_s: float | None) -> float:
        """The tighter of the TTL and a request's max-age."""
        return self.ttl_s if max_age_s is None else min(self.ttl_s, max_age_s)

    def get_or_compute(
        self,
        pair: str,
        horizon_s: int,
        *,
        max_age_s: float | None = None,
        refresh: bool = False,
        use_cache: bool = True,
    ) -> Served:
        """Serve ``pair`` at ``horizon_s``: from the store when fresh, else from the model."""
        started = time.perf_counter()
        self.stats.requests += 1
        key = self.key_for(pair, horizon_s)
        self.models.check_horizon(pair, horizon_s)
        return self._serve(
            key,
            lambda: self._compute(pair, horizon_s),
            started,
            max_age_s=max_age_s,
            refresh=refresh,
            use_cache=use_cache,
        )

    def serve(
        self,
        key: str,
        compute: Callable[[], Entry],
        *,
        max_age_s: float | None = None,
        refresh: bool = False,
        use_cache: bool = True,
    ) -> Served:
        """The same policy for any key: ``compute()`` (made with :meth:`call`) runs on a miss.

        :meth:`get_or_compute` is this for a prediction; the Python API (:mod:`predcache.api`)
        is this for a function call, with a key from :func:`predcache.keys.call_key`.
        """
        started = time.perf_counter()
        self.stats.requests += 1
        return self._serve(
            key, compute, started, max_age_s=max_age_s, refresh=refresh, use_cache=use_cache
        )

    def _serve(
        self,
        key: str,
        compute: Callable[[], Entry],
        started: float,
        *,
        max_age_s: float | None,
        refresh: bool,
        use_cache: bool,
    ) -> Served:
        if not use_cache or self.ttl_s <= 0 or self.store is None:
            uncached = compute()
            self.stats.bypasses += 1
            return Served(uncached, BYPASS, 0.0, _ms_since(started), key)
        limit = self.freshness_limit(max_age_s)
        entry: Entry | None = None
        try:
            if not refresh and limit > 0:
                served = self._read_usable(key, limit, started)
                if served is not None:
                    return served
            if self.stampede == NONE:  # the seed's cache: every miss calls the model
                entry = compute()
                self.store.set(key, entry, self.retain_s)
                return self._missed(entry, key, started)
            with self._locks.get(key):
                # Another thread may have filled the key while this one waited for the lock:
                # it waited for that computation, so it is collapsed, not a hit.
                if not refresh and limit > 0:
                    served = self._read_usable(key, limit, started, waited=True)
                    if served is not None:
                        return served
                token = None
                try:
                    if self.cross_process_lock:
                        token = self.store.acquire_lock(lock_key(key), self.lock_lease_s)
                        if token is None and not refresh and limit > 0:
                            # Another process is computing this key: wait for its entry, bounded.
                            served, token = self._wait_for_fill(key, limit, started)
                            if served is not None:
                                return served
                    entry = compute()
                    self.store.set(key, entry, self.retain_s)
                finally:
                    if token is not None:
                        self.store.release_lock(lock_key(key), token)
        except StoreError:
            self.stats.backend_errors += 1
            self.stats.bypasses += 1
            if entry is None:
                entry = compute()
            return Served(entry, BYPASS, 0.0, _ms_since(started), key, detail="backend-unavailable")
        return self._missed(entry, key, started)

    def _missed(self, entry: Entry, key: str, started: float) -> Served:
        self.stats.misses += 1
        age = max(0.0, self.clock.now() - float(entry["created_at"]))
        return Served(entry, MISS, age, _ms_since(started), key, stored=True)

    def get_fresh(
        self, pair: str, horizon_s: int, *, max_age_s: float | None = None
    ) -> Served | None:
        """The hit path alone: a fresh entry served (and counted), or ``None``, never a compute.

        Under stale-while-revalidate an entry within its grace is served too, as ``stale``.

        For a caller that must not block on a miss, such as the server's event loop: it serves
        hits in place and hands everything else (miss, ttl 0, backend error) to
        :meth:`get_or_compute` in a worker thread, which then counts that request.
        """
        if self.store is None or self.freshness_limit(max_age_s) <= 0:
            return None
        key = self.key_for(pair, horizon_s)
        self.models.check_horizon(pair, horizon_s)
        return self.serve_fresh(key, max_age_s=max_age_s)

    def serve_fresh(self, key: str, *, max_age_s: float | None = None) -> Served | None:
        """:meth:`get_fresh` for any key: a fresh entry served and counted, else ``None``."""
        started = time.perf_counter()
        limit = self.freshness_limit(max_age_s)
        if self.store is None or limit <= 0:
            return None
        try:
            served = self._read_usable(key, limit, started)
        except StoreError:
            return None
        if served is not None:
            self.stats.requests += 1
        return served

    def refresh_if_idle(self, pair: str, horizon_s: int, seen_created_at: float) -> bool:
        """Recompute and store a key ahead of its expiry, unless that work is already done.

        For refresh-ahead (:mod:`predcache.server.refresh`): a background refresh must never
        queue behind, or repeat, a computation of the same key. It gives up when this process or
        another holds the key's lock, or when the stored entry is newer than the one the caller
        saw (someone refreshed it meanwhile). True when it computed and stored.
        """
        if self.store is None or self.ttl_s <= 0:
            return False
        key = self.key_for(pair, horizon_s)
        return self.refresh_key_if_idle(
            key, lambda: self._compute(pair, horizon_s), seen_created_at
        )

    def refresh_key_if_idle(
        self, key: str, compute: Callable[[], Entry], seen_created_at: float
    ) -> bool:
        """:meth:`refresh_if_idle` for any key (the Python API's stale-while-revalidate)."""
        if self.store is None or self.ttl_s <= 0:
            return False
        local = self._locks.get(key)
        if not local.acquire(blocking=False):
            return False
        try:
            token = None
            if self.cross_process_lock:
                token = self.store.acquire_lock(lock_key(key), self.lock_lease_s)
                if token is None:
                    return False
            try:
                current = self.store.get(key)
                if current is not None and float(current["created_at"]) > seen_created_at:
                    return False
                self.store.set(key, compute(), self.retain_s)
            finally:
                if token is not None:
                    self.store.release_lock(lock_key(key), token)
        finally:
            local.release()
        return True

    def read(self, key: str) -> Entry | None:
        """The stored entry for ``key``, fresh or not (one store read)."""
        assert self.store is not None
        return self.store.get(key)

    def usable(self, entry: Entry | None, limit: float) -> str | None:
        """What ``entry`` can be served as now: ``hit`` while fresh (``age < limit``),
        ``stale`` within stale-while-revalidate's grace after that, else ``None``."""
        if entry is None:
            return None
        age = self.clock.now() - float(entry["created_at"])
        if age < limit:
            return HIT
        if age < limit + self.stale_grace_s:
            return STALE
        return None

    def compute(self, pair: str, horizon_s: int) -> Entry:
        """One model call, stamped with the clock's now (counted in ``stats.model_calls``)."""
        return self._compute(pair, horizon_s)

    def put(self, key: str, entry: Entry) -> None:
        """Store ``entry`` under ``key`` for the predictor's retain time."""
        assert self.store is not None
        self.store.set(key, entry, self.retain_s)

    def _read_usable(
        self, key: str, limit: float, started: float, waited: bool = False
    ) -> Served | None:
        """A fresh entry: a hit, or ``collapsed`` when this request waited for another's
        computation; or, under stale-while-revalidate and without a wait, one within its grace
        as ``stale``."""
        entry = self.read(key)
        outcome = self.usable(entry, limit)
        if entry is None or outcome is None or (waited and outcome == STALE):
            return None
        if waited:
            outcome = COLLAPSED
            self.stats.collapsed += 1
        elif outcome == HIT:
            self.stats.hits += 1
        else:
            self.stats.stale += 1
        age = max(0.0, self.clock.now() - float(entry["created_at"]))
        detail = SWR_DETAIL if outcome == STALE else None
        return Served(entry, outcome, age, _ms_since(started), key, detail=detail)

    def _wait_for_fill(
        self, key: str, limit: float, started: float
    ) -> tuple[Served | None, str | None]:
        """Poll the store while another process holds the key's lock (real time: processes).

        Returns ``(served, None)`` when the holder's entry appears; ``(None, token)`` when this
        waiter obtained the lock itself and, re-reading the store under it, still found nothing
        fresh: the caller then computes *while holding* ``token``, so that the other waiters
        keep waiting for this one computation instead of each computing (after a crashed
        holder's lease ends, for one). ``(None, None)`` only when the wait runs out.

        The re-read matters: the holder may store its entry and release the lock between this
        waiter's last poll and its lock attempt; without it the waiter would compute again.
        """
        assert self.store is not None
        name = lock_key(key)
        deadline = time.monotonic() + self.lock_lease_s
        while time.monotonic() < deadline:
            time.sleep(LOCK_POLL_S)
            served = self._read_usable(key, limit, started, waited=True)
            if served is None:
                token = self.store.acquire_lock(name, self.lock_lease_s)
                if token is None:
                    continue
                try:
                    served = self._read_usable(key, limit, started, waited=True)
                except BaseException:
                    self.store.release_lock(name, token)
                    raise
                if served is None:
                    return None, token
                self.store.release_lock(name, token)
            served.detail = "coalesced"
            return served, None
        return None, None

    def call(self, make: Callable[[float], Entry], what: str) -> Entry:
        """One model call, counted: ``make(created_at)`` builds the entry (plus the simulated
        delay); ``compute_ms`` is stamped here. A failure other than a :class:`PredcacheError`
        becomes one :class:`ComputeError` naming ``what``, with the original as its cause."""
        created_at = self.clock.now()
        t0 = time.perf_counter()
        self.stats.model_calls += 1
        try:
            entry = make(created_at)
        except PredcacheError:
            self.stats.errors += 1
            raise
        except Exception as exc:  # a model bug must reach the caller as one clear error
            self.stats.errors += 1
            raise ComputeError(
                f"model call failed for {what}: {exc.__class__.__name__}: {exc}"
            ) from exc
        if self.model_delay_s > 0:
            self._sleep(self.model_delay_s)
        entry["compute_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
        return entry

    def _compute(self, pair: str, horizon_s: int) -> Entry:
        """Call the model and stamp the entry with its creation time."""
        return self.call(lambda at: self._prediction(pair, horizon_s, at), pair)

    def _prediction(self, pair: str, horizon_s: int, created_at: float) -> Entry:
        computed = self.models.compute(pair, horizon_s, created_at)
        return {
            "pair": pair,
            "horizon_s": horizon_s,
            "predicted_price": computed.predicted_price,
            "last_price": computed.last_price,
            "as_of": computed.as_of,
            "created_at": created_at,
            "model_version": self.models.version(pair),
            "compute_ms": 0.0,
        }


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
