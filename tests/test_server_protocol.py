"""The wire format of ``/predict`` built from memoized parts equals the plain construction."""

from __future__ import annotations

import orjson
import pytest

from predcache.entry import Entry
from predcache.predictor import Served
from predcache.server.protocol import etag, response_headers, response_json


def entry(created_at: float, price: float = 2301.57) -> Entry:
    return {
        "pair": "ETH/EUR",
        "horizon_s": 300,
        "predicted_price": price,
        "last_price": 2300.0,
        "as_of": 1_795_877_700.0,
        "created_at": created_at,
        "model_version": "3f9c2a1b7d4e",
        "compute_ms": 1.5,
    }  # type: ignore[typeddict-unknown-key]


@pytest.mark.parametrize(("cache", "age"), [("hit", 12.3456), ("miss", 0.0), ("stale", 1e-05)])
def test_body_bytes_are_orjsons(cache: str, age: float) -> None:
    served = Served(entry(1_795_877_703.25), cache, age, 0.1, "v1:3f9c2a1b7d4e:ETH/EUR:300")
    expected = {
        "product_id": "ETH/EUR",
        "predicted_price": 2301.57,
        "timestamp": "2026-11-28 14:55:03",
        "timestamp_sec": 1795877703,
        "horizon_s": 300,
        "as_of": "2026-11-28T14:55:00Z",
        "model_version": "3f9c2a1b7d4e",
        "cache": cache,
        "age_s": round(age, 3),
    }
    assert response_json(served) == orjson.dumps(expected)


def test_a_recomputed_entry_is_rendered_anew() -> None:
    key = "v1:3f9c2a1b7d4e:ETH/EUR:300"
    first = Served(entry(1_795_877_703.25), "hit", 1.0, 0.1, key)
    again = Served(entry(1_795_877_703.25, price=1.5), "hit", 1.0, 0.1, key)
    later = Served(entry(1_795_877_763.0), "hit", 1.0, 0.1, key)
    assert orjson.loads(response_json(again))["predicted_price"] == 1.5
    assert etag(first) == b'W/"v1:3f9c2a1b7d4e:ETH/EUR:300@1795877703250"'
    assert etag(later) == b'W/"v1:3f9c2a1b7d4e:ETH/EUR:300@1795877763000"'


def test_headers_of_each_outcome() -> None:
    key = "v1:3f9c2a1b7d4e:ETH/EUR:300"
    e = entry(1_795_877_703.25)
    tag = etag(Served(e, "hit", 0, 0, key))
    assert response_headers(Served(e, "hit", 41.9, 0, key), 90, False, False) == [
        (b"cache-status", b"predcache; hit; ttl=48"),
        (b"cache-control", b"max-age=48"),
        (b"age", b"41"),
        (b"etag", tag),
    ]
    assert response_headers(Served(e, "miss", 0.4, 0, key), 90, True, False) == [
        (b"cache-status", b"predcache; fwd=request; stored"),
        (b"cache-control", b"max-age=89"),
        (b"etag", tag),
    ]
    stale = Served(e, "stale", 120.5, 0, key, detail="stale-if-error")
    assert response_headers(stale, 90, False, False)[:3] == [
        (b"cache-status", b"predcache; fwd=stale; ttl=-30; detail=stale-if-error"),
        (b"cache-control", b"max-age=0"),
        (b"age", b"120"),
    ]
    bypass = Served(e, "bypass", 0, 0, key, detail="backend-unavailable")
    assert response_headers(bypass, 90, False, False) == [
        (b"cache-status", b"predcache; fwd=bypass; detail=backend-unavailable"),
        (b"cache-control", b"no-store"),
    ]
    assert response_headers(bypass, 90, False, True)[0] == (
        b"cache-status",
        b"predcache; fwd=request",
    )
