"""Bad HTTP requests against a real ``predcache serve`` (uvicorn on loopback), table-driven.

Every case must get a 4xx answer whose body is a JSON object with a readable message, and the
server must stay healthy: after the table, ``GET /health`` is 200 and a valid predict works.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx

from tests.fixtures.server import RunningServer
from tests.reliability import figures

CAP = 64 * 1024
JSON = {"content-type": "application/json"}


def _chunks(total: int) -> Iterator[bytes]:
    """A chunked body (no Content-Length): the cap must hold while streaming."""
    sent = 0
    while sent < total:
        yield b" " * 8192
        sent += 8192


def _declared_too_long(url: str) -> int:
    """A request that declares a body far over the cap and sends none: refused up front.

    httpx will not send a Content-Length its body does not match, so this one is raw HTTP.
    """
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 * CAP}\r\n\r\n{{}}"
    )
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.encode())
        raw = b""
        while b"}" not in raw.partition(b"\r\n\r\n")[2]:  # headers and body may come apart
            chunk = s.recv(4096)
            if not chunk:
                break
            raw += chunk
    reply = raw.decode("latin-1")
    status_line, _, rest = reply.partition("\r\n")
    assert status_line.startswith("HTTP/1.1 413"), status_line
    assert '"code":"body_too_large"' in rest.replace(" ", "")
    return 413


#: (id, method, path, body, headers)
CASES: list[tuple[str, str, str, bytes | None, dict[str, str]]] = [
    ("empty body", "POST", "/predict", b"", JSON),
    ("blank body", "POST", "/predict", b"  \n ", JSON),
    ("malformed json", "POST", "/predict", b'{"product_id": "ETH/EUR"', JSON),
    ("json array", "POST", "/predict", b"[1, 2]", JSON),
    ("json string", "POST", "/predict", b'"ETH/EUR"', JSON),
    ("json null", "POST", "/predict", b"null", JSON),
    ("no pair", "POST", "/predict", b"{}", JSON),
    ("pair is a number", "POST", "/predict", b'{"product_id": 42}', JSON),
    ("pair is an object", "POST", "/predict", b'{"pair": {"$gt": ""}}', JSON),
    ("unknown pair", "POST", "/predict", b'{"product_id": "DOGE/EUR"}', JSON),
    ("path pair", "POST", "/predict", b'{"product_id": "../../etc/passwd"}', JSON),
    ("crlf pair", "POST", "/predict", b'{"product_id": "ETH/EUR\\r\\nX-Injected: 1"}', JSON),
    ("key-pattern pair", "POST", "/predict", b'{"product_id": "ETH/EUR:*"}', JSON),
    ("huge pair", "POST", "/predict", b'{"product_id": "' + b"A" * 60_000 + b'"}', JSON),
    ("nul in pair", "POST", "/predict", b'{"product_id": "ETH\\u0000/EUR"}', JSON),
    ("horizon zero", "POST", "/predict", b'{"product_id": "ETH/EUR", "horizon": 0}', JSON),
    ("horizon negative", "POST", "/predict", b'{"product_id": "ETH/EUR", "horizon": "-5m"}', JSON),
    ("horizon nan", "POST", "/predict", b'{"product_id": "ETH/EUR", "horizon": "nan"}', JSON),
    ("horizon overflow", "POST", "/predict", b'{"product_id": "ETH/EUR", "horizon": 1e999}', JSON),
    ("horizon absurd", "POST", "/predict", b'{"product_id": "ETH/EUR", "horizon": 1e30}', JSON),
    ("horizon untrained", "POST", "/predict", b'{"product_id": "ETH/EUR", "horizon": "7m"}', JSON),
    ("horizon list", "POST", "/predict", b'{"product_id": "ETH/EUR", "horizon": [300]}', JSON),
    ("not utf-8", "POST", "/predict", b'{"product_id": "\xff\xfe"}', JSON),
    ("deep nesting", "POST", "/predict", b"[" * 5000 + b"]" * 5000, JSON),
    ("over the cap", "POST", "/predict", b"{" + b" " * CAP + b"}", JSON),
    ("get without pair", "GET", "/predict", None, {}),
    ("get bad horizon", "GET", "/predict?pair=ETH/EUR&horizon=1e999", None, {}),
    ("get encoded crlf", "GET", "/predict?pair=ETH%2FEUR%0D%0AX-Injected:%201", None, {}),
    ("get traversal", "GET", "/predict?pair=..%2F..%2Fetc%2Fpasswd", None, {}),
    ("wrong method", "PUT", "/predict", None, {}),
    ("purge not allowed", "DELETE", "/predict?pair=ETH/EUR", None, {}),
    ("unknown path", "GET", "/predict/../../etc/passwd", None, {}),
]


def test_bad_requests_get_4xx_json_and_server_stays_healthy(shared_server: RunningServer) -> None:
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=shared_server.url, timeout=10) as client:
        for name, method, path, body, headers in CASES:
            r = client.request(method, path, content=body, headers=headers)
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:200])
            assert r.headers["content-type"] == "application/problem+json", name
            data = r.json()
            assert data["status"] == r.status_code, name
            message = data.get("detail") if isinstance(data, dict) else None
            assert isinstance(message, str) and message, (name, data)
            assert "\n" not in message and "\r" not in message, name
            assert len(r.content) < 1000, f"{name}: the error echoes unbounded input"
            assert "x-injected" not in {k.lower() for k in r.headers}, name
            statuses[name] = r.status_code
        # and it still serves
        assert client.get("/health").status_code == 200
        ok = client.post("/predict", json={"product_id": "ETH/EUR", "horizon": "5m"})
        assert ok.status_code == 200 and ok.json()["product_id"] == "ETH/EUR"
        chunked = client.post("/predict", content=_chunks(2 * CAP), headers=JSON)
        assert chunked.status_code == 413
        statuses["chunked over the cap"] = chunked.status_code
        statuses["declared length over the cap"] = _declared_too_long(shared_server.url)
        assert client.get("/health").status_code == 200
    assert shared_server.proc.poll() is None
    assert len(statuses) >= 15
    figures.add("bad HTTP requests (4xx JSON, server healthy after)", requests=len(statuses))
    for status in statuses.values():
        figures.add("bad HTTP requests by status", **{str(status): 1})
