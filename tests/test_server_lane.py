"""The hit lane (``predcache.server.lane``): a hit is answered by the HTTP protocol without an
ASGI task, with the bytes the ASGI path sends; everything else takes the ASGI path.

Two real uvicorn servers in threads of this process share one disk cache and the fake clock:
one runs the lane, the other the same protocol without it (the ASGI path). Raw sockets compare
their answers byte for byte (``date`` aside). The lane server's protocol counts the ASGI tasks
it starts, which is how a test knows which path answered.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from predcache.clock import ManualClock
from predcache.server.app import create_app
from predcache.server.lane import HitLaneProtocol
from predcache.server.limits import GuardedHttpToolsProtocol
from predcache.server.service import PredictService
from predcache.server.settings import ServeSettings
from tests.fixtures.threaded import threaded_server

BODY = b'{"product_id": "ETH/EUR", "horizon": "5m"}'


class _Counting(GuardedHttpToolsProtocol):
    """Counts the ASGI tasks uvicorn starts (below the lane: parked requests are not counted)."""

    started: ClassVar[list[int]] = [0]

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self.started[0] += 1
        super()._start_asgi_task(cycle, app)


class LaneSpy(HitLaneProtocol, _Counting):
    """The lane, with a count of the requests it handed to the ASGI path."""


def _post(body: bytes = BODY, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return (
        b"POST /predict HTTP/" + version + b"\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body
    )


def _get(query: bytes = b"pair=ETH/EUR&horizon=5m", extra: bytes = b"") -> bytes:
    return b"GET /predict?" + query + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


def _read_answer(
    sock: socket.socket, buf: bytearray, head: bool = False
) -> tuple[bytes, list[bytes], bytes]:
    """One response from ``sock`` (bytes past it stay in ``buf``): status, headers, body
    (none after a ``HEAD``, whatever its ``content-length`` says)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-answer: {bytes(buf)!r}"
        buf += chunk
    top, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status, *lines = top.split(b"\r\n")
    fields = dict(x.partition(b": ")[::2] for x in lines)
    length = 0 if head else int(fields.get(b"content-length", b"0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    del buf[:]
    buf += rest[length:]
    return status, [x for x in lines if not x.startswith(b"date: ")], rest[:length]


def _ask(port: int, request: bytes) -> tuple[bytes, list[bytes], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        return _read_answer(sock, bytearray(), head=request.startswith(b"HEAD "))


@pytest.fixture
def servers(
    models_dir: Path,
    tmp_path: Path,
    fake_now: ManualClock,
) -> Iterator[tuple[int, int]]:
    """(lane port, ASGI-path port): two servers on one disk cache and the fake clock."""

    def app() -> Any:
        settings = ServeSettings(
            ttl_s=90, cache_dir=str(tmp_path / "cache"), models_dir=str(models_dir)
        )
        return create_app(settings)

    LaneSpy.started[0] = 0
    with (
        threaded_server(app(), LaneSpy) as lane,
        threaded_server(app(), GuardedHttpToolsProtocol) as plain,
    ):
        yield lane, plain


CASES = {
    "POST": _post(),
    "GET": _get(),
    "max-age 7": _post(extra=b"Cache-Control: max-age=7\r\n"),
    "pragma": _get(extra=b"Pragma: x-unknown\r\n"),
    "HTTP/1.0": _post(version=b"1.0"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_hit_takes_the_lane_and_sends_what_the_asgi_path_sends(
    servers: tuple[int, int],
    fake_now: ManualClock,
    case: str,
) -> None:
    lane, plain = servers
    first = _ask(plain, _post())  # the ASGI path computes and stores (the disk is shared)
    assert b"cache-status: predcache; fwd=miss; stored" in first[1]
    fake_now.advance(3.4)
    request = CASES[case]
    _ask(lane, request)  # the lane parses a request once, on the ASGI path, then remembers it
    before = LaneSpy.started[0]
    answer = _ask(lane, request)
    assert LaneSpy.started[0] == before  # answered without an ASGI task
    assert answer == _ask(plain, request)
    status, headers, body = answer
    assert status == b"HTTP/1.1 200 OK"
    assert b"cache-status: predcache; hit; ttl=86" in headers
    assert b"age: 3" in headers
    assert body.endswith(b'"cache":"hit","age_s":3.4}')
    assert (b"connection: close" in headers) == (case == "HTTP/1.0")


def test_a_matching_etag_is_a_304_from_the_lane(
    servers: tuple[int, int],
    fake_now: ManualClock,
) -> None:
    lane, plain = servers
    etag = next(h for h in _ask(plain, _post())[1] if h.startswith(b"etag: "))[6:]
    request = _post(extra=b"If-None-Match: " + etag + b"\r\n")
    _ask(lane, _post())
    before = LaneSpy.started[0]
    answer = _ask(lane, request)
    assert LaneSpy.started[0] == before
    assert answer == _ask(plain, request)
    assert answer[0] == b"HTTP/1.1 304 Not Modified" and answer[2] == b""


def test_misses_bad_requests_and_forced_recomputes_take_the_asgi_path(
    servers: tuple[int, int],
) -> None:
    lane, _ = servers
    bad = _post(b'{"product_id": "NOPE/EUR", "horizon": "5m"}')
    head = b"HEAD /predict?pair=ETH/EUR&horizon=5m HTTP/1.1\r\nHost: x\r\n\r\n"
    cases = [  # (request, its Cache-Status or None for a 4xx, answered by the lane)
        (_post(), b"fwd=miss; stored", False),  # nothing stored yet
        (_post(), b"hit", True),  # stored, and this body was parsed by the miss
        (_get(), b"hit", False),  # a query string not parsed before
        (_get(), b"hit", True),
        (_post(extra=b"Cache-Control: no-cache\r\n"), b"fwd=request; stored", False),
        (bad, None, False),
        (bad, None, False),  # a bad body is never remembered: the ASGI path answers it each time
        (head, b"hit", False),  # HEAD never takes the lane
    ]
    for request, cache_status, by_lane in cases:
        before = LaneSpy.started[0]
        status, headers, body = _ask(lane, request)
        assert LaneSpy.started[0] == before + (0 if by_lane else 1), request
        if cache_status is None:
            assert status.startswith(b"HTTP/1.1 4") and b"unknown pair" in body.lower()
        else:
            found = [h for h in headers if h.startswith(b"cache-status")]
            assert len(found) == 1 and cache_status in found[0], (request, headers)


def test_pipelined_requests_are_answered_in_order_on_one_connection(
    models_dir: Path, tmp_path: Path
) -> None:
    """A hit answered inside a read arms uvicorn's keep-alive timer; a slow miss pipelined
    behind it (a 1.5 s simulated model, a 1 s keep-alive timeout) must still be answered."""
    settings = ServeSettings(
        ttl_s=90,
        cache_dir=str(tmp_path / "cache"),
        models_dir=str(models_dir),
        model_delay_s=1.5,
    )
    with threaded_server(create_app(settings), LaneSpy, timeout_keep_alive=1) as port:
        _ask(port, _post())
        _ask(port, _post())  # stored and remembered: the next one is a lane hit
        other = b'{"product_id": "BTC/EUR", "horizon": "5m"}'
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(_post() + _post(other) + _post())
            buf = bytearray()
            answers = [_read_answer(sock, buf) for _ in range(3)]
    statuses = [next(h for h in a[1] if h.startswith(b"cache-status")) for a in answers]
    assert statuses[0].startswith(b"cache-status: predcache; hit")
    assert statuses[1] == b"cache-status: predcache; fwd=miss; stored"
    assert statuses[2].startswith(b"cache-status: predcache; hit")
    assert b'"product_id":"BTC/EUR"' in answers[1][2]


def test_a_later_slow_head_on_a_kept_alive_connection_gets_408(
    models_dir: Path, tmp_path: Path
) -> None:
    """The head timer of a later request starts when its head is left incomplete by a read."""
    settings = ServeSettings(
        ttl_s=90,
        cache_dir=str(tmp_path / "cache"),
        models_dir=str(models_dir),
        header_timeout_s=1.0,
    )
    with (
        threaded_server(create_app(settings), LaneSpy) as port,
        socket.create_connection(("127.0.0.1", port), timeout=20) as sock,
    ):
        sock.sendall(_post())
        assert _read_answer(sock, bytearray())[0] == b"HTTP/1.1 200 OK"
        sock.sendall(b"GET /predict HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        answer = sock.recv(4096)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    assert 0.5 < waited < 10


def test_with_an_access_log_every_request_takes_the_asgi_path(
    models_dir: Path, tmp_path: Path
) -> None:
    """uvicorn writes one access line per answer; the lane writes none, so it stands aside."""
    settings = ServeSettings(ttl_s=90, cache_dir=str(tmp_path / "c"), models_dir=str(models_dir))
    LaneSpy.started[0] = 0
    with threaded_server(create_app(settings), LaneSpy, access_log=True, log_level="info") as port:
        for _ in range(3):
            assert _ask(port, _post())[0] == b"HTTP/1.1 200 OK"
    assert LaneSpy.started[0] == 3


def test_past_the_connection_limit_a_hit_is_refused_as_uvicorn_refuses_it(
    models_dir: Path, tmp_path: Path, fake_now: ManualClock
) -> None:
    """``--max-connections`` (uvicorn's limit_concurrency) holds for hits the lane could serve."""
    settings = ServeSettings(ttl_s=90, cache_dir=str(tmp_path / "c"), models_dir=str(models_dir))
    with threaded_server(create_app(settings), LaneSpy, limit_concurrency=2) as port:
        _ask(port, _post())
        assert b"cache-status: predcache; hit; ttl=90" in _ask(port, _post())[1]  # the lane
        with socket.create_connection(("127.0.0.1", port), timeout=30) as first:
            first.sendall(_post())
            _read_answer(first, bytearray())  # this connection stays open: two are open below
            status, _, body = _ask(port, _post())
    assert (status, body) == (b"HTTP/1.1 503 Service Unavailable", b"Service Unavailable")


def _problem_500(answer: tuple[bytes, list[bytes], bytes]) -> None:
    status, headers, body = answer
    assert status == b"HTTP/1.1 500 Internal Server Error"
    assert b"content-type: application/problem+json" in headers
    assert json.loads(body) == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "code": "internal",
        "detail": "internal error; see the server log",
    }


def test_an_error_while_answering_in_the_lane_is_one_logged_problem_500(
    servers: tuple[int, int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault put into the service's hit path (the real one cannot fail on cue)."""
    lane, _ = servers

    def broken(self: PredictService, request: Any, raw: bytes) -> Any:
        raise RuntimeError("planted")

    monkeypatch.setattr(PredictService, "answer_now", broken)
    before = LaneSpy.started[0]
    with caplog.at_level(logging.ERROR, logger="predcache.server"):
        _problem_500(_ask(lane, _post()))
    assert LaneSpy.started[0] == before  # answered by the lane, not handed on
    (record,) = [r for r in caplog.records if r.name == "predcache.server"]
    assert record.getMessage() == "internal error on POST /predict"
    assert record.exc_info is not None and str(record.exc_info[1]) == "planted"


@pytest.mark.parametrize("bad", [b"a\r\nx-injected: 1", b"a\nb", b"a\rb"])
def test_a_header_with_a_line_break_is_never_sent(
    servers: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    bad: bytes,
) -> None:
    lane, _ = servers

    def answer(self: PredictService, request: Any, raw: bytes) -> Any:
        return 200, b"{}", [(b"cache-status", b"predcache; hit"), (b"x-planted", bad)]

    monkeypatch.setattr(PredictService, "answer_now", answer)
    with caplog.at_level(logging.ERROR, logger="predcache.server"):
        answer_seen = _ask(lane, _post())
    _problem_500(answer_seen)
    assert not any(h.startswith((b"x-planted", b"x-injected")) for h in answer_seen[1])
    (record,) = [r for r in caplog.records if r.name == "predcache.server"]
    assert record.getMessage() == "refused a header with a line break on /predict: b'x-planted'"
