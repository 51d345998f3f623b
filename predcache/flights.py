"""In-process coalescing of recomputations that must start after their requests arrived.

Two cases need more than the predictor's per-key lock:

- ``Cache-Control: no-cache`` (``refresh=True``) asks for a value computed *after* the request
  arrived. Under a lock, 300 such requests for one key make 300 model calls in series. Here
  they share flights: a request joins the computation in flight if it started after the
  request arrived, else the next one, which starts as soon as the current one ends. However
  many arrive, a key sees at most two computations at a time (one running, one queued).
- During a backend outage nothing can be stored, so there is no entry to wait for; requests
  for one key still share the computation in flight instead of each calling the model.

"Arrived" and "started" are tickets from one counter (no clock): a flight serves a request
when its ticket is larger than the request's.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
#: keep the last finished flight of at most this many keys (results a late joiner may take)
MAX_FINISHED = 4096


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "result", "ticket")

    def __init__(self, ticket: int) -> None:
        self.ticket = ticket
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class Flights(Generic[T]):
    """Per key: the flight running, the one queued behind it, the last one that finished."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._counter = itertools.count(1)
        self._running: dict[str, _Flight[T]] = {}
        self._queued: dict[str, _Flight[T]] = {}
        self._finished: dict[str, _Flight[T]] = {}

    def ticket(self) -> int:
        """A request's arrival ticket (take it as early as possible, e.g. on the event loop)."""
        return next(self._counter)

    def run(
        self, key: str, arrived: int, compute: Callable[[], T], *, any_running: bool = False
    ) -> tuple[T, bool]:
        """``compute()``'s result from a flight that started after ``arrived``; True if shared.

        With ``any_running`` a flight already running is good enough too (a plain miss during
        an outage wants a fresh value, not one started after it arrived).
        """
        wait_for: _Flight[T] | None = None
        join: _Flight[T] | None = None
        with self._guard:
            last = self._finished.get(key)
            running = self._running.get(key)
            if last is not None and last.ticket > arrived and last.error is None:
                join = last
            elif running is None:
                flight: _Flight[T] = _Flight(next(self._counter))
                self._running[key] = flight
            elif any_running or running.ticket > arrived:
                join = running
            elif key in self._queued:
                join = self._queued[key]
            else:  # lead the queued flight once the running one ends
                flight = self._queued[key] = _Flight(0)
                wait_for = running
        if join is not None:
            return _result(join), True
        if wait_for is not None:
            wait_for.done.wait()
            with self._guard:
                del self._queued[key]
                flight.ticket = next(self._counter)
                self._running[key] = flight
        return self._lead(key, flight, compute), False

    def _lead(self, key: str, flight: _Flight[T], compute: Callable[[], T]) -> T:
        try:
            flight.result = compute()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._guard:
                if self._running.get(key) is flight:
                    del self._running[key]
                if flight.error is None:
                    if len(self._finished) >= MAX_FINISHED:
                        self._finished.clear()
                    self._finished[key] = flight
            flight.done.set()
        return flight.result


def _result(flight: _Flight[T]) -> T:
    """Wait for another request's flight; its result, or its error raised here too."""
    flight.done.wait()
    if flight.error is not None:
        raise flight.error
    return flight.result  # type: ignore[return-value]
