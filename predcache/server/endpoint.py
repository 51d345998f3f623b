"""``/predict`` as a bare ASGI app: the request read and the response sent without Starlette.

Why bare: a hit is a ~10 us store read, and over HTTP the route's own Python work is most of
what separates it from a no-op endpoint. Starlette's ``Request`` (header and query parsing on
demand) and ``Response`` (header list rebuilt per response) cost ~5 us a request on a cold CPU
cache; here the two headers the route needs are picked from the ASGI scope in one pass and the
response goes out as two prebuilt ASGI messages. Everything else (routing, middleware, the
405 for other methods, the OpenAPI docs) is still FastAPI's: this object is the endpoint of a
plain Starlette ``Route``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from predcache.server.errors import BodyTooLargeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
JSON_TYPE = (b"content-type", b"application/json")


class ClientGoneError(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


class Answerer(Protocol):
    """What the endpoint needs from the service: one answer per parsed request."""

    async def answer(self, request: PredictRequest) -> tuple[int, bytes, Headers]: ...


class PredictRequest:
    """The parts of one ``/predict`` request the service reads, parsed only when asked."""

    __slots__ = ("_cap", "_declared", "_query", "_receive", "cache_control", "method")

    def __init__(self, scope: Scope, receive: Receive, cap: int) -> None:
        self.method: str = scope["method"]
        self.cache_control: str | None = None
        self._declared: bytes | None = None
        for name, value in scope["headers"]:  # ASGI header names are lower case
            if name == b"cache-control":
                self.cache_control = value.decode("latin-1")
            elif name == b"content-length":
                self._declared = value
        self._query: bytes = scope["query_string"]
        self._receive = receive
        self._cap = cap

    def query(self) -> dict[str, str]:
        """The query string's fields (the last value of a repeated name, as Starlette does)."""
        return dict(parse_qsl(self._query.decode("latin-1"), keep_blank_values=True))

    async def body(self) -> bytes:
        """The body, refused with 413 as soon as it passes the cap (declared or streamed)."""
        cap = self._cap
        declared = self._declared
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise BodyTooLargeError(f"body too large: {declared.decode()} bytes (limit {cap})")
        body = b""
        while True:
            message = await self._receive()
            if message["type"] != "http.request":
                raise ClientGoneError
            chunk: bytes = message.get("body", b"")
            body += chunk
            if len(body) > cap:
                raise BodyTooLargeError(f"body too large: over {cap} bytes")
            if not message.get("more_body", False):
                return body


class PredictEndpoint:
    """The ASGI app behind ``GET|POST /predict``."""

    def __init__(self, service: Answerer, max_body_bytes: int) -> None:
        self.service = service
        self.cap = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body, headers = await self.service.answer(
                PredictRequest(scope, receive, self.cap)
            )
        except ClientGoneError:
            return  # uvicorn closes the connection; nothing to send
        headers.append(JSON_TYPE)
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
