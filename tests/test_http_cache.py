"""``predcache serve`` as an HTTP cache (RFC 9111/9211/5861), over real sockets.

A real uvicorn subprocess on a disk store; entries are aged by rewriting their ``created_at`` in
that store (the server reads the same sqlite file), so no test sleeps out a TTL.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from predcache.keys import prediction_key
from predcache.store import open_store
from tests.fixtures.server import RunningServer, ServerFactory

TTL_S = 90
ETH = {"pair": "ETH/EUR", "horizon": "5m"}


def age_entry(cache_dir: Path, served: httpx.Response, age_s: float) -> None:
    """Make the stored entry behind ``served`` ``age_s`` old (as if written that long ago)."""
    body = served.json()
    key = prediction_key(body["model_version"], body["product_id"], body["horizon_s"])
    with open_store("disk", cache_dir=cache_dir) as store:
        entry = store.get(key)
        assert entry is not None
        entry["created_at"] = time.time() - age_s
        store.set(key, entry, 3600)


def keys(cache_dir: Path) -> list[str]:
    with open_store("disk", cache_dir=cache_dir) as store:
        return sorted(store.entry_keys())


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "shared-cache"


@pytest.fixture
def server(serve: ServerFactory, cache_dir: Path) -> RunningServer:
    return serve("--cache-dir", str(cache_dir), "--ttl", f"{TTL_S}s", "--model-delay", "2s")


def get(server: RunningServer, *headers: tuple[str, str], **params: str) -> httpx.Response:
    return httpx.get(server.predict_url, params=params or ETH, headers=list(headers), timeout=30)


def calls(server: RunningServer) -> float:
    return server.metric("predcache_model_calls_total")


def test_only_if_cached_on_a_cold_key_is_504_without_a_model_call(server: RunningServer) -> None:
    t0 = time.perf_counter()
    r = get(server, ("Cache-Control", "only-if-cached"))
    elapsed = time.perf_counter() - t0
    assert r.status_code == 504
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not_cached" and r.json()["status"] == 504
    assert calls(server) == 0
    assert elapsed < 2.0  # the simulated model delay: it was never waited for
    get(server)
    hit = get(server, ("Cache-Control", "only-if-cached"))
    assert hit.status_code == 200 and hit.json()["cache"] == "hit" and calls(server) == 1


def test_max_stale_serves_an_expired_entry_and_min_fresh_refuses_an_old_one(
    server: RunningServer, cache_dir: Path
) -> None:
    age_entry(cache_dir, get(server), TTL_S + 10.2)  # expired 10 s ago
    stale = get(server, ("Cache-Control", "max-stale=60"))
    assert stale.status_code == 200 and stale.json()["cache"] == "stale"
    age = int(stale.headers["age"])
    assert 100 <= age < 130  # the server's own clock: as old as planted, plus test latency
    assert stale.headers["cache-status"] == f"predcache; hit; ttl={TTL_S - age}; detail=max-stale"
    assert stale.headers["cache-control"] == "max-age=0"
    assert get(server, ("Cache-Control", "max-stale=5")).json()["cache"] == "miss"  # too stale
    assert calls(server) == 2

    fresh = get(server)  # the entry stored just now, now 80.2 s old: 9.8 s of freshness left
    age_entry(cache_dir, fresh, TTL_S - 9.8)
    assert get(server, ("Cache-Control", "min-fresh=5")).json()["cache"] == "hit"
    refused = get(server, ("Cache-Control", "min-fresh=10"))
    assert refused.headers["cache-status"] == "predcache; fwd=miss; stored"
    assert calls(server) == 3


def test_no_store_leaves_the_store_unchanged(server: RunningServer, cache_dir: Path) -> None:
    r = get(server, ("Cache-Control", "no-store"))
    assert r.status_code == 200 and r.json()["cache"] == "bypass"
    assert r.headers["cache-status"] == "predcache; fwd=request"
    assert r.headers["cache-control"] == "no-store" and "etag" not in r.headers
    assert keys(cache_dir) == []
    assert get(server).headers["cache-status"] == "predcache; fwd=miss; stored"


def test_directive_lines_merge_and_malformed_values_are_ignored(server: RunningServer) -> None:
    get(server)
    merged = get(server, ("Cache-Control", "no-cache"), ("Cache-Control", "max-age=100"))
    assert merged.headers["cache-status"] == "predcache; fwd=request; stored"
    hostile = (b"max-age=abc", "max-age=²".encode("latin-1"), b"max-age=-1, max-stale=1e3")
    for value in (*hostile, b'max-age="', b"=,,", b"max-age=\xef\xbc\x91"):
        r = get(server, ("Cache-Control", value))
        assert r.status_code == 200 and r.json()["cache"] == "hit", value
    pragma = get(server, ("Pragma", "no-cache"))
    assert pragma.headers["cache-status"] == "predcache; fwd=request; stored"
    # RFC 9111 5.4: with a Cache-Control present, Pragma is ignored
    assert (
        get(server, ("Pragma", "no-cache"), ("Cache-Control", "max-age=60")).json()["cache"]
        == "hit"
    )
    assert calls(server) == 3


def test_a_hit_carries_validators_and_if_none_match_gets_304(server: RunningServer) -> None:
    miss = get(server)  # freshness runs from the start of the (2 s) computation
    assert miss.headers["cache-control"] == f"max-age={int(TTL_S - miss.json()['age_s'])}"
    hit = get(server)
    age_s = hit.json()["age_s"]
    assert hit.headers["age"] == str(int(age_s))
    assert hit.headers["cache-control"] == f"max-age={int(TTL_S - age_s)}"
    assert hit.headers["etag"] == miss.headers["etag"]
    body = miss.json()
    key = prediction_key(body["model_version"], "ETH/EUR", 300)
    assert hit.headers["etag"].startswith(f'W/"{key}@')
    not_modified = get(server, ("If-None-Match", hit.headers["etag"]))
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == hit.headers["etag"]
    posted = httpx.post(
        server.predict_url,
        json={"product_id": "ETH/EUR"},
        headers={"If-None-Match": f'"x", {hit.headers["etag"]}'},
        timeout=30,
    )
    assert posted.status_code == 304
    assert get(server, ("If-None-Match", 'W/"other"')).status_code == 200


def test_head_never_calls_the_model(server: RunningServer) -> None:
    cold = httpx.head(server.predict_url, params=ETH, timeout=30)
    assert cold.status_code == 200 and cold.content == b""
    assert cold.headers["cache-status"] == "predcache; fwd=miss"
    assert calls(server) == 0
    get(server)
    warm = httpx.head(server.predict_url, params=ETH, timeout=30)
    assert warm.headers["cache-status"].startswith("predcache; hit; ttl=")
    assert "etag" in warm.headers and warm.content == b""
    assert httpx.head(f"{server.url}/health", timeout=10).status_code == 200
    assert calls(server) == 1


def test_purge_is_refused_unless_allowed(server: RunningServer, cache_dir: Path) -> None:
    get(server)
    r = httpx.delete(server.predict_url, params={"pair": "ETH/EUR"}, timeout=10)
    assert r.status_code == 403 and r.json()["code"] == "purge_disabled"
    assert len(keys(cache_dir)) == 1


def test_purge_removes_a_pairs_entries(serve: ServerFactory, cache_dir: Path) -> None:
    server = serve("--cache-dir", str(cache_dir), "--allow-purge")
    for params in (ETH, {"pair": "ETH/EUR", "horizon": "1m"}, {"pair": "BTC/USD"}):
        assert get(server, **params).status_code == 200
    one = httpx.delete(server.predict_url, params={"pair": "ETH/EUR", "horizon": "1m"}, timeout=10)
    assert one.json() == {"purged": 1, "pair": "ETH/EUR", "horizon_s": 60}
    rest = httpx.delete(server.predict_url, params={"pair": "eth/eur"}, timeout=10)
    assert rest.json() == {"purged": 1, "pair": "ETH/EUR", "horizon_s": None}
    assert [k.split(":")[2] for k in keys(cache_dir)] == ["BTC/USD"]
    assert get(server).headers["cache-status"] == "predcache; fwd=miss; stored"


def test_stale_if_error_serves_an_expired_entry_when_the_model_fails(
    serve: ServerFactory, cache_dir: Path
) -> None:
    healthy = serve("--cache-dir", str(cache_dir))
    stored = get(healthy)
    failing = serve("--cache-dir", str(cache_dir), "--model-fail-rate", "1")
    rescued = serve(
        "--cache-dir", str(cache_dir), "--model-fail-rate", "1", "--stale-if-error", "1h"
    )
    age_entry(cache_dir, stored, TTL_S + 30.2)
    r = get(failing)
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "compute" and "simulated" in r.json()["detail"]
    r = get(rescued)
    assert r.status_code == 200 and r.json()["cache"] == "stale"
    age = int(r.headers["age"])
    assert 120 <= age < 150
    assert r.headers["cache-status"] == (
        f"predcache; fwd=stale; ttl={TTL_S - age}; detail=stale-if-error"
    )
    assert rescued.metric("predcache_cache_stale_total") == 1
    assert "stale-if-error" in rescued.log.read_text()


@pytest.mark.parametrize(
    ("flags", "kept_s"), [((), TTL_S + 60), (("--stale-if-error", "1h"), TTL_S + 3600)]
)
def test_the_disk_store_keeps_entries_as_long_as_stale_if_error_may_serve_them(
    serve: ServerFactory, cache_dir: Path, flags: tuple[str, ...], kept_s: float
) -> None:
    """diskcache's own expiry of the entry a miss wrote: TTL + 60 s, or TTL + the stale-if-error
    window when that is longer (an entry the backend dropped could not stand in)."""
    server = serve("--cache-dir", str(cache_dir), "--ttl", f"{TTL_S}s", *flags)
    body = get(server).json()
    key = prediction_key(body["model_version"], body["product_id"], body["horizon_s"])
    with open_store("disk", cache_dir=cache_dir) as store:
        _, expire_time = store.cache.get(key, expire_time=True)  # type: ignore[attr-defined]
    assert kept_s - 10 < expire_time - time.time() <= kept_s
