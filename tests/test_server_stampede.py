"""``predcache serve --stampede``: what a request does while its key is computed, over HTTP.

Real uvicorn, real sockets: a slow simulated model holds one computation in flight while more
requests for the same key arrive; Cache-Status and /metrics must say what each one did.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from predcache.cli import run
from predcache.predictor import COLLAPSED, STALE, SWR_DETAIL, Served
from predcache.server.protocol import response_headers
from tests.fixtures.server import RunningServer, ServerFactory

BODY = {"product_id": "ETH/EUR", "horizon": "5m"}
FOLLOWERS = 6


def during_one_computation(server: RunningServer) -> tuple[httpx.Response, list[httpx.Response]]:
    """One request starts a (3 s) computation; FOLLOWERS more arrive while it runs."""
    limits = httpx.Limits(max_connections=FOLLOWERS + 1)
    with (
        httpx.Client(timeout=30, limits=limits) as client,
        ThreadPoolExecutor(FOLLOWERS + 1) as pool,
    ):
        first = pool.submit(client.post, server.predict_url, json=BODY)
        deadline = time.monotonic() + 20
        while server.metric("predcache_model_calls_total") < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        gate = threading.Barrier(FOLLOWERS)

        def follow(_: int) -> httpx.Response:
            gate.wait()
            return client.post(server.predict_url, json=BODY)

        followers = list(pool.map(follow, range(FOLLOWERS)))
        return first.result(), followers


def test_coalesce_says_collapsed_and_counts_it(serve: ServerFactory) -> None:
    server = serve("--model-delay", "3s")
    first, followers = during_one_computation(server)
    assert first.headers["cache-status"] == "predcache; fwd=miss; stored"
    assert [r.headers["cache-status"] for r in followers] == [
        "predcache; fwd=miss; collapsed"
    ] * FOLLOWERS
    assert {r.json()["predicted_price"] for r in [first, *followers]} == {
        first.json()["predicted_price"]
    }
    assert all(r.json()["cache"] == "collapsed" for r in followers)
    assert server.metric("predcache_model_calls_total") == 1
    assert server.metric("predcache_cache_collapsed_total") == FOLLOWERS
    assert server.metric("predcache_cache_misses_total") == 1
    assert server.metric("predcache_cache_hits_total") == 0


def test_none_lets_every_request_call_the_model(serve: ServerFactory) -> None:
    server = serve("--model-delay", "3s", "--stampede", "none")
    first, followers = during_one_computation(server)
    statuses = {r.headers["cache-status"] for r in [first, *followers]}
    assert statuses == {"predcache; fwd=miss; stored"}
    assert server.metric("predcache_model_calls_total") == 1 + FOLLOWERS
    assert server.metric("predcache_cache_misses_total") == 1 + FOLLOWERS
    assert server.metric("predcache_cache_collapsed_total") == 0
    assert httpx.get(f"{server.url}/health").json()["stampede"] == "none"
    # every follower's computation started while the first one ran: no per-key bound queues
    # any of them behind it (the ETag carries each entry's creation, in ms)
    started_ms = [int(r.headers["etag"].split("@")[1].rstrip('"')) for r in [first, *followers]]
    assert max(started_ms) - min(started_ms) < 3000


def test_stale_and_collapsed_headers() -> None:
    entry = {"pair": "ETH/EUR", "horizon_s": 300, "predicted_price": 1.0, "as_of": 0.0,
             "created_at": 0.0, "model_version": "v", "compute_ms": 1.0}  # fmt: skip
    stale = Served(entry, STALE, 93.2, 0.01, "k", detail=SWR_DETAIL)  # type: ignore[arg-type]
    headers = dict(response_headers(stale, 90.0, forced=False, client_no_store=False))
    assert headers[b"cache-status"] == b"predcache; hit; ttl=-3; detail=stale-while-revalidate"
    assert headers[b"age"] == b"93"
    waited = Served(entry, COLLAPSED, 1.4, 900.0, "k", detail="coalesced")  # type: ignore[arg-type]
    headers = dict(response_headers(waited, 90.0, forced=False, client_no_store=False))
    assert headers[b"cache-status"] == b"predcache; fwd=miss; collapsed; detail=coalesced"
    assert (headers[b"age"], headers[b"cache-control"]) == (b"1", b"max-age=88")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stampede", "bogus"], "bad --stampede 'bogus': expected one of coalesce, none"),
        (["--stale-grace", "5s"], "--stale-grace only applies to --stampede stale-while"),
        (["--stampede", "stale-while-revalidate"], "needs --stale-grace"),
        (["--stampede", "stale-while-revalidate", "--stale-grace", "soon"], "stale-grace"),
    ],
)
def test_bad_stampede_options_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["serve", "--port", "1", *args]) == 2
    out, err = capsys.readouterr()
    assert message in err and len(err.strip().splitlines()) == 1 and out == ""
