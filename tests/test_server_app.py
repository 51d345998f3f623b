"""``create_app``: each serve setting reaches what it configures, and every route's answer.

Real uvicorn (with the protocol and limits ``predcache serve`` gives it) serves the app in a
thread of this process, over real sockets; the tests check HTTP only: statuses, headers,
bodies, ``/metrics``, ``/openapi.json``, and what a real backend holds afterwards. The clock
is the fake one of ``tests/test_pins.py`` (``Predictor`` falls back to :class:`SystemClock`,
which the ``fake_now`` fixture replaces), so ages are exact and no test waits out a TTL.
"""

from __future__ import annotations

import json
import socket
import time
import types
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from predcache import factory
from predcache.clock import ManualClock
from predcache.keys import prediction_key
from predcache.server.app import app_from_env, create_app
from predcache.server.settings import ENV_SETTINGS, ServeSettings
from predcache.store import open_store
from tests.fixtures.server import free_port
from tests.fixtures.threaded import T0, threaded_server

PROBLEM = "application/problem+json"
Serve = Callable[..., str]


def run_app(app: Any, max_connections: int) -> Generator[str]:
    """Serve ``app`` under uvicorn in a thread, with ``serve``'s protocol and limits, until the
    generator is closed; its base URL."""
    from predcache.server.limits import uvicorn_limits

    limits = uvicorn_limits(max_connections)
    with threaded_server(app, limits.pop("http"), **limits) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def serve(models_dir: Path, tmp_path: Path, fake_now: ManualClock) -> Iterator[Serve]:
    """``serve(ttl_s=..., ...)``: a server with those settings (a disk store in this test's
    folder and the session's models unless given); all stop at teardown."""
    running: list[Generator[str]] = []

    def start(**settings: Any) -> str:
        settings.setdefault("cache_dir", str(tmp_path / "cache"))
        settings.setdefault("models_dir", str(models_dir))
        config = ServeSettings(**settings)
        server = run_app(create_app(config), config.max_connections)
        running.append(server)
        return next(server)

    yield start
    for server in running:
        server.close()


def predict(url: str, pair: str = "ETH/EUR", **kw: Any) -> httpx.Response:
    return httpx.get(f"{url}/predict", params={"product_id": pair, "horizon": "5m"}, timeout=60,
                     **kw)  # fmt: skip


def metric_lines(url: str, *names: str) -> list[str]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.split("{")[0].split(" ")[0] in names]


def test_health_reports_the_settings_served_with(serve: Serve) -> None:
    url = serve(ttl_s=45, backend="memory", refresh_ahead=True, model_delay_s=0.25,
                stampede="stale-while-revalidate", stale_grace_s=30)  # fmt: skip
    r = httpx.get(f"{url}/health")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {
        "status": "ok", "cache": True, "backend": "memory", "ttl_s": 45.0,
        "simulated_model_delay_s": 0.25, "refresh_ahead": True,
        "stampede": "stale-while-revalidate", "stale_grace_s": 30.0,
    }  # fmt: skip
    head = httpx.head(f"{url}/health")
    assert (head.status_code, head.content) == (200, b"")
    r = httpx.get(f"{url}/ready")
    assert (r.status_code, r.json()) == (200, {"status": "ready", "backend": "memory"})


def test_without_a_cache_nothing_is_stored_and_every_answer_bypasses(serve: Serve) -> None:
    url = serve(ttl_s=90, no_cache=True)
    health = httpx.get(f"{url}/health").json()
    assert (health["cache"], health["backend"], health["ttl_s"]) == (False, None, 90.0)
    assert httpx.get(f"{url}/ready").json() == {"status": "ready", "backend": None}
    for _ in range(2):
        r = predict(url)
        assert (r.status_code, r.json()["cache"]) == (200, "bypass")
    assert metric_lines(url, "predcache_cache_entries") == []  # no store: no entries gauge
    assert metric_lines(url, "predcache_model_calls_total") == ["predcache_model_calls_total 2.0"]


def test_a_ttl_of_zero_is_no_cache_too(serve: Serve) -> None:
    url = serve(ttl_s=0)
    assert httpx.get(f"{url}/health").json()["cache"] is False
    assert predict(url).json()["cache"] == "bypass"


def test_metrics_count_model_calls_entries_and_versions(
    serve: Serve, fake_now: ManualClock, tmp_path: Path
) -> None:
    url = serve(ttl_s=90, backend="disk")
    # warming the models at start is not a model call
    assert metric_lines(url, "predcache_model_calls_total") == ["predcache_model_calls_total 0.0"]
    versions = metric_lines(url, "predcache_model_info")
    assert [v.split('version="')[0] for v in versions] == [
        'predcache_model_info{pair="BTC/USD",', 'predcache_model_info{pair="ETH/EUR",',
        'predcache_model_info{pair="SOL/USD",',
    ]  # fmt: skip
    assert all(v.endswith('"} 1.0') for v in versions)
    miss = predict(url)
    fake_now.advance(30)
    hit = predict(url)
    assert (miss.json()["cache"], hit.json()["cache"], hit.json()["age_s"]) == ("miss", "hit", 30)
    version = hit.json()["model_version"]
    assert f'predcache_model_info{{pair="ETH/EUR",version="{version}"}} 1.0' in versions
    assert metric_lines(url, "predcache_model_calls_total", "predcache_cache_entries") == [
        "predcache_model_calls_total 1.0", "predcache_cache_entries 1.0",
    ]  # fmt: skip
    r = httpx.get(f"{url}/metrics")
    assert r.headers["content-type"] == "text/plain; version=1.0.0; charset=utf-8"
    assert r.headers["vary"] == "Accept"
    om = httpx.get(f"{url}/metrics", headers={"accept": "application/openmetrics-text"})
    assert (
        om.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
    assert om.headers["vary"] == "Accept" and om.text.endswith("# EOF\n")
    # the entry went to the disk store in the configured folder
    with open_store("disk", cache_dir=tmp_path / "cache") as store:
        assert store.entry_keys() == [prediction_key(version, "ETH/EUR", 300)]


def test_ready_and_the_breaker_while_the_backend_is_down(serve: Serve) -> None:
    port = free_port()  # nothing listens there
    url = serve(ttl_s=90, backend=f"redis://127.0.0.1:{port}/0")
    r = httpx.get(f"{url}/ready")
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert {k: body[k] for k in ("type", "title", "status", "code")} == {
        "type": "about:blank", "title": "Service Unavailable", "status": 503, "code": "not_ready",
    }  # fmt: skip
    assert body["detail"] == (
        f"redis at redis://127.0.0.1:{port}/0 is unavailable (get: Error 111 connecting to "
        f"127.0.0.1:{port}. Connection refused.)"
    )
    # that failed probe opened the breaker: /metrics says so, and answers without the backend
    assert metric_lines(url, "predcache_breaker_state", "predcache_cache_entries") == [
        'predcache_breaker_state{state="closed"} 0.0', 'predcache_breaker_state{state="open"} 1.0',
        'predcache_breaker_state{state="half-open"} 0.0',
    ]  # fmt: skip
    again = httpx.get(f"{url}/ready").json()["detail"]
    assert again.startswith(f"redis://127.0.0.1:{port}/0 is unavailable (circuit open; next try")
    r = predict(url)
    assert (r.status_code, r.json()["cache"]) == (200, "bypass")


def test_the_breaker_state_of_a_reachable_redis(serve: Serve, redis_url: str) -> None:
    url = serve(ttl_s=90, backend=redis_url)
    assert httpx.get(f"{url}/ready").json() == {"status": "ready", "backend": "redis"}
    assert predict(url).json()["cache"] == "miss"
    assert metric_lines(url, "predcache_breaker_state", "predcache_cache_entries") == [
        'predcache_breaker_state{state="closed"} 1.0', 'predcache_breaker_state{state="open"} 0.0',
        'predcache_breaker_state{state="half-open"} 0.0', "predcache_cache_entries 1.0",
    ]  # fmt: skip


def test_the_model_delay_is_the_configured_one(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulated delay is slept through the factory's ``time.sleep``: recorded, not slept."""
    slept: list[float] = []
    monkeypatch.setattr(factory, "time", types.SimpleNamespace(sleep=slept.append))
    url = serve(ttl_s=90, model_delay_s=2.5)
    assert predict(url).json()["cache"] == "miss"
    assert slept == [2.5]


def test_failing_models_answer_503_and_are_counted(serve: Serve) -> None:
    url = serve(ttl_s=90, model_fail_rate=1.0)
    r = predict(url)
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "compute"
    assert r.json()["detail"] == (
        "model call failed for ETH/EUR: simulated failure (--model-fail-rate 1)"
    )
    assert metric_lines(url, "predcache_model_calls_total") == ["predcache_model_calls_total 1.0"]


@pytest.mark.parametrize(("stale_if_error_s", "kept_s"), [(0.0, 100 + 60), (3600.0, 100 + 3600)])
def test_the_disk_store_keeps_entries_for_the_stale_if_error_window(
    serve: Serve, tmp_path: Path, stale_if_error_s: float, kept_s: float
) -> None:
    url = serve(ttl_s=100, backend="disk", stale_if_error_s=stale_if_error_s)
    body = predict(url).json()
    key = prediction_key(body["model_version"], body["product_id"], body["horizon_s"])
    with open_store("disk", cache_dir=tmp_path / "cache") as store:
        _, expire_time = store.cache.get(key, expire_time=True)  # type: ignore[attr-defined]
    assert kept_s - 10 < expire_time - time.time() <= kept_s


def test_the_size_limit_reaches_the_disk_store(serve: Serve, tmp_path: Path) -> None:
    import diskcache

    url = serve(ttl_s=90, backend="disk", size_limit=12_345_678)
    assert predict(url).json()["cache"] == "miss"  # the store is opened by the first request
    with diskcache.Cache(str(tmp_path / "cache")) as cache:
        assert cache.size_limit == 12_345_678


def test_stale_while_revalidate_serves_within_its_grace(
    serve: Serve, fake_now: ManualClock
) -> None:
    url = serve(ttl_s=10, stampede="stale-while-revalidate", stale_grace_s=30)
    assert predict(url).json()["cache"] == "miss"
    fake_now.advance(15)
    r = predict(url)
    assert (r.json()["cache"], r.json()["age_s"]) == ("stale", 15)


def test_an_entry_from_the_future_is_a_miss_past_the_allowed_skew(
    serve: Serve, fake_now: ManualClock, tmp_path: Path, models_dir: Path
) -> None:
    """Written 3 s ahead of the server's clock: within the default 5 s skew a hit at age 0,
    with ``max_clock_skew_s=1`` a miss."""
    from predcache.factory import build_predictor

    url = serve(ttl_s=90, max_clock_skew_s=1.0)
    assert predict(url).json()["cache"] == "miss"  # the server's models are loaded
    fake_now.set(T0 + 100)  # that entry has expired
    ahead = build_predictor(cache_dir=tmp_path / "cache", models_dir=models_dir, ttl_s=90,
                            clock=ManualClock(T0 + 103))  # fmt: skip
    assert ahead.get_or_compute("ETH/EUR", 300).cache == "miss"
    assert ahead.store is not None
    ahead.store.close()
    assert predict(url).json()["cache"] == "miss"
    other = serve(ttl_s=90, cache_dir=str(tmp_path / "cache2"))
    assert predict(other).json()["cache"] == "miss"
    fake_now.set(T0 + 200)
    ahead = build_predictor(cache_dir=tmp_path / "cache2", models_dir=models_dir, ttl_s=90,
                            clock=ManualClock(T0 + 203))  # fmt: skip
    assert ahead.get_or_compute("ETH/EUR", 300).cache == "miss"
    assert ahead.store is not None
    ahead.store.close()
    r = predict(other).json()
    assert (r["cache"], r["age_s"]) == ("hit", 0.0)


def test_a_plugin_model_and_its_version(serve: Serve, tmp_path: Path) -> None:
    model = tmp_path / "m.py"
    model.write_text("def predict(pair, horizon_s, as_of):\n    return 1000.0 + horizon_s\n")
    url = serve(ttl_s=90, model=f"{model}:predict", model_version="v7")
    body = predict(url).json()
    assert (body["predicted_price"], body["model_version"], body["cache"]) == (1300.0, "v7", "miss")


def head_answer(url: str, head: bytes) -> bytes:
    """What the server sends back for ``head`` sent raw (a head left open is not finished)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        return sock.recv(4096)


def test_head_and_body_limits(serve: Serve) -> None:
    url = serve(ttl_s=90, max_header_bytes=1024, max_body_bytes=64)
    start = b"GET /health HTTP/1.1\r\nhost: x\r\nx-pad: "
    # still arriving and over 1024 bytes: refused; a whole head under the limit is answered
    assert head_answer(url, start + b"a" * 1100).startswith(b"HTTP/1.1 431 ")
    assert head_answer(url, start + b"a" * 900 + b"\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    body = json.dumps({"product_id": "ETH/EUR", "horizon": "5m", "pad": "b" * 40}).encode()
    assert len(body) > 64
    r = httpx.post(f"{url}/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    small = json.dumps({"product_id": "ETH/EUR", "horizon": "5m"}).encode()
    assert len(small) <= 64
    r = httpx.post(f"{url}/predict", content=small, headers={"content-type": "application/json"})
    assert r.status_code == 200


def test_a_slow_head_times_out(serve: Serve) -> None:
    url = serve(ttl_s=90, header_timeout_s=0.3)
    started = time.monotonic()
    answer = head_answer(url, b"GET /health HTTP/1.1\r\nhost: x\r\n")  # the head never ends
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"request headers not received within 0.3s" in answer
    assert time.monotonic() - started < 5  # the default header timeout is longer


def test_framework_errors_are_problems(serve: Serve) -> None:
    url = serve(ttl_s=90)
    r = httpx.get(f"{url}/nope")
    assert (r.status_code, r.headers["content-type"], r.headers["cache-control"]) == (
        404, PROBLEM, "no-store",
    )  # fmt: skip
    assert r.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                        "detail": "Not Found", "code": "not_found"}  # fmt: skip
    r = httpx.post(f"{url}/health")
    assert (r.status_code, r.headers["allow"], r.headers["content-type"]) == (405, "GET", PROBLEM)
    assert r.json() == {"type": "about:blank", "title": "Method Not Allowed", "status": 405,
                        "detail": "Method Not Allowed", "code": "method_not_allowed"}  # fmt: skip
    assert httpx.get(f"{url}/redoc").status_code == 404  # no /redoc
    docs = httpx.get(f"{url}/docs")  # the offline page instead of FastAPI's CDN one
    assert docs.status_code == 200 and "/static/docs/swagger-ui-bundle.js" in docs.text
    assert "cdn.jsdelivr.net" not in docs.text
    front = httpx.get(f"{url}/", headers={"accept": "application/json"})
    assert front.status_code == 200
    facts = front.json()
    assert (facts["cache"]["ttl_s"], facts["cache"]["backend"]) == (90.0, "disk")
    trained = sorted(m["pair"] for m in facts["models"] if m["version"] is not None)
    assert trained == ["BTC/USD", "ETH/EUR", "SOL/USD"]  # the session's trained models


def test_the_openapi_document(serve: Serve) -> None:
    url = serve(ttl_s=90)
    doc = httpx.get(f"{url}/openapi.json").json()
    assert doc["info"] == {
        "title": "predcache", "summary": "Cached ML price predictions over HTTP.", "version": "1",
    }  # fmt: skip
    assert doc["paths"]["/health"]["get"]["operationId"] == "health"
    assert doc["paths"]["/health"]["get"]["summary"] == (
        "Liveness (the process answers) and the settings it serves with; HEAD too."
    )
    assert doc["paths"]["/health"]["get"]["responses"]["200"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
    }
    ready = doc["paths"]["/ready"]["get"]
    assert (ready["operationId"], ready["summary"]) == (
        "ready", "Readiness: 200 when this process can answer from its backend, else 503.",
    )  # fmt: skip
    assert ready["responses"]["200"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Ready"}}
    }
    assert ready["responses"]["503"] == {
        "description": "The cache backend cannot be reached.",
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    assert doc["paths"]["/metrics"]["get"] == {
        "summary": "Prometheus metrics (summed over workers).",
        "operationId": "metrics",
        "responses": {"200": {
            "description": "Prometheus text, or OpenMetrics when Accept asks for it.",
            "content": {"text/plain": {"schema": {"type": "string"}},
                        "application/openmetrics-text": {"schema": {"type": "string"}}},
        }},
    }  # fmt: skip
    assert "/predict" in doc["paths"]  # completed with the /predict the endpoint serves
    assert httpx.get(f"{url}/openapi.json").json() == doc  # made once, the same each time


def test_app_from_env_serves_the_parents_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, models_dir: Path, fake_now: ManualClock
) -> None:
    settings = ServeSettings(ttl_s=33, backend="memory", models_dir=str(models_dir),
                             cache_dir=str(tmp_path / "cache"))  # fmt: skip
    monkeypatch.setenv(ENV_SETTINGS, settings.to_env())
    server = run_app(app_from_env(), settings.max_connections)
    try:
        url = next(server)
        health = httpx.get(f"{url}/health").json()
        assert (health["ttl_s"], health["backend"]) == (33.0, "memory")
    finally:
        server.close()


@pytest.fixture
def with_routes(models_dir: Path, tmp_path: Path, fake_now: ManualClock) -> Iterator[str]:
    """The served app plus routes that fail the ways a route can: a query parameter that
    does not validate, validation errors raised by hand, an HTTP error the app does not map, a
    bug, one of predcache's own errors. None of the built-in routes takes a parameter today;
    these show that whatever a route does, the answer is problem+json."""
    from fastapi import HTTPException, Query
    from fastapi.exceptions import RequestValidationError

    from predcache.errors import BackendUnavailableError

    settings = ServeSettings(ttl_s=90, cache_dir=str(tmp_path / "cache"),
                             models_dir=str(models_dir))  # fmt: skip
    dispatch = create_app(settings)
    api = dispatch.app

    @api.get("/typed")  # type: ignore[attr-defined, untyped-decorator]
    async def typed(n: int = Query()) -> dict[str, int]:
        return {"n": n}

    @api.get("/raised/{case}")  # type: ignore[attr-defined, untyped-decorator]
    async def raised(case: str) -> None:
        errors: dict[str, list[dict[str, Any]]] = {
            "none": [],
            "two": [{"loc": ("body", "a", 1), "msg": "first"}, {"loc": ("b",), "msg": "second"}],
            "no-msg": [{"loc": ("q",)}],
            "no-loc": [{"msg": "odd"}],
        }
        if case == "teapot":
            raise HTTPException(418, "short and stout", headers={"x-spout": "1"})
        if case == "bug":
            raise RuntimeError("a bug")
        if case == "predcache":
            raise BackendUnavailableError("redis at redis://x is unavailable")
        raise RequestValidationError(errors[case])

    server = run_app(dispatch, settings.max_connections)
    try:
        yield next(server)
    finally:
        server.close()


def problem_of(r: httpx.Response) -> tuple[int, str, str]:
    assert r.headers["content-type"] == PROBLEM and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["status"] == r.status_code and body["type"] == "about:blank"
    return r.status_code, body["code"], body["detail"]


def test_validation_errors_are_422_problems(with_routes: str) -> None:
    url = with_routes
    assert httpx.get(f"{url}/typed", params={"n": "3"}).json() == {"n": 3}
    assert problem_of(httpx.get(f"{url}/typed", params={"n": "x"})) == (
        422, "bad_request",
        "query.n: Input should be a valid integer, unable to parse string as an integer",
    )  # fmt: skip
    assert problem_of(httpx.get(f"{url}/typed")) == (422, "bad_request", "query.n: Field required")
    assert httpx.get(f"{url}/typed").json()["title"] == "Unprocessable Entity"
    raised = [("none", "invalid request"), ("two", "body.a.1: first"),
              ("no-msg", "q: invalid request"), ("no-loc", "invalid request")]  # fmt: skip
    for case, detail in raised:
        assert problem_of(httpx.get(f"{url}/raised/{case}")) == (422, "bad_request", detail)


def test_other_http_errors_and_bugs_are_problems(
    with_routes: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = httpx.get(f"{with_routes}/raised/teapot")
    assert problem_of(r) == (418, "http_error", "short and stout")
    assert r.headers["x-spout"] == "1" and r.json()["title"] == "I'm a Teapot"
    with caplog.at_level("ERROR", logger="predcache.server"):
        r = httpx.get(f"{with_routes}/raised/bug")
    assert problem_of(r) == (500, "internal", "internal error; see the server log")
    assert r.json()["title"] == "Internal Server Error"
    # predcache's own error raised in a route: its status, code and message, as on /predict
    assert problem_of(httpx.get(f"{with_routes}/raised/predcache")) == (
        503, "backend_unavailable", "redis at redis://x is unavailable",
    )  # fmt: skip
    (record, _) = [rec for rec in caplog.records if rec.name == "predcache.server"]
    assert record.getMessage() == "internal error" and record.levelname == "ERROR"
    assert record.exc_info is not None and str(record.exc_info[1]) == "a bug"


def test_the_models_come_from_the_configured_folder(
    serve: Serve, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``models_dir`` wins over the environment's folder, which holds another ETH/EUR model."""
    import shutil

    from predcache.artifact import artifact_path, save_artifact
    from predcache.registry import ModelRegistry
    from predcache.training import train_synthetic

    other = tmp_path / "other-models"
    shutil.copytree(models_dir, other)
    save_artifact(train_synthetic("ETH/EUR", days=3), artifact_path(other, "ETH/EUR"))
    monkeypatch.setenv("PREDCACHE_MODELS_DIR", str(other))
    mine = ModelRegistry(models_dir, auto_train=False).version("ETH/EUR")
    assert mine != ModelRegistry(other, auto_train=False).version("ETH/EUR")
    url = serve(ttl_s=90, models_dir=str(models_dir))
    assert predict(url).json()["model_version"] == mine
