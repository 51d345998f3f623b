"""Hits answered by the HTTP protocol itself, before an ASGI cycle starts (the hit lane).

Why: once ``/predict`` skipped the framework, a hit still cost about twice a raw ASGI app's
answer on the same uvicorn (docs/performance.md), and most of that was uvicorn's per-request
ASGI machinery, not predcache: a task per request, an event, the scope and message dicts,
``send`` validating every header with two regular expressions, and two socket writes (head,
then body). A hit needs none of it: by the time the request's last byte is parsed, its answer
is one in-memory (or one SQLite) read away.

So ``predcache serve`` runs uvicorn with :class:`HitLaneProtocol`, uvicorn's httptools
protocol (with the head limits of :mod:`predcache.server.limits`) plus one step: a request
that may be a hit (``GET`` or ``POST /predict``, a small body of declared length, nothing
pipelined before it) is parked at the end of its headers instead of starting an ASGI task.
When its body is complete, :meth:`PredictService.answer_now` looks it up; a hit is written
as one buffer, with the same status, headers (uvicorn's ``date`` and ``server`` included) and
body the ASGI path would send, and counted the same way. Anything else (a miss, a request
never parsed before, a directive that needs a computation, an error, a transport whose writes
are paused) starts the ASGI task exactly as uvicorn would have, so every HTTP behaviour stays
where it is. An app that is not predcache's, or a uvicorn without the hook, runs unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from predcache.server.endpoint import JSON_TYPE, Dispatch, PredictEndpoint, PredictRequest
from predcache.server.errors import PROBLEM_HEADERS, problem
from predcache.server.limits import GuardedHttpToolsProtocol
from predcache.server.service import PARSED_MAX_BYTES

log = logging.getLogger("predcache.server")
#: uvicorn's hook that starts a request's ASGI task (0.30 and later); without it, no lane
HOOKED = hasattr(HttpToolsProtocol, "_start_asgi_task")
_CLOSE = b"connection: close\r\n"


def find_endpoint(app: Any) -> PredictEndpoint | None:
    """predcache's ``/predict`` endpoint under uvicorn's wrappers (proxy headers, logging)."""
    for _ in range(8):
        if isinstance(app, Dispatch):
            return app.predict if isinstance(app.predict, PredictEndpoint) else None
        app = getattr(app, "app", None)
    return None


def _may_park(scope: Mapping[str, Any]) -> bool:
    """A request the lane may answer: ``GET``/``POST /predict`` whose whole body is small and
    declared, so it is complete when the message is (no chunks, no ``Expect``)."""
    method = scope["method"]
    if scope["path"] != "/predict" or (method != "POST" and method != "GET"):
        return False
    length = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return False
            length = int(value)
        elif name == b"transfer-encoding" or name == b"expect":
            return False
    if method == "GET":
        return not length
    return length is not None and length <= PARSED_MAX_BYTES


def _unused_receive() -> Any:
    raise AssertionError("the hit lane has the whole body: nothing is received")


class HitLaneProtocol(GuardedHttpToolsProtocol):
    """uvicorn's httptools protocol, answering hits without an ASGI cycle (module docstring)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._endpoint = find_endpoint(self.app) if HOOKED else None
        self._parked: tuple[Any, Any] | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._parked = None
        # a hit answered inside this same read armed uvicorn's keep-alive timer; a request
        # pipelined behind it is being read now, so that timer must not close the connection
        keep_alive = self.timeout_keep_alive_task
        if keep_alive is not None:
            keep_alive.cancel()
            self.timeout_keep_alive_task = None

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if (
            self._endpoint is not None
            and app is self.app  # not uvicorn's 503 past the connection limit
            and cycle is self.cycle
            and cycle.more_body  # called at the end of the headers, not for a queued request
            and not self.pipeline
            and _may_park(cycle.scope)
        ):
            self._parked = (cycle, app)
            return
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        parked = self._parked
        if parked is None:
            return
        self._parked = None
        cycle, app = parked
        if cycle is not self.cycle or not self._answer(cycle):
            super()._start_asgi_task(cycle, app)

    def _answer(self, cycle: Any) -> bool:
        """Write the answer to a parked request when it is a hit; False: not answered."""
        endpoint = self._endpoint
        assert endpoint is not None
        if self.flow.write_paused or self.transport.is_closing():
            return False  # the ASGI path waits for the client to read; this one cannot
        scope = cycle.scope
        request = PredictRequest(scope, _unused_receive, endpoint.cap)
        raw = bytes(cycle.body) if scope["method"] == "POST" else scope["query_string"]
        try:
            answer = endpoint.service.answer_now(request, raw)
        except Exception:  # as the endpoint does: logged once, a problem+json 500
            log.exception("internal error on %s /predict", scope["method"])
            body = problem(500, "internal", "internal error; see the server log")
            answer = 500, body, list(PROBLEM_HEADERS)
        if answer is None:
            return False
        status, body, headers = answer
        self._write(cycle, status, body, headers)
        return True

    def _write(
        self, cycle: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """The response as uvicorn's ``send`` frames it, in one write, then uvicorn's own
        end-of-response step (keep-alive timer, next pipelined request)."""
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        for name, value in headers:
            # uvicorn's send refuses a line break in a header; so does the lane
            if b"\n" in value or b"\r" in value:
                log.error("refused a header with a line break on /predict: %r", name)
                body = problem(500, "internal", "internal error; see the server log")
                self._write(cycle, 500, body, list(PROBLEM_HEADERS))
                return
            parts += (name, b": ", value, b"\r\n")
        if status != 304:
            if status < 400:
                parts += (JSON_TYPE[0], b": ", JSON_TYPE[1], b"\r\n")
            parts += (b"content-length: %d\r\n" % len(body),)
        if not cycle.keep_alive:
            parts.append(_CLOSE)
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))
        cycle.response_started = cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()
