"""The two baselines of ``benchmarks/throughput.py``, served under the same uvicorn settings as
``predcache serve`` (one worker, httptools + uvloop, access log off, log level warning):

- ``raw``: a raw ASGI app that answers every request with a constant JSON body and the two
  headers any JSON answer needs: the floor of what this uvicorn can do per request;
- ``fastapi``: a no-op FastAPI endpoint (``GET`` and ``POST /predict``) returning the same body.

Run as ``python benchmarks/floor_apps.py raw|fastapi PORT``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

BODY = (
    b'{"product_id":"ETH/EUR","predicted_price":2236.17,"timestamp":"2026-11-29 08:00:00",'
    b'"timestamp_sec":1795939200,"horizon_s":300,"as_of":"2026-11-29T08:00:00Z",'
    b'"model_version":"3f9c2a1b7d4e","cache":"hit","age_s":1.234}'
)
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
Message = MutableMapping[str, Any]


async def raw(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """The floor: read the body, send the constant answer."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def fastapi_app() -> Any:
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.get("/predict")
    async def get_noop() -> Response:
        return Response(BODY, media_type="application/json")

    @app.post("/predict")
    async def post_noop() -> Response:
        return Response(BODY, media_type="application/json")

    return app


def main() -> None:
    import uvicorn

    kind, port = sys.argv[1], int(sys.argv[2])
    app = raw if kind == "raw" else fastapi_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
