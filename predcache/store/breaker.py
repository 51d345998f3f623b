"""A circuit breaker around a networked store, so a dead backend costs nothing per request.

Without it, every request during a Redis outage would first wait out the connect or read
timeout and only then be computed without the cache. With it:

- **closed** (normal): calls go through. A :class:`BackendUnavailableError` opens the circuit
  and logs one warning: the start of an outage.
- **open**: calls fail at once with :class:`BackendUnavailableError` (no network), so the
  predictor answers them as ``bypass`` at model speed. After ``retry_after_s`` the next call
  is let through as a probe (**half-open**; other calls keep failing fast meanwhile).
- the probe succeeds: closed again, caching resumes without a restart, and one line says the
  outage is over. It fails: open for another ``retry_after_s``, no new warning.

Only reachability opens the circuit. Other store errors (a full or read-only Redis) are
answered at once by the backend, so they pass through and are handled per request. Policy
(TTL, freshness, single-flight, bypass accounting) stays in :mod:`predcache.predictor`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from predcache.entry import Entry
from predcache.errors import BackendUnavailableError
from predcache.store.base import ProxyStore, Store, StoreStats

log = logging.getLogger("predcache")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
T = TypeVar("T")


def warn(message: str) -> None:
    """Log on the ``predcache`` logger; with no logging configured (the CLI), one stderr line."""
    if log.hasHandlers():
        log.warning(message)
    else:
        print(f"predcache: {message}", file=sys.stderr, flush=True)


def _ignore(state: str) -> None:
    """The default :attr:`CircuitBreakerStore.on_state`: nobody records transitions."""


class CircuitBreakerStore(ProxyStore):
    """Wraps ``inner``; same interface, same name, fails fast while the backend is down.

    ``clear`` and ``close`` pass straight through (inherited): admin commands (``predcache
    cache clear``) report a failure to their user themselves, neither warning nor moving the
    breaker."""

    def __init__(
        self,
        inner: Store,
        *,
        retry_after_s: float = 1.0,
        shown: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        notify: Callable[[str], None] = warn,
    ) -> None:
        super().__init__(inner)
        self.retry_after_s = retry_after_s
        self.shown = shown or inner.name
        self._monotonic = monotonic
        self._notify = notify
        self._guard = threading.Lock()
        self.state = CLOSED
        self._open_until = 0.0
        self._outage_started = 0.0
        #: outages seen (closed -> open transitions) and calls refused without trying
        self.outages = 0
        self.short_circuited = 0
        #: called with the new state after each transition (``serve --workers N`` records it
        #: where a scrape on any worker can read it); never on the common path
        self.on_state: Callable[[str], None] = _ignore

    def _call(self, call: Callable[[], T]) -> T:
        probe = False
        with self._guard:
            if self.state != CLOSED:
                now = self._monotonic()
                if self.state == HALF_OPEN or now < self._open_until:
                    self.short_circuited += 1
                    wait = max(0.0, self._open_until - now)
                    raise BackendUnavailableError(
                        f"{self.shown} is unavailable (circuit open; next try in {wait:.1f}s)"
                    )
                self.state, probe = HALF_OPEN, True  # this call is the probe
        if probe:
            self.on_state(HALF_OPEN)
        try:
            result = call()
        except BackendUnavailableError as exc:
            self._failed(exc)
            raise
        except BaseException:
            self._reached()  # the backend answered (with an error): it is reachable
            raise
        self._reached()
        return result

    def _failed(self, exc: BackendUnavailableError) -> None:
        with self._guard:
            first = self.state == CLOSED
            now = self._monotonic()
            self.state = OPEN
            self._open_until = now + self.retry_after_s
            if first:
                self.outages += 1
                self._outage_started = now
        self.on_state(OPEN)
        if first:
            self._notify(
                f"{exc}; answering without the cache until it is back "
                f"(retrying every {self.retry_after_s:g}s)"
            )

    def _reached(self) -> None:
        if self.state == CLOSED:  # the common path: no lock, no work
            return
        with self._guard:
            was_down = self.state != CLOSED
            self.state = CLOSED
            down_for = self._monotonic() - self._outage_started
        if was_down:
            self.on_state(CLOSED)
            self._notify(f"cache backend {self.shown} is back after {down_for:.1f}s; caching again")

    def get(self, key: str) -> Entry | None:
        return self._call(lambda: self.inner.get(key))

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        self._call(lambda: self.inner.set(key, entry, retain_s))

    def delete(self, key: str) -> bool:
        return self._call(lambda: self.inner.delete(key))

    def entry_keys(self) -> list[str]:
        return self._call(self.inner.entry_keys)

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        return self._call(lambda: self.inner.acquire_lock(name, lease_s))

    def release_lock(self, name: str, token: str) -> None:
        self._call(lambda: self.inner.release_lock(name, token))

    def renew_lock(self, name: str, token: str, lease_s: float) -> bool:
        return self._call(lambda: self.inner.renew_lock(name, token, lease_s))

    def stats(self) -> StoreStats:
        st = self.inner.stats()
        extra = {
            **(st.extra or {}),
            "breaker": self.state,
            "outages": self.outages,
            "short_circuited": self.short_circuited,
        }
        return st._replace(extra=extra)
