"""The client floor: what the live bench's own client costs, measured with every live run.

A live latency is the server's work plus the client's: sending, the loopback hop, reading
the answer, and in the open loop waking up on time. To know the second part, the same
open-loop client runs the same kind of schedule against a trivial endpoint (a separate
process that answers every request with a fixed two-byte body, so the server side costs next
to nothing), and a plain keep-alive ``http.client`` loop runs against it too, one request
after another: the cheapest way Python sends a request. Both p50s go into the live rows
(``client_floor_p50_ms``, ``plain_loop_p50_ms``), so a reader sees how much of a hit's
latency is the client and how close the client is to the cheapest one.

``python -m predcache.bench.floor`` is the trivial endpoint (it prints its port and serves
until its stdin closes).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from dataclasses import dataclass

import numpy as np

from predcache.bench.openloop import Schedule, plain_loop, run_open_loop
from predcache.errors import PredcacheError

FLOOR_REQUESTS = 300
#: the schedule's rate: busy enough to keep connections warm, far below saturation
FLOOR_RATE = 200.0
_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
    b"cache-status: floor; hit\r\n\r\n{}"
)


@dataclass(frozen=True)
class Floor:
    """The client's own latency against a trivial endpoint (ms)."""

    open_loop_p50_ms: float
    open_loop_p90_ms: float
    plain_loop_p50_ms: float
    requests: int


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if length:
                await reader.readexactly(length)
            writer.write(_ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    except asyncio.CancelledError:  # the endpoint is shutting down
        pass
    finally:
        writer.close()


async def _serve() -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


def measure_floor(body: bytes, *, requests: int = FLOOR_REQUESTS) -> Floor:
    """Start the trivial endpoint, run the open-loop client and the plain loop against it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "predcache.bench.floor"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = _read_line(proc, timeout_s=30.0)
        url = f"http://127.0.0.1:{int(line)}/floor"
        gaps = np.random.Generator(np.random.PCG64(0)).exponential(1 / FLOOR_RATE, requests)
        schedule = Schedule(np.cumsum(gaps), np.zeros(requests, dtype=np.int64), [body])
        plain_loop(url, body, 50)  # warm up the endpoint and the loopback path
        log = run_open_loop(url, schedule)
        ok = log.latency_ms[log.status == 200]
        plain = plain_loop(url, body, requests)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
    if not len(ok):
        raise PredcacheError("the client floor's trivial endpoint did not answer")
    return Floor(
        open_loop_p50_ms=round(float(np.percentile(ok, 50)), 4),
        open_loop_p90_ms=round(float(np.percentile(ok, 90)), 4),
        plain_loop_p50_ms=round(float(np.percentile(plain, 50)), 4),
        requests=requests,
    )


def _read_line(proc: subprocess.Popen[str], *, timeout_s: float) -> str:
    """The endpoint's first stdout line (its port), or an error if it does not come."""
    out: list[str] = []
    reader = threading.Thread(
        target=lambda: out.append(proc.stdout.readline() if proc.stdout else "")
    )
    reader.start()
    reader.join(timeout_s)
    if not out or not out[0].strip().isdigit():
        proc.kill()
        raise PredcacheError("the client floor's trivial endpoint did not start")
    return out[0].strip()


if __name__ == "__main__":
    asyncio.run(_serve())
