"""The circuit breaker on a fake monotonic clock: fail fast while down, one warning per outage.

The inner store is a real MemoryStore that can be switched "down" (it then raises what the
Redis store raises when the server is unreachable); the real-Redis outages are in
``test_redis_outage.py``.
"""

from __future__ import annotations

import pytest

from predcache.clock import ManualClock
from predcache.entry import Entry
from predcache.errors import BackendUnavailableError, StoreError
from predcache.predictor import Predictor
from predcache.store.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreakerStore
from predcache.store.memory import MemoryStore
from tests.conftest import FakeModels


class FlakyStore(MemoryStore):
    """A memory store whose backend can 'go away'; counts the calls that reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.full = False
        self.calls = 0

    def _reach(self) -> None:
        self.calls += 1
        if self.down:
            raise BackendUnavailableError("flaky at 127.0.0.1:1 is unavailable")

    def get(self, key: str) -> Entry | None:
        self._reach()
        return super().get(key)

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        self._reach()
        if self.full:
            raise StoreError("OOM command not allowed")
        super().set(key, entry, retain_s)

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        self._reach()
        return super().acquire_lock(name, lease_s)


class Mono:
    """A fake ``time.monotonic`` for the breaker."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def parts() -> tuple[FlakyStore, CircuitBreakerStore, Mono, list[str]]:
    flaky, mono, notes = FlakyStore(), Mono(), []
    breaker = CircuitBreakerStore(flaky, retry_after_s=2.0, monotonic=mono, notify=notes.append)
    return flaky, breaker, mono, notes


def test_outage_opens_fails_fast_and_warns_once(
    parts: tuple[FlakyStore, CircuitBreakerStore, Mono, list[str]],
) -> None:
    flaky, breaker, mono, notes = parts
    flaky.down = True
    p = Predictor(breaker, FakeModels(), clock=ManualClock())
    served = [p.get_or_compute("ETH/EUR", 300) for _ in range(50)]
    assert {(s.cache, s.detail) for s in served} == {("bypass", "backend-unavailable")}
    assert flaky.calls == 1  # only the first request paid for reaching the dead backend
    assert breaker.state == OPEN and breaker.short_circuited == 49
    assert p.stats.backend_errors == 50 and p.stats.model_calls == 50
    assert len(notes) == 1 and "unavailable" in notes[0]
    mono.t += 1.9  # still within retry_after: still nothing reaches the backend
    p.get_or_compute("ETH/EUR", 300)
    assert flaky.calls == 1


def test_probe_after_retry_after_and_recovery(
    parts: tuple[FlakyStore, CircuitBreakerStore, Mono, list[str]],
) -> None:
    flaky, breaker, mono, notes = parts
    flaky.down = True
    p = Predictor(breaker, FakeModels(), clock=ManualClock())
    p.get_or_compute("ETH/EUR", 300)
    mono.t += 2.0
    p.get_or_compute("ETH/EUR", 300)  # the probe: still down, open again, no new warning
    assert flaky.calls == 2 and breaker.state == OPEN and len(notes) == 1
    flaky.down = False
    mono.t += 2.0
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"  # the probe finds it back
    assert breaker.state == CLOSED
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"
    assert len(notes) == 2 and "back" in notes[1]
    flaky.down = True  # a second outage is a second warning
    p.get_or_compute("BTC/USD", 300)
    assert len(notes) == 3 and breaker.outages == 2


def test_half_open_lets_one_probe_through(
    parts: tuple[FlakyStore, CircuitBreakerStore, Mono, list[str]],
) -> None:
    flaky, breaker, mono, _ = parts
    flaky.down = True
    with pytest.raises(BackendUnavailableError):
        breaker.get("k")
    mono.t += 2.0
    seen: list[str] = []

    def probe_while_another_call_arrives() -> Entry | None:
        seen.append(breaker.state)
        with pytest.raises(BackendUnavailableError, match="circuit open"):
            breaker.get("k")  # a concurrent call during the probe fails fast
        return None

    breaker._call(probe_while_another_call_arrives)
    assert seen == [HALF_OPEN] and breaker.state == CLOSED


def test_errors_from_a_reachable_backend_do_not_open(
    parts: tuple[FlakyStore, CircuitBreakerStore, Mono, list[str]],
) -> None:
    flaky, breaker, _, notes = parts
    flaky.full = True  # e.g. Redis out of memory: it answers, with an error, at once
    p = Predictor(breaker, FakeModels(), clock=ManualClock())
    assert p.get_or_compute("ETH/EUR", 300).cache == "bypass"
    assert p.get_or_compute("ETH/EUR", 300).cache == "bypass"
    assert breaker.state == CLOSED and notes == []
    assert flaky.calls > 2  # every request still tried the backend


def test_breaker_keeps_the_inner_name_and_counts(
    parts: tuple[FlakyStore, CircuitBreakerStore, Mono, list[str]],
) -> None:
    flaky, breaker, _, _ = parts
    flaky.set_raw("k", "not json")
    assert breaker.get("k") is None
    assert breaker.name == "memory" and breaker.corrupt_reads == 1
    assert breaker.stats().extra["breaker"] == CLOSED
