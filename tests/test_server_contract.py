"""What every client of ``predcache serve`` may rely on: one error shape on every route, an
OpenAPI document that validates and that real answers match, liveness, metrics formats, and no
header bytes that turn into a 500. Real uvicorn subprocesses on loopback."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.fixtures.server import RunningServer, start_server, stop_server

PROBLEM = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}
ETH = {"pair": "ETH/EUR", "horizon": "5m"}


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, trained_models: Path
) -> Iterator[tuple[RunningServer, RunningServer]]:
    """(a caching server that allows purges, a server whose model always fails)."""
    tmp = tmp_path_factory.mktemp("contract")
    env = {**os.environ, "PREDCACHE_MODELS_DIR": str(trained_models)}
    env.pop("PREDCACHE_BACKEND", None)
    good = start_server(
        ["--allow-purge", "--cache-dir", str(tmp / "good")], log=tmp / "good.log", env=env
    )
    failing = start_server(
        ["--model-fail-rate", "1", "--cache-dir", str(tmp / "failing")],
        log=tmp / "failing.log",
        env=env,
    )
    yield good, failing
    stop_server(good)
    stop_server(failing)


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert set(body) == PROBLEM_FIELDS and body["status"] == status
    if code is not None:
        assert body["code"] == code


def test_every_error_has_one_shape(servers: tuple[RunningServer, RunningServer]) -> None:
    good, failing = servers
    assert_problem(httpx.post(good.predict_url, content=b"{nope"), 400, "bad_body")
    assert_problem(httpx.get(f"{good.url}/nowhere"), 404, "not_found")
    wrong = httpx.post(f"{good.url}/health")
    assert_problem(wrong, 405, "method_not_allowed")
    assert "GET" in wrong.headers["allow"]
    put = httpx.put(good.predict_url)
    assert_problem(put, 405, "method_not_allowed")
    assert put.headers["allow"] == "GET, HEAD, POST, DELETE"
    assert_problem(httpx.get(good.predict_url, params={"pair": "ETH/EUR", "horizon": "-5m"}), 422)
    for horizon in ("-5m", "0", "7m", "1.5s", "soon"):  # one code for every kind of bad horizon
        r = httpx.get(good.predict_url, params={"pair": "ETH/EUR", "horizon": horizon})
        assert_problem(r, 422, "bad_horizon")
    assert_problem(httpx.get(failing.predict_url, params=ETH), 503, "compute")


def documented(spec: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (path, method, status)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        for status in op["responses"]
    }


def test_openapi_validates_and_real_answers_match_it(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    good, failing = servers
    spec = httpx.get(f"{good.url}/openapi.json").json()
    validate(spec)
    ok = spec["paths"]["/predict"]["get"]["responses"]["200"]["content"]["application/json"]
    prediction = spec["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[1]]
    assert "predicted_price" in prediction["properties"]
    assert "application/json" not in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert "health" in ids and "predict_get" in ids and not any(i.endswith("_get") for i in ids[4:])
    pairs = spec["paths"]["/predict"]["get"]["parameters"]
    assert {p["name"]: p["required"] for p in pairs if p["in"] == "query"} == {
        "pair": False,
        "product_id": False,
        "horizon": False,
    }

    warm = httpx.get(good.predict_url, params=ETH)
    tag = {"If-None-Match": warm.headers["etag"]}
    post = {"product_id": "ETH/EUR"}
    only = {"Cache-Control": "only-if-cached"}
    cold = {"pair": "SOL/USD", "horizon": "1h"}
    bad = {"pair": "ETH/EUR", "horizon": "soon"}
    calls: dict[tuple[str, str, str], Callable[[], httpx.Response]] = {
        ("/predict", "get", "200"): lambda: httpx.get(good.predict_url, params=ETH),
        ("/predict", "get", "304"): lambda: httpx.get(good.predict_url, params=ETH, headers=tag),
        ("/predict", "get", "422"): lambda: httpx.get(good.predict_url, params=bad),
        ("/predict", "get", "503"): lambda: httpx.get(failing.predict_url, params=ETH),
        ("/predict", "get", "504"): lambda: httpx.get(good.predict_url, params=cold, headers=only),
        ("/predict", "head", "200"): lambda: httpx.head(good.predict_url, params=ETH),
        ("/predict", "head", "304"): lambda: httpx.head(good.predict_url, params=ETH, headers=tag),
        ("/predict", "head", "422"): lambda: httpx.head(good.predict_url, params=bad),
        ("/predict", "head", "504"): lambda: httpx.head(
            good.predict_url, params=cold, headers=only
        ),
        ("/predict", "post", "200"): lambda: httpx.post(good.predict_url, json=post),
        ("/predict", "post", "304"): lambda: httpx.post(good.predict_url, json=post, headers=tag),
        ("/predict", "post", "400"): lambda: httpx.post(good.predict_url, content=b"["),
        ("/predict", "post", "413"): lambda: httpx.post(good.predict_url, content=b" " * 70_000),
        ("/predict", "post", "422"): lambda: httpx.post(good.predict_url, json={"pair": "X"}),
        ("/predict", "post", "503"): lambda: httpx.post(failing.predict_url, json=post),
        ("/predict", "post", "504"): lambda: httpx.post(
            good.predict_url, json={"pair": "SOL/USD", "horizon": "1h"}, headers=only
        ),
        ("/predict", "delete", "200"): lambda: httpx.delete(
            good.predict_url, params={"pair": "BTC/USD"}
        ),
        ("/predict", "delete", "403"): lambda: httpx.delete(failing.predict_url, params=ETH),
        ("/predict", "delete", "422"): lambda: httpx.delete(good.predict_url, params=bad),
        ("/", "get", "200"): lambda: httpx.get(f"{good.url}/"),
        ("/health", "get", "200"): lambda: httpx.get(f"{good.url}/health"),
        ("/ready", "get", "200"): lambda: httpx.get(f"{good.url}/ready"),
        ("/metrics", "get", "200"): lambda: httpx.get(f"{good.url}/metrics"),
    }
    # /ready's 503 needs a backend that is down: tests/test_redis_serve.py checks it
    assert documented(spec) - {("/ready", "get", "503")} == set(calls)
    for (path, method, status), call in calls.items():
        r = call()
        assert r.status_code == int(status), (path, method, status, r.text)
        response = spec["paths"][path][method]["responses"][status]
        content = response.get("content")
        if method == "head" or status == "304" or content is None:
            assert r.content == b""
            continue
        media = r.headers["content-type"].split(";")[0]
        assert media in content or (media == "text/plain" and "text/plain" in content), media
        if media.endswith("json"):
            schema = {**content[media]["schema"], "components": spec["components"]}
            Draft202012Validator(schema).validate(r.json())


def test_metrics_gauges_process_metrics_and_openmetrics(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    good, _ = servers
    text = httpx.get(f"{good.url}/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.headers["vary"] == "Accept"
    for name in (
        "predcache_inflight_requests 0.0",
        "predcache_cache_entries ",
        "process_resident_memory_bytes ",
        "python_info{",
    ):
        assert name in text.text, name
    om = httpx.get(f"{good.url}/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")


def raw_request(port: int, header: bytes) -> bytes:
    """One GET /predict with ``header`` as a Cache-Control value, on a raw socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"GET /predict?pair=ETH/EUR HTTP/1.1\r\nhost: x\r\ncache-control: "
            + header
            + b"\r\nif-none-match: "
            + header
            + b"\r\npragma: "
            + header
            + b"\r\nconnection: close\r\n\r\n"
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(min_size=0, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b))
def test_no_header_bytes_get_a_500(
    servers: tuple[RunningServer, RunningServer], header: bytes
) -> None:
    good, _ = servers
    port = int(good.url.rsplit(":", 1)[1])
    status_line = raw_request(port, header).split(b"\r\n", 1)[0]
    assert status_line.split()[1] in (b"200", b"304", b"400", b"504"), status_line
