"""Server metrics stay exact: plain-int counters (one process) and shared files (``--workers``).

``LocalMetrics`` replaced prometheus_client's locked counters on the hit path; these tests pin
that it renders exactly what the prometheus_client version renders, that bucket edges follow
Prometheus' ``le`` rule, that model calls counted from many threads add up, and that a real
server (one worker and two) reports every request it answered.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from predcache.server.endpoint import PredictEndpoint, PredictRequest
from predcache.server.metrics import MULTIPROC_ENV, LocalMetrics, SharedMetrics
from tests.fixtures.server import RunningServer, ServerFactory

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels (``_created`` left out)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def events(m: LocalMetrics | SharedMetrics) -> None:
    for seconds in (0.0001, 0.00025, 0.0007, 0.001, 3.0, 99.0):
        m.served("hit", seconds)
    m.served("miss", 1.2)
    m.served("bypass", 0.4)
    m.served("stale", 0.0003)
    m.started()
    m.started()
    m.finished()
    m.failed("client", 0.0002)
    m.failed("model", 1.1)
    m.count_error("refresh")
    m.count_error("backend")
    m.count_model_call()
    m.count_model_call()


def test_local_metrics_render_what_prometheus_client_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    local, shared = LocalMetrics(), SharedMetrics()
    events(local)
    events(shared)
    ours = samples(local.render()[0].decode())
    theirs = samples(shared.render()[0].decode())
    # one process: LocalMetrics adds prometheus_client's process/platform/GC collectors
    assert {k: v for k, v in ours.items() if k[0].startswith("predcache_")} == theirs
    assert ours[("process_open_fds", ())] > 0 and any(k[0] == "python_info" for k in ours)
    assert local.render()[1] == shared.render()[1]
    assert ours[("predcache_requests_total", ())] == 11
    assert ours[("predcache_cache_stale_total", ())] == 1
    assert ours[("predcache_inflight_requests", ())] == 1
    assert ours[("predcache_errors_total", (("kind", "client"),))] == 1


def test_a_latency_on_a_bucket_bound_counts_in_that_bucket() -> None:
    m = LocalMetrics()
    m.served("hit", 0.001)
    s = samples(m.render()[0].decode())
    bucket = "predcache_request_duration_seconds_bucket"
    assert s[(bucket, (("cache", "hit"), ("le", "0.0005")))] == 0
    assert s[(bucket, (("cache", "hit"), ("le", "0.001")))] == 1
    assert s[(bucket, (("cache", "hit"), ("le", "+Inf")))] == 1
    assert s[("predcache_request_duration_seconds_sum", (("cache", "hit"),))] == 0.001


def test_model_calls_from_many_threads_all_count() -> None:
    m = LocalMetrics()
    gate = threading.Barrier(8)

    def work() -> None:
        gate.wait()
        for _ in range(5000):
            m.count_model_call()
            m.count_error("refresh")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.model_calls == 40_000 and m.errors["refresh"] == 40_000


def counted(server: RunningServer) -> Samples:
    return samples(httpx.get(f"{server.url}/metrics", timeout=5).text)


def hammer(server: RunningServer, hits: int) -> None:
    """One miss, ``hits`` hits (each on a new connection, so workers share them), one 4xx."""
    body = {"product_id": "ETH/EUR"}
    first = httpx.post(server.predict_url, json=body, timeout=10)
    assert first.headers["cache-status"] == "predcache; fwd=miss; stored"
    for _ in range(hits):
        r = httpx.post(server.predict_url, json=body, timeout=10)
        assert r.headers["cache-status"].startswith("predcache; hit"), r.headers
    assert httpx.post(server.predict_url, content=b"{", timeout=10).status_code == 400


def assert_exact(s: Samples, hits: int) -> None:
    assert s[("predcache_requests_total", ())] == hits + 2
    assert s[("predcache_cache_hits_total", ())] == hits
    assert s[("predcache_cache_misses_total", ())] == 1
    assert s[("predcache_model_calls_total", ())] == 1
    assert s[("predcache_errors_total", (("kind", "client"),))] == 1
    count = "predcache_request_duration_seconds_count"
    assert s[(count, (("cache", "hit"),))] == hits
    assert s[(count, (("cache", "miss"),))] == 1
    assert s[(count, (("cache", "error"),))] == 1


def test_one_worker_counts_every_request(serve: ServerFactory) -> None:
    server = serve("--backend", "disk")
    hammer(server, 40)
    assert_exact(counted(server), 40)


@pytest.mark.slow
def test_two_workers_count_every_request_once(serve: ServerFactory) -> None:
    server = serve("--backend", "disk", "--workers", "2")
    hammer(server, 40)
    for _ in range(4):  # a scrape answered by either worker sees both workers' counts
        assert_exact(counted(server), 40)


def test_a_client_gone_before_its_body_gets_no_answer() -> None:
    class Service:
        async def answer(self, request: PredictRequest) -> tuple[int, bytes, list[Any]]:
            await request.body()
            return 200, b"{}", []

    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"method": "POST", "headers": [], "query_string": b""}
    asyncio.run(PredictEndpoint(Service(), 1024)(scope, receive, send))
    assert sent == []
