"""``/predict`` as a bare ASGI app, and the ASGI app that routes to it before the framework.

Why bare: a hit is one store read, and over HTTP the framework's machinery (FastAPI's call,
Starlette's middleware stack and router, ``Request``/``Response`` objects) cost more than the
route's own work (check b of ``benchmarks/perf.py``; docs/performance.md "What made the
difference" has the breakdown). :class:`Dispatch` sends ``/predict`` (every method) straight to
:class:`PredictEndpoint` and everything else to the FastAPI app, so the framework is never on
the hot path; the endpoint keeps what the stack gave (an unexpected exception is logged once
and answered with a problem+json 500; the body cap; a client that went away).

The headers the route reads are picked from the ASGI scope in one pass; ``Cache-Control`` and
``Pragma`` are parsed only when present.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from predcache.server.directives import NO_DIRECTIVES, Directives, parse_directives
from predcache.server.errors import PROBLEM_HEADERS, BodyTooLargeError, problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
JSON_TYPE = (b"content-type", b"application/json")
#: methods ``/predict`` answers (HEAD never computes; DELETE purges when allowed)
PREDICT_METHODS = ("GET", "HEAD", "POST", "DELETE")
_ALLOW = (b"allow", ", ".join(PREDICT_METHODS).encode())
log = logging.getLogger("predcache.server")


class ClientGoneError(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


class Answerer(Protocol):
    """What the endpoint needs from the service: one answer per parsed request."""

    async def answer(self, request: PredictRequest) -> tuple[int, bytes, Headers]: ...

    def answer_now(self, request: PredictRequest, raw: bytes) -> tuple[int, bytes, Headers] | None:
        """A hit answered in place, or ``None`` (for :mod:`predcache.server.lane`)."""

    async def purge(self, request: PredictRequest) -> tuple[int, bytes, Headers]: ...


class PredictRequest:
    """The parts of one ``/predict`` request the service reads, parsed only when asked."""

    __slots__ = (
        "_cap",
        "_declared",
        "_pragma",
        "_receive",
        "cache_control",
        "if_none_match",
        "method",
        "query_string",
    )

    def __init__(self, scope: Scope, receive: Receive, cap: int) -> None:
        self.method: str = scope["method"]
        self.cache_control: list[bytes] | None = None
        self._pragma: list[bytes] | None = None
        self.if_none_match: bytes | None = None
        self._declared: bytes | None = None
        for name, value in scope["headers"]:  # ASGI header names are lower case
            if name == b"cache-control":
                if self.cache_control is None:
                    self.cache_control = [value]
                else:
                    self.cache_control.append(value)
            elif name == b"content-length":
                self._declared = value
            elif name == b"if-none-match":  # several lines form one list (RFC 9110 5.3)
                self.if_none_match = (
                    value if self.if_none_match is None else self.if_none_match + b"," + value
                )
            elif name == b"pragma":
                self._pragma = [value] if self._pragma is None else [*self._pragma, value]
        self.query_string: bytes = scope["query_string"]
        self._receive = receive
        self._cap = cap

    def directives(self) -> Directives:
        """The request's cache directives (shared empty ones when it sent none)."""
        if self.cache_control is None and self._pragma is None:
            return NO_DIRECTIVES
        return parse_directives(self.cache_control or [], self._pragma or [])

    def query(self) -> dict[str, str]:
        """The query string's fields (the last value of a repeated name, as Starlette does)."""
        return dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))

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
    """The ASGI app behind ``/predict``."""

    def __init__(self, service: Answerer, max_body_bytes: int) -> None:
        self.service = service
        self.cap = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        try:
            request = PredictRequest(scope, receive, self.cap)
            if method == "GET" or method == "POST" or method == "HEAD":
                status, body, headers = await self.service.answer(request)
            elif method == "DELETE":
                status, body, headers = await self.service.purge(request)
            else:
                detail = f"{method} is not allowed on /predict (allowed: GET, HEAD, POST, DELETE)"
                status, body = 405, problem(405, "method_not_allowed", detail)
                headers = [*PROBLEM_HEADERS, _ALLOW]
        except ClientGoneError:
            return  # uvicorn closes the connection; nothing to send
        except Exception:
            log.exception("internal error on %s /predict", method)
            status, body = 500, problem(500, "internal", "internal error; see the server log")
            headers = list(PROBLEM_HEADERS)
        if status != 304:
            if status < 400:
                headers.append(JSON_TYPE)
            headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Dispatch:
    """The served ASGI app: ``/predict`` to the bare endpoint, the rest to FastAPI.

    ``HEAD`` on any other route is the framework's ``GET`` without the body (uvicorn sends no
    body for a HEAD request, whatever the app produces), so every GET route answers HEAD.
    """

    def __init__(self, predict: ASGIApp, app: ASGIApp) -> None:
        self.predict = predict
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["path"] == "/predict":
                await self.predict(scope, receive, send)
                return
            if scope["method"] == "HEAD":
                scope = dict(scope)
                scope["method"] = "GET"
        await self.app(scope, receive, send)
