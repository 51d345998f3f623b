"""HTTP helpers for ``benchmarks/perf.py``: a lean keep-alive client and the no-op baseline app.

The client speaks just enough HTTP/1.1 over one raw socket (send the request, read the head,
read ``content-length`` bytes), so its own cost per request is a few microseconds and the
comparison is between the servers, not hidden behind a heavy client. The same client, the same
connection handling and the same request pattern are used on both sides.

Run as a script, this module serves the baseline: a no-op FastAPI endpoint returning a constant
JSON, under the same uvicorn settings ``predcache serve`` uses (one worker, access log off,
log level warning), so the only difference between the two servers is the route's work.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
NOOP_BODY = {"product_id": "ETH/EUR", "predicted_price": 2236.17, "cache": "hit"}


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def request_bytes(method: str, path: str, body: bytes = b"") -> bytes:
    """One keep-alive HTTP/1.1 request, as a client library would send it."""
    head = f"{method} {path} HTTP/1.1\r\nhost: {HOST}\r\naccept: */*\r\n"
    if body:
        head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode("ascii") + b"\r\n" + body


def _split_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


class Connection:
    """One blocking keep-alive connection (for latency: no event loop in the client)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one request and read its whole response."""
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status, headers = _split_head(head)
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


async def _client_loop(port: int, raw: bytes, count: int) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for _ in range(count):
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status, headers = _split_head(head[:-4])
            await reader.readexactly(int(headers.get("content-length", "0")))
            if status != 200:
                raise RuntimeError(f"HTTP {status} during the throughput run")
    finally:
        writer.close()
        await writer.wait_closed()


def throughput(port: int, raw: bytes, concurrency: int, per_client: int) -> float:
    """Requests per second with ``concurrency`` keep-alive connections sending back to back."""

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(_client_loop(port, raw, per_client) for _ in range(concurrency)))
        return concurrency * per_client / (time.perf_counter() - t0)

    return asyncio.run(main())


@contextmanager
def pinned(*server_pids: int) -> Iterator[None]:
    """Both servers on the last CPU, this client on the others, while timing (Linux).

    On a 2-core machine, where the scheduler puts each process decides whether a request
    crosses cores, which moved either side's p50 by 30 us between runs; pinning gives both
    servers the same placement, so the ratio compares the servers, not their luck.
    """
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        yield
        return
    before = os.sched_getaffinity(0)
    cpus = sorted(before)
    if len(cpus) < 2:
        yield
        return
    for pid in server_pids:
        os.sched_setaffinity(pid, {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def wait_until_up(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Bounded wait for a server to accept connections (fails fast if it exited)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise SystemExit(f"server exited early ({proc.returncode}): {err.strip()[-500:]}")
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start within {timeout_s:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server this script started, and reap it."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def start_noop(port: int) -> subprocess.Popen[bytes]:
    """The baseline server (this file as a script) on ``port``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until_up(port, proc)
    return proc


def serve_noop(port: int) -> None:
    """A no-op FastAPI endpoint (GET and POST ``/noop``) returning a constant JSON object."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/noop")
    async def noop_get() -> dict[str, object]:
        return NOOP_BODY

    @app.post("/noop")
    async def noop_post() -> dict[str, object]:
        return NOOP_BODY

    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    serve_noop(int(sys.argv[1]))
