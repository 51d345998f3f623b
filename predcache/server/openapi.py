"""The OpenAPI document: FastAPI's for its own routes, plus ``/predict`` from pydantic models.

``/predict`` is answered before the framework (:class:`~predcache.server.endpoint.Dispatch`),
so FastAPI never sees it; its operations are written here once, from the same models the test
suite validates real answers against (``tests/test_server_openapi.py``). The route itself never
builds these models: they describe the wire format, they are not on the hot path.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

PROBLEM_CONTENT = "application/problem+json"
REF = "#/components/schemas/{model}"


class Prediction(BaseModel):
    """A prediction: the seed's fields first, then how it was served."""

    product_id: str = Field(examples=["ETH/EUR"])
    predicted_price: float = Field(examples=[2301.57])
    timestamp: str = Field(description="UTC creation time, `YYYY-MM-DD HH:MM:SS` (the seed's).")
    timestamp_sec: int = Field(description="Creation time, Unix seconds.")
    horizon_s: int = Field(examples=[300])
    as_of: str = Field(description="Market time the prediction was made from (ISO 8601, UTC).")
    model_version: str
    cache: Literal["hit", "miss", "bypass", "stale", "collapsed"]
    age_s: float = Field(description="Seconds since the prediction was computed.")


class PredictBody(BaseModel):
    """The seed's request; ``pair`` is accepted for ``product_id``; other fields are ignored."""

    product_id: str | None = Field(default=None, examples=["ETH/EUR"])
    pair: str | None = Field(default=None, description="Same as product_id.")
    horizon: str | int = Field(default="5m", description="1m, 5m, 15m, 1h or seconds.")


class Problem(BaseModel):
    """RFC 9457 problem details, with predcache's stable ``code``."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(examples=["Unprocessable Content"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["unknown pair DOGE/EUR: known pairs are ..."])
    code: str = Field(examples=["bad_pair"])


class Health(BaseModel):
    """Liveness, and the settings this process serves with."""

    status: Literal["ok"]
    cache: bool
    backend: str | None
    ttl_s: float
    simulated_model_delay_s: float
    refresh_ahead: bool
    #: coalesce | none | stale-while-revalidate (predcache.stampede)
    stampede: str
    stale_grace_s: float


class Ready(BaseModel):
    """Readiness: this process can answer from its backend."""

    status: Literal["ready"]
    backend: str | None


class Purged(BaseModel):
    """What ``DELETE /predict`` removed."""

    purged: int
    pair: str
    horizon_s: int | None


SCHEMAS: tuple[type[BaseModel], ...] = (Prediction, PredictBody, Problem, Purged)
_STATUS_HEADERS = {
    "Cache-Status": {
        "description": "RFC 9211: `predcache; hit; ttl=41`, `predcache; fwd=miss; stored`, "
        "`predcache; fwd=request; stored` (no-cache, max-age=0), `predcache; fwd=request` "
        "(no-store), `predcache; fwd=bypass`, `predcache; hit; ttl=-3; detail=max-stale`, "
        "`predcache; fwd=stale; ttl=-30; detail=stale-if-error`.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": "`max-age=<remaining freshness>`; `max-age=0` when stale; `no-store` "
        "on a bypass.",
        "schema": {"type": "string"},
    },
    "Age": {
        "description": "RFC 9111: seconds since the prediction was computed (answers from the "
        "store).",
        "schema": {"type": "integer"},
    },
    "ETag": {
        "description": "Weak validator of the entry (its key and creation time).",
        "schema": {"type": "string"},
    },
}
_REQUEST_HEADERS: list[dict[str, Any]] = [
    {
        "name": "Cache-Control",
        "in": "header",
        "required": False,
        "description": "RFC 9111 request directives: no-cache, no-store, max-age=N, "
        "max-stale[=N], min-fresh=N, only-if-cached. Several lines merge; unknown or malformed "
        "directives are ignored.",
        "schema": {"type": "string"},
    },
    {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "An ETag from an earlier answer: 304 without a body while it matches.",
        "schema": {"type": "string"},
    },
]
_QUERY: list[dict[str, Any]] = [
    {
        "name": "pair",
        "in": "query",
        "required": False,
        "description": "The pair, e.g. ETH/EUR (pair or product_id is required).",
        "schema": {"type": "string"},
    },
    {
        "name": "product_id",
        "in": "query",
        "required": False,
        "description": "Same as pair (the seed's name).",
        "schema": {"type": "string"},
    },
    {
        "name": "horizon",
        "in": "query",
        "required": False,
        "description": "1m, 5m, 15m, 1h or seconds (default 5m).",
        "schema": {"type": "string", "default": "5m"},
    },
]


def _json(model: str) -> dict[str, Any]:
    return {"schema": {"$ref": REF.format(model=model)}}


def problem_response(description: str) -> dict[str, Any]:
    """A documented problem+json answer."""
    return {"description": description, "content": {PROBLEM_CONTENT: _json("Problem")}}


def _predict_responses(*, head: bool = False) -> dict[str, Any]:
    ok: dict[str, Any] = {
        "description": "The prediction (HEAD: its headers only; without an acceptable entry, "
        "the headers a miss would carry, nothing computed).",
        "headers": _STATUS_HEADERS,
    }
    if not head:
        ok["content"] = {"application/json": _json("Prediction")}
    responses: dict[str, Any] = {
        "200": ok,
        "304": {"description": "If-None-Match matched: no body.", "headers": _STATUS_HEADERS},
        "422": problem_response("A bad pair or horizon."),
        "503": problem_response("The model failed and no stale entry could stand in."),
        "504": problem_response("only-if-cached and no acceptable entry."),
    }
    if head:
        del responses["503"]
    return responses


def predict_path() -> dict[str, Any]:
    """The path item of ``/predict``."""
    get_like = [*_QUERY, *_REQUEST_HEADERS]
    post_errors = {
        "400": problem_response("The body is empty or not JSON."),
        "413": problem_response("The body is larger than the cap."),
    }
    return {
        "get": {
            "operationId": "predict_get",
            "summary": "Predict a pair's price (query string).",
            "parameters": get_like,
            "responses": _predict_responses(),
        },
        "head": {
            "operationId": "predict_head",
            "summary": "The headers of GET /predict, from the cache only (never calls the model).",
            "parameters": get_like,
            "responses": _predict_responses(head=True),
        },
        "post": {
            "operationId": "predict_post",
            "summary": "Predict a pair's price (the seed's request).",
            "parameters": _REQUEST_HEADERS,
            "requestBody": {
                "required": True,
                "content": {"application/json": _json("PredictBody")},
            },
            "responses": {**_predict_responses(), **post_errors},
        },
        "delete": {
            "operationId": "predict_purge",
            "summary": "Remove a pair's stored predictions (one horizon, or all); needs "
            "`serve --allow-purge`.",
            "parameters": _QUERY,
            "responses": {
                "200": {
                    "description": "How many went.",
                    "content": {"application/json": _json("Purged")},
                },
                "403": problem_response("The server was started without --allow-purge."),
                "422": problem_response("A bad pair or horizon."),
            },
        },
    }


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document plus ``/predict`` and the models it refers to."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in SCHEMAS:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    document["paths"] = {"/predict": predict_path(), **document.get("paths", {})}
    return document
