"""Hits answered by the HTTP protocol itself, before an ASGI cycle starts (the hit lane).

Why: once ``/predict`` skipped the framework, a hit still cost about twice a raw ASGI app's
answer on the same uvicorn (docs/performance.md), and most of that was uvicorn's per-request
ASGI machinery, not predcache: a request-response cycle object, an event, a task, the scope
and message dicts, ``send`` validating every header with two regular expressions, and two
socket writes (head, then body). A hit needs none of it: by the time the request's last byte
is parsed, its answer is one in-memory (or one SQLite) read away.

So ``predcache serve`` runs uvicorn with :class:`HitLaneProtocol`, uvicorn's httptools
protocol (with the head limits of :mod:`predcache.server.limits`) plus one step: a request
that may be a hit (``GET`` or ``POST /predict``, a small body of declared length) is held at
the end of its headers instead of being handed to uvicorn's ASGI set-up. When its body is
complete, and no earlier request on the connection is still being answered,
:meth:`PredictService.answer_now` looks it up; a hit is written as one buffer, with the same
status, headers (uvicorn's ``date`` and ``server`` included) and body the ASGI path would
send, and counted the same way. Anything else (a miss, a request never parsed before, a
directive that needs a computation, an error, a transport whose writes are paused, the
connection limit reached) is then given to uvicorn exactly as the parser would have given it
(headers, body, end of message), so every HTTP behaviour stays where it is. An app that is
not predcache's runs unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from predcache.server.endpoint import JSON_TYPE, Dispatch, PredictEndpoint, PredictRequest
from predcache.server.errors import PROBLEM_HEADERS, problem
from predcache.server.limits import GuardedHttpToolsProtocol
from predcache.server.service import PARSED_MAX_BYTES

log = logging.getLogger("predcache.server")
_CLOSE = b"connection: close\r\n"
_PATH = b"/predict"


def find_endpoint(app: Any) -> PredictEndpoint | None:
    """predcache's ``/predict`` endpoint under uvicorn's wrappers (proxy headers, logging)."""
    for _ in range(8):
        if isinstance(app, Dispatch):
            return app.predict if isinstance(app.predict, PredictEndpoint) else None
        app = getattr(app, "app", None)
    return None


def may_hold(method: bytes, url: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
    """A request the lane may answer: ``GET``/``POST /predict`` whose whole body is small and
    declared, so it is complete when the message is (no chunks, no ``Expect``)."""
    if method != b"POST" and method != b"GET":
        return False
    path, _, _ = url.partition(b"?")
    if path != _PATH:
        return False
    length = None
    for name, value in headers:  # names are lower case (uvicorn's on_header)
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return False
            length = int(value)
        elif name == b"transfer-encoding" or name == b"expect":
            return False
    if method == b"GET":
        return not length
    return length is not None and length <= PARSED_MAX_BYTES


def _unused_receive() -> Any:
    raise AssertionError("the hit lane has the whole body: nothing is received")


class HitLaneProtocol(GuardedHttpToolsProtocol):
    """uvicorn's httptools protocol, answering hits without an ASGI cycle (module docstring)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        # uvicorn writes an access line per answer when its access logger takes INFO; the lane
        # writes none, so it stands aside then (``serve`` runs without an access log)
        logged = self.access_log and self.access_logger.isEnabledFor(logging.INFO)
        plain = not self.root_path and not logged
        self._endpoint = find_endpoint(self.app) if plain else None
        #: the body so far of a request held for the lane; ``None``: no request is held
        self._held: bytearray | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._held = None
        # a hit answered inside this same read armed uvicorn's keep-alive timer; a request
        # pipelined behind it is being read now, so that timer must not close the connection
        keep_alive = self.timeout_keep_alive_task
        if keep_alive is not None:
            keep_alive.cancel()
            self.timeout_keep_alive_task = None

    def on_headers_complete(self) -> None:
        if self._endpoint is not None and may_hold(
            self.parser.get_method(), self.url, self.headers
        ):
            self._head_done()
            self._held = bytearray()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        held = self._held
        if held is None:
            super().on_body(body)
        else:
            held += body

    def on_message_complete(self) -> None:
        held = self._held
        if held is None:
            super().on_message_complete()
            return
        self._held = None
        if self._answer(held):
            return
        # not for the lane: uvicorn gets the request as the parser would have given it
        super().on_headers_complete()
        if held:
            super().on_body(bytes(held))
        super().on_message_complete()

    def _answer(self, held: bytearray) -> bool:
        """Write the answer to the held request when it is a hit; False: not answered."""
        endpoint = self._endpoint
        assert endpoint is not None
        cycle = self.cycle
        limit = self.limit_concurrency
        if (
            (cycle is not None and not cycle.response_complete)  # an earlier one is answering
            or (limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit))
            or self.flow.write_paused  # the ASGI path waits for the client to read
            or self.transport.is_closing()
        ):
            return False
        method = self.parser.get_method().decode("ascii")
        _, _, query = self.url.partition(b"?")
        fields = {"method": method, "headers": self.headers, "query_string": query}
        request = PredictRequest(fields, _unused_receive, endpoint.cap)
        raw = bytes(held) if method == "POST" else query
        try:
            answer = endpoint.service.answer_now(request, raw)
        except Exception:  # as the endpoint does: logged once, a problem+json 500
            log.exception("internal error on %s /predict", method)
            body = problem(500, "internal", "internal error; see the server log")
            answer = 500, body, list(PROBLEM_HEADERS)
        if answer is None:
            return False
        status, body, headers = answer
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        self._write(keep_alive, status, body, headers)
        return True

    def _write(
        self, keep_alive: bool, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
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
                self._write(keep_alive, 500, body, list(PROBLEM_HEADERS))
                return
            parts += (name, b": ", value, b"\r\n")
        if status != 304:
            if status < 400:
                parts += (JSON_TYPE[0], b": ", JSON_TYPE[1], b"\r\n")
            parts += (b"content-length: %d\r\n" % len(body),)
        if not keep_alive:
            parts.append(_CLOSE)
        parts += (b"\r\n", body)
        self.transport.write(b"".join(parts))
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()
