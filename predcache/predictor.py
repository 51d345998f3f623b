"""The cache-aside predictor: the one place where TTL, freshness, stampede policy and stats live.

Policy sits here, above every backend (storage is :mod:`predcache.store`):

- **Freshness** (product brief): an entry is fresh while ``now - created_at < limit`` where
  ``limit`` is the TTL, tightened by a request's ``max_age``; a hit does not extend it. ``ttl 0``
  means no caching at all (every request is a ``bypass``).
- **Clock**: ``now`` comes from an injectable clock, so tests tick a fake clock and the bench
  runs on simulated time.
- **Stampede strategy** (:mod:`predcache.stampede`): with ``coalesce`` (the default,
  single-flight) concurrent misses on one key make one model call, in this process and across
  processes (:mod:`predcache.fill`); the others wait and are counted ``collapsed``. ``none``
  lets every miss call the model (the seed's cache). ``stale-while-revalidate`` serves an entry
  that expired less than ``stale_grace_s`` ago as ``stale`` (the caller starts one background
  refresh, :meth:`Predictor.refresh_if_idle`).
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

import time
from collections.abc import Callable

from predcache.clock import Clock, SystemClock
from predcache.compute import call_model, prediction_entry
from predcache.config import DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_TTL_S
from predcache.entry import Entry
from predcache.errors import StoreError
from predcache.fill import DEFAULT_LOCK_LEASE_S, Filler, Unstored
from predcache.flights import Flights
from predcache.keys import prediction_key
from predcache.leases import skew_warning
from predcache.registry import ModelSource
from predcache.served import BYPASS, COLLAPSED, HIT, MISS, STALE, Outcome, PredictorStats, Served
from predcache.stampede import COALESCE, NONE, STALE_WHILE_REVALIDATE, Strategy
from predcache.store.base import Store
from predcache.store.breaker import warn

__all__ = ["BYPASS", "COLLAPSED", "HIT", "MISS", "STALE", "Predictor", "PredictorStats", "Served"]

#: the ``detail`` of a stale answer served by stale-while-revalidate
SWR_DETAIL = "stale-while-revalidate"

#: how much longer than the TTL a backend keeps an entry before garbage-collecting it
DEFAULT_RETAIN_MARGIN_S = 60.0


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
        #: the single-flight machinery a miss goes through (per-key locks, the lease lock)
        self.filler = Filler(
            store,
            retain_s=self.retain_s,
            lock_lease_s=lock_lease_s,
            max_wait_s=max(30.0, 2 * model_delay_s + 5.0) if max_wait_s is None else max_wait_s,
            cross_process_lock=cross_process_lock,
        )
        self.max_clock_skew_s = max_clock_skew_s
        self._notify = notify
        #: writers whose entries were found ahead of this clock, warned about once per episode
        self._skewed_writers: set[str] = set()
        self._flights: Flights[Entry] = Flights()
        self.stats = PredictorStats()

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
        waited: bool = False,
    ) -> Served:
        """Serve ``pair`` at ``horizon_s``: from the store when fresh, else from the model.

        ``waited``: the caller already looked for a usable entry, found none, and then waited
        while other requests for the key were being served (the server's per-key gate); an
        entry found now was written by a computation it waited for, so it is ``collapsed``
        (issue #10), not a hit.
        """
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
            waited=waited,
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
        waited: bool = False,
    ) -> Served:
        if not use_cache or self.ttl_s <= 0 or self.store is None:
            uncached = compute()
            self.stats.bypasses += 1
            return Served(uncached, BYPASS, 0.0, _ms_since(started), key)
        limit = self.freshness_limit(max_age_s)
        try:
            if refresh or limit <= 0:
                entry, shared = self._flights.run(
                    key, arrived, lambda: self.filler.refill(key, compute)
                )
                if shared:
                    return self._collapsed(entry, key, started)
            else:
                # under ``none`` (the seed's cache) every miss calls the model, and a request
                # that ``waited`` has missed already
                served = (
                    None
                    if waited and self.stampede == NONE
                    else self._read_usable(key, limit, started, waited=waited)
                )
                if served is not None:
                    return served
                if self.stampede == NONE:
                    return self._missed(self.filler.put(key, compute()), key, started)
                # A request that finds the key filled after waiting for another's computation
                # is collapsed, not a hit (``waited``).
                filled = self.filler.once(
                    key, compute, lambda: self._read_usable(key, limit, started, waited=True)
                )
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
        if isinstance(exc, Unstored):
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

        def superseded(current: Entry | None) -> bool:
            """Someone stored a newer entry than the caller saw (not one from the future)."""
            return current is not None and seen_created_at < float(current["created_at"]) <= (
                self.clock.now() + self.max_clock_skew_s
            )

        return self.filler.refresh_if_idle(key, compute, superseded)

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

    def call(self, make: Callable[[float], Entry], what: str) -> Entry:
        """One model call, counted (:func:`predcache.compute.call_model`): ``make(created_at)``
        builds the entry; a model failure becomes one :class:`ComputeError` naming ``what``."""
        return call_model(
            make,
            what,
            clock=self.clock,
            stats=self.stats,
            delay_s=self.model_delay_s,
            sleep=self._sleep,
        )

    def _compute(self, pair: str, horizon_s: int) -> Entry:
        """Call the model and stamp the entry with its creation time."""
        return self.call(lambda at: prediction_entry(self.models, pair, horizon_s, at), pair)


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
