"""The seed's prediction API, cached with predcache's Python API.

Run it from the repository root::

    uvicorn examples.fastapi_app:app --port 8000
    curl -si -X POST localhost:8000/predict -H 'content-type: application/json' \\
        -d '{"product_id": "ETH/EUR"}'

The first request computes (``Cache-Status: predcache; fwd=miss; stored``); an identical one
within the TTL is a hit (``Cache-Status: predcache; hit; ttl=89``, ``Age: 1``). The model stands
in for a slow one, as the seed's does: it sleeps ``EXAMPLE_MODEL_DELAY_S`` seconds (simulated,
default 1) and predicts from the last ten minutes of the synthetic market.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import FastAPI, Response
from pydantic import BaseModel

from predcache import cached, market
from predcache.errors import BadInputError
from predcache.headers import set_cache_headers
from predcache.pairs import parse_pair
from predcache.server.errors import problem_for

#: simulated model time, as in the seed (1 s); set it to 0 in tests
MODEL_DELAY_S = float(os.environ.get("EXAMPLE_MODEL_DELAY_S", "1"))

app = FastAPI(title="predcache example: the seed's API with @cached")


class PredictRequest(BaseModel):
    product_id: str


@cached(ttl="90s", backend=os.environ.get("PREDCACHE_BACKEND", "disk"))
def predict_price(product_id: str) -> dict[str, Any]:
    """The 'model': the mean of the last ten one-minute prices, after a simulated delay."""
    time.sleep(MODEL_DELAY_S)
    now = time.time()
    prices = market.history(product_id, now, 10)
    return {
        "product_id": product_id,
        "predicted_price": round(sum(prices) / len(prices), 6),
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)),
        "timestamp_sec": int(now),
    }


@app.post("/predict", response_model=None)
def predict(request: PredictRequest, response: Response) -> dict[str, Any] | Response:
    try:
        pair = parse_pair(request.product_id)
    except BadInputError as exc:  # RFC 9457 problem details, as predcache serve answers
        status, body = problem_for(exc)
        return Response(body, status, media_type="application/problem+json")
    result = predict_price.lookup(pair)
    set_cache_headers(response, result)
    value: dict[str, Any] = result.value
    return value
