"""The wire format of ``/predict``: request parsing, caching headers, the response object.

Kept apart from the app so the rules can be read (and tested) in one place, and plain Python
(orjson only) because it runs on every request:

- a request names a pair as ``product_id`` (the seed's field) or ``pair``, and an optional
  ``horizon`` (``"5m"`` or seconds; default 5m); unknown fields are ignored, as the seed's
  clients may send more;
- request directives are parsed in :mod:`predcache.server.directives`;
- ``Cache-Status`` (RFC 9211) says what the cache did, ``Age`` (RFC 9111) how old an answer
  from the store is, ``Cache-Control`` how long it stays fresh, ``ETag`` which entry it is.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from predcache.config import DEFAULT_HORIZON_S
from predcache.durations import parse_horizon
from predcache.errors import BadHorizonError, BadPairError
from predcache.pairs import parse_pair
from predcache.predictor import BYPASS, COLLAPSED, HIT, MISS, Served
from predcache.server.errors import BadBodyError
from predcache.timestamps import iso_utc

Headers = list[tuple[bytes, bytes]]
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
        raise BadHorizonError(f"bad horizon: expected e.g. 5m or 300, got {_kind(horizon)}")
    return parse_pair(pair), parse_horizon(horizon)


def _kind(value: object) -> str:
    """A JSON type name for error messages (never the value: it may be large)."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return names.get(type(value), "object")


def etag_matches(if_none_match: bytes, tag: bytes) -> bool:
    """``If-None-Match`` by weak comparison (RFC 9110 section 13.1.2): ``*`` or a listed tag."""
    if if_none_match.strip() == b"*":
        return True
    opaque = tag.removeprefix(b"W/")
    return any(t.strip().removeprefix(b"W/") == opaque for t in if_none_match.split(b","))


def response_headers(served: Served, ttl_s: float, forced: bool, client_no_store: bool) -> Headers:
    """The caching headers of one answer; the one place that maps an outcome to headers.

    - ``Cache-Status`` (RFC 9211): ``hit; ttl=<remaining>``; ``fwd=miss; collapsed`` for a
      request that waited for another's computation (``detail=coalesced`` when another process
      computed it); a stale answer is ``hit`` with a negative ``ttl`` and ``detail=max-stale``
      or ``detail=stale-while-revalidate``, or ``fwd=stale; detail=stale-if-error`` when the
      model failed;
      ``fwd=miss; stored`` or, when the client forced it, ``fwd=request; stored``; a bypass is
      ``fwd=bypass`` (server without cache, backend down) or ``fwd=request`` (``no-store``).
    - ``Cache-Control``: ``max-age=<remaining freshness>`` (0 when stale), ``no-store`` on a
      bypass; ``Age`` on answers from the store; ``ETag`` on everything that was stored.
    """
    cache = served.cache
    if cache == BYPASS:
        if client_no_store:
            status = b"predcache; fwd=request"
        elif served.detail:
            status = b"predcache; fwd=bypass; detail=" + served.detail.encode()
        else:
            status = b"predcache; fwd=bypass"
        return [(b"cache-status", status), (b"cache-control", b"no-store")]
    left = int(ttl_s - served.age_s)
    if cache == MISS:
        status = _FORCED if forced else _MISSED
        return [
            (b"cache-status", status),
            (b"cache-control", b"max-age=%d" % max(0, left)),
            (b"etag", etag(served)),
        ]
    if cache in (HIT, COLLAPSED):
        status = b"predcache; hit; ttl=%d" % left if cache == HIT else _COLLAPSED
        if served.detail:
            status += b"; detail=" + served.detail.encode()
        control = b"max-age=%d" % max(0, left)
    else:  # STALE
        if served.detail == "stale-if-error":
            status = b"predcache; fwd=stale; ttl=%d; detail=stale-if-error" % left
        else:
            status = b"predcache; hit; ttl=%d; detail=%s" % (left, (served.detail or "").encode())
        control = b"max-age=0"
    return [
        (b"cache-status", status),
        (b"cache-control", control),
        (b"age", b"%d" % served.age_s),
        (b"etag", etag(served)),
    ]


def head_miss_headers(forced: bool) -> Headers:
    """``HEAD /predict`` without an acceptable entry: what a miss would say, nothing computed."""
    return [
        (b"cache-status", b"predcache; fwd=request" if forced else b"predcache; fwd=miss"),
        (b"cache-control", b"no-store"),
    ]


_MISSED = b"predcache; fwd=miss; stored"
#: a request that waited for another's computation (RFC 9211's ``collapsed``)
_COLLAPSED = b"predcache; fwd=miss; collapsed"
_FORCED = b"predcache; fwd=request; stored"


#: per stored entry, the parts of an answer that do not change between requests
_RENDERED: dict[tuple[str, float, float], bytes] = {}
_RENDERED_MAX = 4096


def _rendered(served: Served) -> bytes:
    """The JSON body up to ``"cache":"`` of the entry behind ``served``, built once.

    Every hit on an entry formats the same fields and the same two instants; only ``cache``
    and ``age_s`` differ per answer. Keyed by the entry's key, creation time and
    price, so it is right for any entry; cleared when full, so a long-running server does not
    grow. Touched on the event loop only.
    """
    e = served.entry
    created_at = float(e["created_at"])
    memo_key = (served.key, created_at, float(e["predicted_price"]))
    prefix = _RENDERED.get(memo_key)
    if prefix is None:
        fields: dict[str, Any] = {
            "product_id": e["pair"],
            "predicted_price": e["predicted_price"],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created_at)),
            "timestamp_sec": int(created_at),
            "horizon_s": e["horizon_s"],
            "as_of": iso_utc(float(e["as_of"])),
            "model_version": e["model_version"],
        }
        prefix = orjson.dumps(fields)[:-1] + b',"cache":"'
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        _RENDERED[memo_key] = prefix
    return prefix


def etag(served: Served) -> bytes:
    """A weak validator (RFC 9110 section 8.8.3) for the entry behind an answer: its key and
    creation instant. Weak because ``age_s`` in the body changes while the prediction does not.
    Any entry has these (a Python API value has no prediction fields)."""
    return b'W/"%s@%d"' % (served.key.encode(), int(float(served.entry["created_at"]) * 1000))


def response_json(served: Served) -> bytes:
    """The seed's fields (``product_id``, ``predicted_price``, ``timestamp``, ``timestamp_sec``),
    then ``horizon_s``, ``as_of``, ``model_version``, and how it was served (``cache``,
    ``age_s``): the bytes ``orjson.dumps`` gives for that object (a test compares them)."""
    prefix = _rendered(served)
    return b'%s%s","age_s":%s}' % (
        prefix,
        served.cache.encode(),
        orjson.dumps(round(served.age_s, 3)),
    )
