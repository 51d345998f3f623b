"""What ``/docs`` shows for ``/predict``.

The route reads its body by hand (capped, no model parsing on the hot path), so FastAPI cannot
infer the schema; it is written out here once instead.
"""

from __future__ import annotations

from typing import Any

_EXAMPLE_OUT = {
    "product_id": "ETH/EUR",
    "predicted_price": 2301.57,
    "timestamp": "2026-11-28 14:55:03",
    "timestamp_sec": 1795877703,
    "horizon_s": 300,
    "as_of": "2026-11-28T14:55:00Z",
    "model_version": "3f9c2a1b7d4e",
    "cache": "hit",
    "age_s": 12.4,
}
_ERROR = {
    "description": "A JSON error naming the problem.",
    "content": {
        "application/json": {
            "example": {"error": "bad_pair", "detail": "unknown pair DOGE/EUR: known pairs are ..."}
        }
    },
}
_HEADERS = {
    "Cache-Status": {
        "description": "RFC 9211: `predcache; hit; ttl=41`, `predcache; fwd=miss; stored`, "
        "`predcache; fwd=request; stored` (Cache-Control: no-cache) or `predcache; fwd=bypass`.",
        "schema": {"type": "string"},
    },
    "Age": {
        "description": "RFC 9111: seconds since the prediction was computed (hits only).",
        "schema": {"type": "integer"},
    },
}
_CACHE_CONTROL = {
    "name": "Cache-Control",
    "in": "header",
    "required": False,
    "description": "`max-age=N` accepts only a prediction younger than N s; `no-cache` recomputes.",
    "schema": {"type": "string"},
}

PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The prediction, with the seed's fields first.",
        "content": {"application/json": {"example": _EXAMPLE_OUT}},
        "headers": _HEADERS,
    },
    400: _ERROR,
    413: _ERROR,
    422: _ERROR,
    503: _ERROR,
}

POST_EXTRA: dict[str, Any] = {
    "parameters": [_CACHE_CONTROL],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "product_id": {"type": "string", "example": "ETH/EUR"},
                        "pair": {"type": "string", "description": "Same as product_id."},
                        "horizon": {
                            "oneOf": [{"type": "string"}, {"type": "integer"}],
                            "default": "5m",
                            "description": "How far ahead: 1m, 5m, 15m, 1h or seconds.",
                        },
                    },
                },
                "example": {"product_id": "ETH/EUR", "horizon": "5m"},
            }
        },
    },
}

GET_EXTRA: dict[str, Any] = {
    "parameters": [
        {"name": "pair", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "horizon", "in": "query", "required": False, "schema": {"type": "string"}},
        _CACHE_CONTROL,
    ]
}
