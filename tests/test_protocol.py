"""The wire format of ``/predict``, value by value: Cache-Control parsing, body validation and
its exact messages, Cache-Status and Age, the response body (RFC 9111 / RFC 9211).

Pure functions of :mod:`predcache.server.protocol` and :mod:`predcache.server.directives`,
called directly with hand-made inputs; the same figures through real uvicorn on a fake clock
are in ``tests/test_pins.py``, every directive in ``tests/test_directives.py``.
"""

from __future__ import annotations

import json

import pytest

from predcache.entry import Entry
from predcache.predictor import Served

T0 = 1_800_000_000.0
PAIR, HORIZON = "ETH/EUR", 300


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (None, (None, False)),
        ("", (None, False)),
        ("max-age=7", (7.0, False)),
        ("MAX-AGE=7", (7.0, False)),
        (' max-age="7" ', (7.0, False)),
        ("no-cache", (None, True)),
        ("No-Cache, max-age=0", (0.0, True)),
        ("private, max-age=60, no-store", (60.0, False)),
        ("max-age=abc", (None, False)),  # invalid directives are ignored
        ("max-age=-1", (None, False)),
        ("max-age=1.5", (None, False)),
        ("max-age", (None, False)),
        ("max-age=5, max-age=9", (5.0, False)),  # the tightest wins (RFC 9111 4.2.1)
    ],
)
def test_parse_cache_control(header: str | None, parsed: tuple[float | None, bool]) -> None:
    from predcache.server.directives import parse_directives

    d = parse_directives([] if header is None else [header.encode()], [])
    assert (d.max_age, d.no_cache) == parsed


EXAMPLE = '{"product_id": "ETH/EUR", "horizon": "5m"}'


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"", "BadBodyError", f"empty body: send JSON like {EXAMPLE}"),
        (b"  \n", "BadBodyError", f"empty body: send JSON like {EXAMPLE}"),
        (b"{x", "BadBodyError", f"body is not valid JSON: send JSON like {EXAMPLE}"),
        (b"[1]", "BadBodyError", f"body must be a JSON object like {EXAMPLE}"),
        (b"{}", "BadPairError", f"missing product_id (or pair): send JSON like {EXAMPLE}"),
        (b'{"product_id": 5}', "BadPairError",
         "bad product_id: expected a string like ETH/EUR, got number"),
        (b'{"product_id": 1.5}', "BadPairError",
         "bad product_id: expected a string like ETH/EUR, got number"),
        (b'{"pair": ["ETH/EUR"]}', "BadPairError",
         "bad product_id: expected a string like ETH/EUR, got array"),
        (b'{"pair": "ETH/EUR", "horizon": true}', "BadHorizonError",
         "bad horizon: expected e.g. 5m or 300, got boolean"),
        (b'{"pair": "ETH/EUR", "horizon": {"m": 5}}', "BadHorizonError",
         "bad horizon: expected e.g. 5m or 300, got object"),
        (b'{"pair": "ETH/EUR", "horizon": [5]}', "BadHorizonError",
         "bad horizon: expected e.g. 5m or 300, got array"),
        (b'{"pair": "ETH/EUR", "horizon": "5 parsecs"}', "BadHorizonError",
         "bad horizon: '5 parsecs' (expected e.g. 90, 90s, 1m30s, 2 min, 1h, 250ms)"),
    ],
)  # fmt: skip
def test_bad_bodies(body: bytes, error: str, message: str) -> None:
    from predcache.server.protocol import parse_json_body

    with pytest.raises(Exception) as info:
        parse_json_body(body)
    assert (type(info.value).__name__, str(info.value)) == (error, message)


def test_good_bodies() -> None:
    from predcache.server.protocol import parse_fields, parse_json_body

    assert parse_json_body(b'{"product_id": "eth/eur"}') == ("ETH/EUR", 300)  # default 5m
    assert parse_json_body(b'{"pair": "BTC/USD", "horizon": 60}') == ("BTC/USD", 60)
    assert parse_json_body(b'{"product_id": "SOL/USD", "pair": "X", "horizon": "15m"}') == (
        "SOL/USD",
        900,
    )
    assert parse_json_body(b'{"pair": "ETH/EUR", "horizon": 120.0, "extra": 1}') == ("ETH/EUR", 120)
    assert parse_fields("ETH/EUR", None) == ("ETH/EUR", 300)


def _served(cache: str, age: float, detail: str | None = None) -> Served:
    entry: Entry = {
        "pair": PAIR, "horizon_s": HORIZON, "predicted_price": 2287.25, "as_of": T0 - 60,
        "created_at": T0 + 37.5, "model_version": "abc", "compute_ms": 1.0, "last_price": 2280.0,
    }  # fmt: skip
    return Served(entry, cache, age, 0.5, "v1:abc:ETH/EUR:300", detail=detail)


@pytest.mark.parametrize(
    ("served", "limit", "refreshed", "headers"),
    [
        (("hit", 37.5), 90, False, [("cache-status", "predcache; hit; ttl=52"), ("age", "37")]),
        (("stale", 95.0, "max-stale"), 90, False,
         [("cache-status", "predcache; hit; ttl=-5; detail=max-stale"), ("age", "95")]),
        (("hit", 1.0, "coalesced"), 7, False,
         [("cache-status", "predcache; hit; ttl=6; detail=coalesced"), ("age", "1")]),
        (("miss", 0.0), 90, False, [("cache-status", "predcache; fwd=miss; stored")]),
        (("miss", 0.0), 90, True, [("cache-status", "predcache; fwd=request; stored")]),
        (("bypass", 0.0), 90, False, [("cache-status", "predcache; fwd=bypass")]),
        (("bypass", 0.0, "backend-unavailable"), 90, False,
         [("cache-status", "predcache; fwd=bypass; detail=backend-unavailable")]),
    ],
)  # fmt: skip
def test_cache_headers(
    served: tuple,
    limit: float,
    refreshed: bool,
    headers: list[tuple[str, str]],  # type: ignore[type-arg]
) -> None:
    from predcache.server.protocol import response_headers

    got = response_headers(_served(*served), limit, refreshed, False)
    shown = [(k.decode(), v.decode()) for k, v in got if k in (b"cache-status", b"age")]
    assert shown == headers


def test_response_json() -> None:
    from predcache.server.protocol import response_json

    assert json.loads(response_json(_served("hit", 37.12345))) == {
        "product_id": "ETH/EUR",
        "predicted_price": 2287.25,
        "timestamp": "2027-01-15 08:00:37",
        "timestamp_sec": 1800000037,
        "horizon_s": 300,
        "as_of": "2027-01-15T07:59:00Z",
        "model_version": "abc",
        "cache": "hit",
        "age_s": 37.123,
    }
