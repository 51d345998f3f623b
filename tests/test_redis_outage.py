"""Redis going away and coming back, with a real redis-server killed, paused and restarted.

The breaker runs on a fake monotonic clock (its retry-after is ticked, not slept out); what is
real is the server, its sockets and its death.
"""

from __future__ import annotations

import logging

import pytest

from predcache.clock import ManualClock
from predcache.predictor import Predictor
from predcache.store.breaker import OPEN, CircuitBreakerStore
from predcache.store.redis import RedisStore, open_redis_store, parse_redis_url
from tests.conftest import FakeModels
from tests.fixtures.redis import RedisServer
from tests.test_breaker import Mono

pytestmark = pytest.mark.redis


def breaker_over_redis(url: str, notes: list[str]) -> tuple[CircuitBreakerStore, Mono]:
    mono = Mono()
    settings = parse_redis_url(url)
    store = CircuitBreakerStore(
        RedisStore(settings),
        retry_after_s=1.0,
        shown=settings.shown,
        monotonic=mono,
        notify=notes.append,
    )
    return store, mono


def test_redis_killed_mid_run_keeps_answering_then_recovers(
    redis_server: RedisServer, redis_url: str
) -> None:
    notes: list[str] = []
    store, mono = breaker_over_redis(redis_url, notes)
    models = FakeModels()
    p = Predictor(store, models, clock=ManualClock())
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"

    redis_server.kill()
    during = [p.get_or_compute("ETH/EUR", 300) for _ in range(20)]
    assert {(s.cache, s.detail) for s in during} == {("bypass", "backend-unavailable")}
    assert all(s.entry["predicted_price"] > 0 for s in during)
    assert len(notes) == 1 and "unavailable" in notes[0]
    assert store.state == OPEN and store.short_circuited == 19

    redis_server.start()  # same port, empty (persistence is off)
    assert p.get_or_compute("ETH/EUR", 300).cache == "bypass"  # breaker still open
    mono.t += 1.0
    # the pool's connections died with the old server; the probe must not trip over them
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"
    assert len(notes) == 2 and "back" in notes[1]
    store.close()


def test_hung_redis_costs_one_timeout_then_fails_fast(
    redis_server: RedisServer, redis_url: str
) -> None:
    notes: list[str] = []
    store, mono = breaker_over_redis(redis_url + "?socket_timeout=100ms", notes)
    inner = store.inner
    assert isinstance(inner, RedisStore) and inner.settings.socket_timeout_s == 0.1
    p = Predictor(store, FakeModels(), clock=ManualClock())
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"
    redis_server.pause()
    try:
        first = p.get_or_compute("ETH/EUR", 300)  # waits out one read timeout
        rest = [p.get_or_compute("ETH/EUR", 300) for _ in range(10)]
    finally:
        redis_server.resume()
    assert first.detail == "backend-unavailable"
    assert "Timeout" in notes[0] or "timed out" in notes[0].lower()
    assert {s.detail for s in rest} == {"backend-unavailable"}
    assert store.short_circuited == 10  # none of them waited for the hung server
    mono.t += 1.0
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"  # the entry survived the pause
    store.close()


def test_hung_redis_with_default_settings_costs_about_one_default_timeout(
    redis_server: RedisServer, redis_url: str
) -> None:
    """No options in the URL: the defaults bound a hung server (accepts, never answers). The
    call runs in a thread so that a missing timeout fails this test instead of hanging it."""
    import threading
    import time

    store = open_redis_store(redis_url)
    inner = store.inner  # type: ignore[attr-defined]
    assert (inner.settings.socket_timeout_s, inner.settings.connect_timeout_s) == (0.25, 0.25)
    p = Predictor(store, FakeModels(), clock=ManualClock())
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"  # connected
    took: list[float] = []
    served: list[object] = []

    def request() -> None:
        t0 = time.perf_counter()
        served.append(p.get_or_compute("ETH/EUR", 300))
        took.append(time.perf_counter() - t0)

    redis_server.pause()
    try:
        worker = threading.Thread(target=request, daemon=True)
        worker.start()
        worker.join(20)
        hung = worker.is_alive()
    finally:
        redis_server.resume()
    assert not hung, "a hung Redis blocked a request for 20 s: no socket timeout by default"
    assert [(s.cache, s.detail) for s in served] == [("bypass", "backend-unavailable")]  # type: ignore[attr-defined]
    # one 250 ms read timeout (no retries), plus the model call; generous for a loaded machine
    assert 0.25 <= took[0] < 5.0
    store.close()


def test_the_outage_warning_never_shows_the_password(
    redis_server: RedisServer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_url.replace("redis://", "redis://:s3cret@")
    store = open_redis_store(url)
    redis_server.kill()
    p = Predictor(store, FakeModels(), clock=ManualClock())
    with caplog.at_level(logging.WARNING, logger="predcache"):
        for _ in range(5):
            assert p.get_or_compute("ETH/EUR", 300).cache == "bypass"
    warnings = [r for r in caplog.records if r.name == "predcache"]
    assert len(warnings) == 1
    assert ":***@127.0.0.1" in warnings[0].getMessage()
    assert "s3cret" not in caplog.text
    store.close()
