"""Single-flight, failures and isolation between keys, over real HTTP and real processes."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import RunningServer, ServerFactory, start_server, stop_server

N_CONCURRENT = 32


def burst(
    server: RunningServer, body: dict[str, object], n: int = N_CONCURRENT
) -> list[httpx.Response]:
    """``n`` requests for one key, released together from ``n`` threads."""
    gate = threading.Barrier(n)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    with httpx.Client(timeout=30, limits=limits) as client:

        def one(_: int) -> httpx.Response:
            gate.wait()
            return client.post(server.predict_url, json=body)

        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, range(n)))


def assert_one_model_call(server: RunningServer) -> None:
    before = server.metric("predcache_model_calls_total")
    responses = burst(server, {"product_id": "ETH/EUR", "horizon": "5m"})
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    assert len({r.json()["predicted_price"] for r in responses}) == 1
    assert server.metric("predcache_model_calls_total") == before + 1
    statuses = [r.headers["cache-status"] for r in responses]
    assert statuses.count("predcache; fwd=miss; stored") == 1


def test_stampede_on_a_cold_key_makes_one_model_call(serve: ServerFactory) -> None:
    assert_one_model_call(serve("--model-delay", "500ms"))


@pytest.mark.slow
def test_stampede_across_two_workers_makes_one_model_call(serve: ServerFactory) -> None:
    server = serve("--model-delay", "500ms", "--workers", "2", "--backend", "disk")
    assert_one_model_call(server)
    assert server.metric("predcache_requests_total") == N_CONCURRENT


def test_a_hit_is_not_held_up_by_another_keys_slow_miss(serve: ServerFactory) -> None:
    server = serve("--model-delay", "1s")
    hot = {"product_id": "ETH/EUR", "horizon": "5m"}
    with httpx.Client(timeout=10) as client:
        assert client.post(server.predict_url, json=hot).status_code == 200  # warm: 1 call
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(
                client.post, server.predict_url, json={"product_id": "BTC/USD", "horizon": "5m"}
            )
            while server.metric("predcache_model_calls_total") < 2:  # the slow call started
                time.sleep(0.01)
            hit = client.post(server.predict_url, json=hot)
            slow_done_when_hit_returned = slow.done()
            assert slow.result().status_code == 200
    assert hit.headers["cache-status"].startswith("predcache; hit")
    assert not slow_done_when_hit_returned


def test_a_model_failure_reaches_every_waiter_as_503(tmp_path: Path, trained_models: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_models, models)
    artifact = models / "ETH-EUR.json"
    data = json.loads(artifact.read_text())
    data.pop("weights", None)  # the header is fine (hits would work); loading the model fails
    for key in [k for k in data if k not in {"schema", "version", "horizons_s", "pair"}]:
        data[key] = None
    artifact.write_text(json.dumps(data))
    env = {
        **__import__("os").environ,
        "PREDCACHE_MODELS_DIR": str(models),
        "PREDCACHE_CACHE_DIR": str(tmp_path / "cache"),
    }
    server = start_server(["--model-delay", "200ms"], log=tmp_path / "serve.log", env=env)
    try:
        responses = burst(server, {"product_id": "ETH/EUR"}, n=8)
        assert [r.status_code for r in responses] == [503] * 8
        assert all(r.json()["code"] == "model" for r in responses)
        assert server.metric("predcache_requests_total") == 8
        ok = httpx.post(server.predict_url, json={"product_id": "BTC/USD"})
        assert ok.status_code == 200  # one broken model does not take the server down
    finally:
        stop_server(server)
