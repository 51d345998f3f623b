"""``predcache serve`` over real HTTP: a real uvicorn subprocess on a free loopback port."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import RunningServer, ServerFactory

SEED_FIELDS = {"product_id", "predicted_price", "timestamp", "timestamp_sec"}
OUR_FIELDS = {"horizon_s", "as_of", "model_version", "cache", "age_s"}
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def timed_post(
    client: httpx.Client, url: str, body: object, **kw: object
) -> tuple[httpx.Response, float]:
    t0 = time.perf_counter()
    response = client.post(url, json=body, **kw)  # type: ignore[arg-type]
    return response, time.perf_counter() - t0


def test_seed_client_works_unchanged_and_second_request_hits(serve: ServerFactory) -> None:
    server = serve("--model-delay", "300ms")
    with httpx.Client(headers=JSON_HEADERS, timeout=10) as client:
        first, miss_s = timed_post(client, server.predict_url, {"product_id": "ETH/EUR"})
        second, hit_s = timed_post(client, server.predict_url, {"product_id": "ETH/EUR"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body.keys() >= SEED_FIELDS | OUR_FIELDS
    assert body["product_id"] == "ETH/EUR" and body["horizon_s"] == 300
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["timestamp"])
    assert isinstance(body["timestamp_sec"], int) and body["predicted_price"] > 0
    assert first.headers["cache-status"] == "predcache; fwd=miss; stored"
    assert "age" not in first.headers and body["cache"] == "miss"

    assert second.status_code == 200
    assert re.fullmatch(r"predcache; hit; ttl=(\d+)", second.headers["cache-status"])
    assert int(second.headers["age"]) >= 0 and second.json()["cache"] == "hit"
    assert second.json()["predicted_price"] == body["predicted_price"]
    assert miss_s >= 0.3  # the simulated model delay is inside the miss
    assert hit_s < miss_s


def test_get_pair_field_and_numeric_horizon(shared_server: RunningServer) -> None:
    r = httpx.get(shared_server.predict_url, params={"pair": "sol/usd", "horizon": "1m"})
    assert r.status_code == 200, r.text
    assert (r.json()["product_id"], r.json()["horizon_s"]) == ("SOL/USD", 60)
    r = httpx.post(shared_server.predict_url, json={"pair": "BTC/USD", "horizon": 900})
    assert (r.json()["product_id"], r.json()["horizon_s"]) == ("BTC/USD", 900)


def test_cache_control_tightens_and_forces(shared_server: RunningServer) -> None:
    url, body = shared_server.predict_url, {"product_id": "BTC/USD", "horizon": "15m"}
    with httpx.Client(timeout=10) as client:
        warm = client.post(url, json=body)
        loose = client.post(url, json=body, headers={"Cache-Control": "max-age=3600"})
        zero = client.post(url, json=body, headers={"Cache-Control": "max-age=0"})
        forced = client.post(url, json=body, headers={"Cache-Control": "no-cache"})
        after = client.post(url, json=body)
    assert warm.status_code == 200
    status = loose.headers["cache-status"]
    assert status.startswith("predcache; hit; ttl=")
    assert int(status.rsplit("=", 1)[1]) <= 90  # max-age never loosens the server's TTL
    assert zero.headers["cache-status"] == "predcache; fwd=request; stored"  # client-forced
    assert forced.headers["cache-status"] == "predcache; fwd=request; stored"
    assert after.headers["cache-status"].startswith("predcache; hit")
    assert after.json()["timestamp_sec"] >= warm.json()["timestamp_sec"]


def test_no_cache_server_bypasses(serve: ServerFactory) -> None:
    server = serve("--no-cache")
    before = server.metric("predcache_model_calls_total")
    with httpx.Client(timeout=10) as client:
        rs = [client.post(server.predict_url, json={"product_id": "ETH/EUR"}) for _ in range(2)]
    for r in rs:
        assert r.status_code == 200 and r.json()["cache"] == "bypass"
        assert r.headers["cache-status"] == "predcache; fwd=bypass" and "age" not in r.headers
    assert server.metric("predcache_model_calls_total") == before + 2
    assert server.metric("predcache_cache_bypasses_total") == 2


BAD_BODIES = [
    pytest.param(b"", 400, id="empty"),
    pytest.param(b"   ", 400, id="blank"),
    pytest.param(b'{"product_id": "ETH/EUR"', 400, id="malformed-json"),
    pytest.param(b"[1, 2]", 400, id="not-an-object"),
    pytest.param(b"{}", 422, id="no-pair"),
    pytest.param(b'{"product_id": 42}', 422, id="pair-number"),
    pytest.param(b'{"product_id": ["ETH/EUR"]}', 422, id="pair-list"),
    pytest.param(b'{"product_id": "DOGE/EUR"}', 422, id="unknown-pair"),
    pytest.param(b'{"product_id": "../../etc/passwd"}', 422, id="path-like-pair"),
    pytest.param(b'{"product_id": "ETH/EUR", "horizon": "-5m"}', 422, id="negative-horizon"),
    pytest.param(b'{"product_id": "ETH/EUR", "horizon": -300}', 422, id="negative-seconds"),
    pytest.param(b'{"product_id": "ETH/EUR", "horizon": "soon"}', 422, id="bad-horizon"),
    pytest.param(b'{"product_id": "ETH/EUR", "horizon": "7m"}', 422, id="untrained-horizon"),
    pytest.param(b'{"product_id": "ETH/EUR", "horizon": "1.5s"}', 422, id="fractional"),
    pytest.param(b'{"product_id": "ETH/EUR", "horizon": true}', 422, id="horizon-bool"),
    pytest.param(b'{"product_id": "ETH/EUR", "horizon": {"m": 5}}', 422, id="horizon-object"),
    pytest.param(b'{"product_id": "ETH/EUR", "horizon": 1e999}', 400, id="horizon-infinite"),
]


@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
def test_bad_bodies_get_4xx_json(shared_server: RunningServer, body: bytes, status: int) -> None:
    r = httpx.post(shared_server.predict_url, content=body, headers=JSON_HEADERS)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert set(problem) == {"type", "title", "status", "detail", "code"} and problem["detail"]
    assert problem["status"] == status and problem["type"] == "about:blank"
    assert "Traceback" not in r.text


def test_errors_never_echo_unbounded_input(shared_server: RunningServer) -> None:
    r = httpx.post(shared_server.predict_url, json={"product_id": "A" * 50_000 + "/EUR"})
    assert r.status_code == 422 and len(r.text) < 300


def test_bad_query_gets_4xx(shared_server: RunningServer) -> None:
    assert httpx.get(shared_server.predict_url).status_code == 422
    r = httpx.get(shared_server.predict_url, params={"pair": "ETH/EUR", "horizon": "0"})
    assert r.status_code == 422 and r.json()["code"] == "bad_horizon"


def test_oversized_bodies_are_refused(shared_server: RunningServer) -> None:
    big = b'{"product_id": "ETH/EUR", "pad": "' + b"x" * 70_000 + b'"}'
    r = httpx.post(shared_server.predict_url, content=big, headers=JSON_HEADERS)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"

    def chunks() -> object:  # no Content-Length: the cap must hold while streaming
        yield b'{"product_id": "ETH/EUR", "pad": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    r = httpx.post(shared_server.predict_url, content=chunks(), headers=JSON_HEADERS)  # type: ignore[arg-type]
    assert r.status_code == 413


def test_health_docs_and_metrics(shared_server: RunningServer) -> None:
    assert httpx.get(f"{shared_server.url}/health").json()["status"] == "ok"
    assert httpx.get(f"{shared_server.url}/docs").status_code == 200
    spec = httpx.get(f"{shared_server.url}/openapi.json").json()
    assert {"get", "post"} <= spec["paths"]["/predict"].keys()
    httpx.post(shared_server.predict_url, json={"product_id": "ETH/EUR", "horizon": "1h"})
    text = httpx.get(f"{shared_server.url}/metrics").text
    for name in (
        "predcache_requests_total",
        "predcache_cache_hits_total",
        "predcache_cache_misses_total",
        "predcache_model_calls_total",
        "predcache_errors_total",
        "predcache_request_duration_seconds_bucket",
    ):
        assert name in text


def test_size_limit_reaches_the_disk_store(serve: ServerFactory, tmp_path: Path) -> None:
    server = serve("--size-limit", "256KB")
    with httpx.Client(timeout=10) as client:
        for pair in ("ETH/EUR", "BTC/USD", "SOL/USD") * 2:
            r = client.get(server.predict_url, params={"pair": pair, "horizon": "1m"})
            assert r.status_code == 200
        assert r.headers["cache-status"].startswith("predcache; hit")
    db = sqlite3.connect(str(tmp_path / "serve-cache-0" / "cache.db"))
    ((limit,),) = db.execute("SELECT value FROM Settings WHERE key = 'size_limit'").fetchall()
    db.close()
    assert limit == 256_000
