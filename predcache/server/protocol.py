"""The wire format of ``/predict``: request parsing, caching headers, the response object.

Kept apart from the app so the rules can be read (and tested) in one place, and plain Python
(orjson only) because it runs on every request:

- a request names a pair as ``product_id`` (the seed's field) or ``pair``, and an optional
  ``horizon`` (``"5m"`` or seconds; default 5m); unknown fields are ignored, as the seed's
  clients may send more;
- ``Cache-Control: max-age=N`` tightens freshness for the request, ``no-cache`` forces a
  recompute (RFC 9111 section 5.2.1);
- ``Cache-Status`` (RFC 9211) says what the cache did, ``Age`` (RFC 9111) how old a hit is.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import orjson

from predcache.config import DEFAULT_HORIZON_S
from predcache.durations import parse_horizon
from predcache.errors import BadDurationError, BadPairError
from predcache.pairs import parse_pair
from predcache.predictor import BYPASS, HIT, Served
from predcache.server.errors import BadBodyError
from predcache.timestamps import iso_utc

CACHE_NAME = "predcache"
EXAMPLE = '{"product_id": "ETH/EUR", "horizon": "5m"}'


def parse_json_body(body: bytes) -> tuple[str, int]:
    """(pair, horizon_s) from a POST body, or a :class:`BadInputError` naming the problem."""
    if not body.strip():
        raise BadBodyError(f"empty body: send JSON like {EXAMPLE}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadBodyError(f"body is not valid JSON: send JSON like {EXAMPLE}") from None
    if not isinstance(data, dict):
        raise BadBodyError(f"body must be a JSON object like {EXAMPLE}")
    return parse_fields(data.get("product_id", data.get("pair")), data.get("horizon"))


def parse_fields(pair: object, horizon: object) -> tuple[str, int]:
    """Validate the two request fields, whatever their JSON type turned out to be."""
    if pair is None:
        raise BadPairError(f"missing product_id (or pair): send JSON like {EXAMPLE}")
    if not isinstance(pair, str):
        raise BadPairError(f"bad product_id: expected a string like ETH/EUR, got {_kind(pair)}")
    if horizon is None:
        return parse_pair(pair), DEFAULT_HORIZON_S
    if isinstance(horizon, bool) or not isinstance(horizon, str | int | float):
        raise BadDurationError(f"bad horizon: expected e.g. 5m or 300, got {_kind(horizon)}")
    return parse_pair(pair), parse_horizon(horizon)


def _kind(value: object) -> str:
    """A JSON type name for error messages (never the value: it may be large)."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return names.get(type(value), "object")


def parse_cache_control(header: str | None) -> tuple[float | None, bool]:
    """(max_age_s, no_cache) from a request's ``Cache-Control``; invalid directives are ignored.

    ``max-age=0`` also forces a recompute: no entry is younger than zero seconds.
    """
    if not header:
        return None, False
    max_age: float | None = None
    no_cache = False
    for part in header.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "no-cache":
            no_cache = True
        elif name == "max-age" and value.strip().strip('"').isdigit():
            max_age = float(value.strip().strip('"'))
    return max_age, no_cache


def cache_headers(served: Served, limit_s: float, refreshed: bool) -> list[tuple[bytes, bytes]]:
    """``Cache-Status`` (RFC 9211) and, on a hit, ``Age`` (RFC 9111), as ASGI header pairs.

    ``limit_s`` is the freshness bound this request was served under (TTL or its max-age).
    """
    if served.cache == HIT:
        status = f"{CACHE_NAME}; hit; ttl={max(0, int(limit_s - served.age_s))}"
        if served.detail:
            status += f"; detail={served.detail}"
        return [(b"cache-status", status.encode()), (b"age", b"%d" % int(served.age_s))]
    if served.cache == BYPASS:
        status = f"{CACHE_NAME}; fwd=bypass"
        if served.detail:
            status += f"; detail={served.detail}"
        return [(b"cache-status", status.encode())]
    fwd = "request" if refreshed else "miss"
    return [(b"cache-status", f"{CACHE_NAME}; fwd={fwd}; stored".encode())]


@functools.lru_cache(maxsize=4096)
def _stamps(created_at: float, as_of: float) -> tuple[str, int, str]:
    """An entry's seed-style ``timestamp``, ``timestamp_sec`` and ISO ``as_of``.

    Memoized: every hit on an entry formats the same two instants, and formatting through
    ``time.strftime``/``datetime`` was a fifth of the route's own work. Keyed by value, so it
    is right for any entry; bounded, so a long-running server does not grow.
    """
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created_at))
    return text, int(created_at), iso_utc(as_of)


def response_json(served: Served) -> bytes:
    """The seed's fields (``product_id``, ``predicted_price``, ``timestamp``, ``timestamp_sec``)
    plus how the prediction was served."""
    e = served.entry
    timestamp, timestamp_sec, as_of = _stamps(float(e["created_at"]), float(e["as_of"]))
    body: dict[str, Any] = {
        "product_id": e["pair"],
        "predicted_price": e["predicted_price"],
        "timestamp": timestamp,
        "timestamp_sec": timestamp_sec,
        "horizon_s": e["horizon_s"],
        "as_of": as_of,
        "model_version": e["model_version"],
        "cache": served.cache,
        "age_s": round(served.age_s, 3),
    }
    return orjson.dumps(body)
