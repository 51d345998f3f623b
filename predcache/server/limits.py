"""Connection limits for ``predcache serve``: header size, header read time, connection count.

uvicorn's fast parser (httptools) accepts a header of any size and waits for it forever: one
300 MB header line was answered 200 and left the server at 380 MB, and half-open connections
were held past 30 s until the open-file limit made real requests fail. The body cap
(``max_body_bytes``) covers bodies only. So ``serve`` runs uvicorn with
:class:`GuardedHttpToolsProtocol` (under the hit lane, :mod:`predcache.server.lane`), the same
protocol plus two limits on a request's head (request line and headers):

- more than ``max_header_bytes`` before the head is complete: ``431 Request Header Fields Too
  Large`` (a problem+json body) and the connection is closed; memory held stays bounded by the
  limit plus one read;
- the head not complete ``header_timeout_s`` after the connection opened (or after the first
  byte of a later request on a kept-alive connection): ``408 Request Timeout``, closed.

The third limit is uvicorn's own ``limit_concurrency``: past ``max_connections`` open
connections a request gets ``503 Service Unavailable`` at once instead of an accepted socket
that is never served; :func:`uvicorn_limits` keeps it below the process's open-file limit.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from predcache.server.settings import DEFAULT_HEADER_TIMEOUT_S, DEFAULT_MAX_HEADER_BYTES

#: after a 431 the rest of the client's request is read and dropped for at most this long, so
#: the client reads the 431 instead of a connection reset (a "lingering close")
LINGER_S = 2.0
#: file descriptors kept for everything but client connections (store, logs, pipes)
FD_RESERVE = 64
#: the protocol ``serve`` runs: these limits plus the hit lane (:mod:`predcache.server.lane`)
PROTOCOL = "predcache.server.lane:HitLaneProtocol"


def _refusal(status: int, reason: str, code: str, detail: str) -> bytes:
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status, "code": code, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size and a time limit on each request's head."""

    #: set by :func:`configure` from the serve settings (class-wide: one server per process)
    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._lingering = False
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_s, self._head_too_slow
        )

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # refused: the rest of the request is dropped, never parsed nor kept
        super().data_received(data)
        if self._in_head:
            if self._head_timer is None:
                # a later request's head began in this read and is not complete: time it
                # from here (a head that arrives whole never needs a timer)
                self._arm()
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
                self._refuse(
                    _refusal(
                        431,
                        "Request Header Fields Too Large",
                        "headers-too-large",
                        f"request line and headers over {self.max_header_bytes} bytes",
                    )
                )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # a later request on a kept-alive connection
            self._in_head = True
            self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()

    def _head_done(self) -> None:
        """The request's head is complete: its limits no longer apply."""
        self._in_head = False
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(
                _refusal(
                    408,
                    "Request Timeout",
                    "header-timeout",
                    f"request headers not received within {self.header_timeout_s:g}s",
                )
            )

    def _refuse(self, response: bytes) -> None:
        """Answer and end the connection; keep reading (and dropping) the request meanwhile."""
        self._in_head = False
        self._disarm()
        self.transport.write(response)
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._lingering = True
        self.loop.call_later(LINGER_S, self.transport.close)


def configure(max_header_bytes: int, header_timeout_s: float) -> None:
    """Set the head limits for this process (each ``--workers`` process calls it)."""
    GuardedHttpToolsProtocol.max_header_bytes = max_header_bytes
    GuardedHttpToolsProtocol.header_timeout_s = header_timeout_s


def raise_fd_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def uvicorn_limits(max_connections: int) -> dict[str, Any]:
    """uvicorn options: the guarded protocol and a connection cap below the fd limit."""
    fds = raise_fd_limit()
    cap = max(1, min(max_connections, fds - FD_RESERVE))
    return {"http": PROTOCOL, "limit_concurrency": cap}
