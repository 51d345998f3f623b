"""Two real ``predcache serve --backend redis://...`` processes on one real redis-server.

The issue's "done when", over real sockets: a miss on one server is a hit on the other; a
cold-key stampede split over both makes one model call in total; Redis killed, every request
is still a 200 (computed, ``Cache-Status: ...; detail=backend-unavailable``), with one warning
per server; Redis back, shared hits again without a restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fixtures.redis import RedisServer
from tests.fixtures.server import RunningServer, ServerFactory

pytestmark = pytest.mark.redis

N_CONCURRENT = 24
MODEL_DELAY_S = 0.5  # simulated
TIMEOUTS = "socket_timeout=250ms&connect_timeout=250ms&retry_after=200ms"
BYPASS = "predcache; fwd=bypass; detail=backend-unavailable"
ETH = {"product_id": "ETH/EUR", "horizon": "5m"}


def two_servers(serve: ServerFactory, url: str) -> tuple[RunningServer, RunningServer]:
    args = ("--backend", f"{url}?{TIMEOUTS}", "--ttl", "90s", "--model-delay", "500ms")
    return serve(*args), serve(*args)


def post(server: RunningServer, body: dict[str, str]) -> httpx.Response:
    return httpx.post(server.predict_url, json=body, timeout=10)


def backend_errors(server: RunningServer) -> float:
    """``predcache_errors_total{kind="backend"}`` from the server's /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('predcache_errors_total{kind="backend"}'):
            return float(line.split()[-1])
    raise AssertionError('predcache_errors_total{kind="backend"} not in /metrics')


def until(check: Callable[[], httpx.Response | None], seconds: float = 10.0) -> httpx.Response:
    """Poll ``check`` (bounded) until it returns a response: for the breaker's real retry-after."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = check()
        if got is not None:
            return got
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {seconds}s")


def test_shared_hits_and_one_model_call_across_two_servers(
    serve: ServerFactory, redis_url: str
) -> None:
    a, b = two_servers(serve, redis_url)
    first, second = post(a, ETH), post(b, ETH)
    assert first.status_code == second.status_code == 200
    assert first.headers["cache-status"] == "predcache; fwd=miss; stored"
    assert second.headers["cache-status"].startswith("predcache; hit")
    assert first.json()["predicted_price"] == second.json()["predicted_price"]

    cold = {"product_id": "BTC/USD", "horizon": "5m"}
    before = a.metric("predcache_model_calls_total") + b.metric("predcache_model_calls_total")
    gate = threading.Barrier(N_CONCURRENT)
    limits = httpx.Limits(max_connections=N_CONCURRENT)
    with httpx.Client(timeout=30, limits=limits) as client:

        def one(i: int) -> httpx.Response:
            server = (a, b)[i % 2]  # split the stampede over both servers
            gate.wait()
            return client.post(server.predict_url, json=cold)

        with ThreadPoolExecutor(N_CONCURRENT) as pool:
            responses = list(pool.map(one, range(N_CONCURRENT)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    after = a.metric("predcache_model_calls_total") + b.metric("predcache_model_calls_total")
    assert after - before == 1
    assert len({r.json()["predicted_price"] for r in responses}) == 1
    statuses = [r.headers["cache-status"] for r in responses]
    assert statuses.count("predcache; fwd=miss; stored") == 1


def test_redis_killed_then_restarted_under_two_servers(
    serve: ServerFactory, redis_url: str, redis_server: RedisServer
) -> None:
    a, b = two_servers(serve, redis_url)
    assert post(a, ETH).headers["cache-status"] == "predcache; fwd=miss; stored"
    assert post(b, ETH).headers["cache-status"].startswith("predcache; hit")

    redis_server.kill()
    during: list[tuple[httpx.Response, float]] = []
    for server in (a, b, a, b, a, b):
        t0 = time.perf_counter()
        response = post(server, ETH)
        during.append((response, time.perf_counter() - t0))
    for response, _ in during:
        assert response.status_code == 200, response.text
        assert response.headers["cache-status"] == BYPASS
        assert response.json()["cache"] == "bypass" and response.json()["predicted_price"] > 0
    # a generous bound on "the model time plus the timeout": nothing waits for a dead Redis
    assert max(elapsed for _, elapsed in during) < MODEL_DELAY_S + 0.25 + 2.0
    assert backend_errors(a) == backend_errors(b) == 3
    for server in (a, b):  # one warning per outage, not one per request
        assert server.log.read_text().count("is unavailable") == 1

    redis_server.start()  # empty: persistence is off

    def stored_on_a() -> httpx.Response | None:
        r = post(a, ETH)
        return r if r.headers["cache-status"] != BYPASS else None

    def hit_on_b() -> httpx.Response | None:
        r = post(b, ETH)
        return r if r.headers["cache-status"].startswith("predcache; hit") else None

    filled = until(stored_on_a)
    assert filled.headers["cache-status"] == "predcache; fwd=miss; stored"
    assert until(hit_on_b).json()["predicted_price"] == filled.json()["predicted_price"]
    for server in (a, b):
        assert "is back" in server.log.read_text()
        assert server.proc.poll() is None  # no restart happened


def test_hung_redis_costs_one_timeout_then_model_time(
    serve: ServerFactory, redis_url: str, redis_server: RedisServer
) -> None:
    server = serve("--backend", f"{redis_url}?{TIMEOUTS}", "--model-delay", "500ms")
    assert post(server, ETH).status_code == 200
    redis_server.pause()
    try:
        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            response = post(server, ETH)
            timings.append(time.perf_counter() - t0)
            assert response.status_code == 200
            assert response.headers["cache-status"] == BYPASS
    finally:
        redis_server.resume()
    assert timings[0] < MODEL_DELAY_S + 0.25 + 2.0  # the model time plus one read timeout


def test_ready_follows_redis_while_health_stays_up(
    serve: ServerFactory, redis_url: str, redis_server: RedisServer
) -> None:
    from jsonschema import Draft202012Validator

    server = serve("--backend", f"{redis_url}?{TIMEOUTS}")
    assert httpx.get(f"{server.url}/ready", timeout=10).json() == {
        "status": "ready",
        "backend": "redis",
    }
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    redis_server.kill()
    try:
        down = httpx.get(f"{server.url}/ready", timeout=10)
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["code"] == "not_ready" and "redis" in down.json()["detail"]
        documented = spec["paths"]["/ready"]["get"]["responses"]["503"]["content"]
        schema = {**documented["application/problem+json"]["schema"], **spec}
        Draft202012Validator(schema).validate(down.json())
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        assert httpx.head(f"{server.url}/health", timeout=10).status_code == 200
    finally:
        redis_server.start()

    def ready() -> httpx.Response | None:
        r = httpx.get(f"{server.url}/ready", timeout=10)
        return r if r.status_code == 200 else None

    assert until(ready).json()["status"] == "ready"
