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
  Across processes the store's
  lease lock does the same; its holder renews the short lease while it computes
  (:mod:`predcache.leases`), so a crashed holder blocks its key only a few seconds.
- **Coalesced recomputations** (:mod:`predcache.flights`): concurrent ``refresh`` requests
  for one key share one computation that started after they arrived, and during a backend
  outage requests for one key share the computation in flight.
- **Clock skew**: an entry stamped more than ``max_clock_skew_s`` ahead of this clock was
  written by a host whose clock runs ahead; it is a miss (replaced), never fresh for as long
  as the skew, and a warning says so once per writer and episode.
- **Degradation**: a backend failure never fails a request; it is computed and served as
  ``bypass`` with ``detail="backend-unavailable"``.

The hit path imports nothing heavy and does one store read.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from predcache.clock import Clock, SystemClock
from predcache.config import DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_TTL_S
from predcache.entry import Entry
from predcache.errors import ComputeError, PredcacheError, StoreError
from predcache.flights import Flights
from predcache.keys import lock_key, prediction_key
from predcache.leases import DEFAULT_LEASE_S, LeaseKeeper, skew_warning, wait_for_holder
from predcache.registry import ModelSource
from predcache.served import BYPASS, COLLAPSED, HIT, MISS, STALE, Outcome, PredictorStats, Served
from predcache.stampede import COALESCE, NONE, STALE_WHILE_REVALIDATE, Strategy
from predcache.store.base import Store
from predcache.store.breaker import warn

__all__ = ["BYPASS", "COLLAPSED", "HIT", "MISS", "STALE", "Predictor", "PredictorStats", "Served"]

#: the ``detail`` of a stale answer served by stale-while-revalidate
SWR_DETAIL = "stale-while-revalidate"

#: who wrote an entry (this host): named in the clock-skew warning
WRITER = os.uname().nodename or "unknown"
#: how much longer than the TTL a backend keeps an entry before garbage-collecting it
DEFAULT_RETAIN_MARGIN_S = 60.0
#: how long a cross-process single-flight lock is held without renewal (a crashed holder's
#: lease ends this long after its last renewal; a live holder renews while it computes)
DEFAULT_LOCK_LEASE_S = DEFAULT_LEASE_S


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
        max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S,
        notify: Callable[[str], None] = warn,
        stampede: Strategy = COALESCE,
        stale_grace_s: float = 0.0,
        max_wait_s: float | None = None,
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
        self.lock_lease_s = lock_lease_s
        #: the longest a request waits for another process's computation of its key (a holder
        #: that renews its lease but never finishes) before it computes the key itself
        self.max_wait_s = max(30.0, 2 * model_delay_s + 5.0) if max_wait_s is None else max_wait_s
        self.max_clock_skew_s = max_clock_skew_s
        self._notify = notify
        #: writers whose entries were found ahead of this clock, warned about once per episode
        self._skewed_writers: set[str] = set()
        self._leases = LeaseKeeper(store, lock_lease_s) if store is not None else None
        self._flights: Flights[Entry] = Flights()
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
        arrived: int | None = None,
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
            arrived=self.ticket() if arrived is None else arrived,
        )

    def ticket(self) -> int:
        """An arrival ticket for ``arrived``, taken when a request arrives (before it queues
        for a thread): a ``refresh`` is served by a computation that started after it."""
        return self._flights.ticket()

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
            key,
            compute,
            started,
            max_age_s=max_age_s,
            refresh=refresh,
            use_cache=use_cache,
            arrived=self.ticket(),
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
        arrived: int,
    ) -> Served:
        if not use_cache or self.ttl_s <= 0 or self.store is None:
            uncached = compute()
            self.stats.bypasses += 1
            return Served(uncached, BYPASS, 0.0, _ms_since(started), key)
        limit = self.freshness_limit(max_age_s)
        try:
            if refresh or limit <= 0:
                entry, shared = self._flights.run(key, arrived, lambda: self._refill(key, compute))
                if shared:
                    return self._collapsed(entry, key, started)
            else:
                served = self._read_usable(key, limit, started)
                if served is not None:
                    return served
                if self.stampede == NONE:  # the seed's cache: every miss calls the model
                    return self._missed(self._store(key, compute()), key, started)
                with self._locks.get(key):
                    # Another thread may have filled the key while this one waited for the
                    # lock: it waited for that computation, so it is collapsed, not a hit.
                    served = self._read_usable(key, limit, started, waited=True)
                    if served is not None:
                        return served
                    filled = self._fill(key, compute, limit, False, started)
                    if isinstance(filled, Served):
                        return filled
                    entry = filled
        except StoreError as exc:
            return self._bypass_outage(exc, key, compute, arrived, started)
        return self._missed(entry, key, started)

    def _missed(self, entry: Entry, key: str, started: float) -> Served:
        self.stats.misses += 1
        age = max(0.0, self.clock.now() - float(entry["created_at"]))
        return Served(entry, MISS, age, _ms_since(started), key, stored=True)

    def _fill(
        self, key: str, compute: Callable[[], Entry], limit: float, refresh: bool, started: float
    ) -> Entry | Served:
        """Compute and store ``key`` under the store's lease lock (renewed while computing).

        When another process holds the lock, a plain miss waits for its entry (and takes the
        lock over if the holder dies); a refresh computes anyway (it must not serve an entry
        that started before it arrived).
        """
        assert self.store is not None and self._leases is not None
        token: str | None = None
        if self.cross_process_lock:
            token = self.store.acquire_lock(lock_key(key), self.lock_lease_s)
            if token is None and not refresh:
                waited = self._wait_for_fill(key, limit, started)
                if isinstance(waited, Served):
                    return waited
                token = waited
        if token is None:
            return self._store(key, compute())
        try:
            with self._leases.holding(lock_key(key), token):
                entry = compute()
            return self._store(key, entry)
        finally:
            self.store.release_lock(lock_key(key), token)

    def _refill(self, key: str, compute: Callable[[], Entry]) -> Entry:
        """A recomputation for ``refresh`` (never served from the store or another process)."""
        filled = self._fill(key, compute, 0.0, True, time.perf_counter())
        assert not isinstance(filled, Served)
        return filled

    def _store(self, key: str, entry: Entry) -> Entry:
        assert self.store is not None
        try:
            self.store.set(key, entry, self.retain_s)
        except StoreError as exc:
            raise _Unstored(entry) from exc
        return entry

    def _collapsed(self, entry: Entry, key: str, started: float) -> Served:
        """A request served by another request's computation (``refresh`` coalesced)."""
        self.stats.collapsed += 1
        age = max(0.0, self.clock.now() - float(entry["created_at"]))
        return Served(entry, COLLAPSED, age, _ms_since(started), key)

    def _bypass_outage(
        self,
        exc: StoreError,
        key: str,
        compute: Callable[[], Entry],
        arrived: int,
        started: float,
    ) -> Served:
        """The backend failed: answer without it, sharing the computation in flight for the key
        (during an outage every request would otherwise call the model)."""
        self.stats.backend_errors += 1
        self.stats.bypasses += 1
        if isinstance(exc, _Unstored):
            entry = exc.entry
        else:
            entry, _ = self._flights.run("bypass:" + key, arrived, compute, any_running=True)
        return Served(entry, BYPASS, 0.0, _ms_since(started), key, detail="backend-unavailable")

    def get_fresh(
        self, pair: str, horizon_s: int, *, max_age_s: float | None = None
    ) -> Served | None:
        """The hit path alone: a fresh entry served (and counted), or ``None``, never a compute.

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
                if current is not None and seen_created_at < float(current["created_at"]) <= (
                    self.clock.now() + self.max_clock_skew_s
                ):
                    return False
                if token is None:
                    entry = compute()
                else:
                    assert self._leases is not None
                    with self._leases.holding(lock_key(key), token):
                        entry = compute()
                self.store.set(key, entry, self.retain_s)
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

    def usable(self, entry: Entry | None, limit: float) -> Outcome | None:
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
        if entry is None:
            return None
        ahead = float(entry["created_at"]) - self.clock.now()
        if ahead > self.max_clock_skew_s:
            self._skewed(entry, ahead)
            return None
        if self._skewed_writers:
            self._skewed_writers.discard(entry.get("writer", "unknown"))  # its episode is over
        outcome = self.usable(entry, limit)
        if outcome is None or (waited and outcome == STALE):
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

    def _skewed(self, entry: Entry, ahead_s: float) -> None:
        """An entry from the future: a miss, warned about once per writer and episode."""
        writer = entry.get("writer", "unknown")
        if writer not in self._skewed_writers:
            self._skewed_writers.add(writer)
            self._notify(skew_warning(writer, ahead_s, self.max_clock_skew_s))

    def _wait_for_fill(self, key: str, limit: float, started: float) -> Served | str | None:
        """Wait for another process's entry, or take its lock over (:func:`wait_for_holder`)."""
        assert self.store is not None
        waited = wait_for_holder(
            self.store,
            lock_key(key),
            lambda: self._read_usable(key, limit, started, waited=True),
            lease_s=self.lock_lease_s,
            max_wait_s=self.max_wait_s,
        )
        if isinstance(waited, Served):
            waited.detail = "coalesced"  # waited for another process's computation
        return waited

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
            "writer": WRITER,
            "compute_ms": 0.0,
        }


class _Unstored(StoreError):
    """The store failed after the model answered: the computed entry is still served."""

    def __init__(self, entry: Entry) -> None:
        super().__init__("the computed entry could not be stored")
        self.entry = entry


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
