"""An open-loop client written apart from predcache's own, to check what the live bench reports.

Issue #10 asks that an independent open-loop client see the server latencies the live bench
reports. This one shares no code with ``predcache.bench.openloop`` (threads and http.client):
it is one asyncio event loop (uvloop when installed) with hand-written HTTP/1.1 over
``asyncio.open_connection``, a pool of keep-alive connections grown on demand, and each
request started by its own task at its scheduled time. Like the live bench, it measures from
the scheduled time (no coordinated omission). It replays the very schedule the live bench sent
(the live run's ``requests.csv``: time, pair, horizon), against a fresh server.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Replay:
    latency_ms: list[float]  # per request, from its scheduled time to the whole answer read
    cache: list[str]  # each answer's Cache-Status ('' when absent)
    status: list[int]

    @property
    def mean_ms(self) -> float:
        return sum(self.latency_ms) / len(self.latency_ms)

    def hit_p50_ms(self) -> float:
        hits = sorted(
            lat for lat, c in zip(self.latency_ms, self.cache, strict=True) if "; hit" in c
        )
        return hits[len(hits) // 2] if hits else float("nan")


def read_schedule(requests_csv: Path) -> list[tuple[float, bytes]]:
    """(seconds from the first request, request body) for each row of a live requests.csv."""
    rows = list(csv.DictReader(requests_csv.open(newline="")))
    t0 = float(rows[0]["timestamp"])
    out = []
    for r in rows:
        h = int(float(r["horizon"]))
        horizon = f"{h // 60}m" if h % 60 == 0 else f"{h}s"
        body = json.dumps({"product_id": r["pair"], "horizon": horizon}).encode()
        out.append((float(r["timestamp"]) - t0, body))
    return out


async def _replay(url: str, schedule: list[tuple[float, bytes]]) -> Replay:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    head = f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
    pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    n = len(schedule)
    latency, cache, status = [0.0] * n, [""] * n, [0] * n
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2

    async def one(i: int) -> None:
        offset, body = schedule[i]
        due = start + offset
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        for attempt in (0, 1):  # a keep-alive connection the server closed: once more
            conn = pool.pop() if pool and not attempt else await asyncio.open_connection(host, port)
            reader, writer = conn
            try:
                writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
                header = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                if attempt:
                    raise
        lines = header.decode("latin-1").split("\r\n")
        pairs = (ln.partition(":") for ln in lines[1:])
        fields = {k.strip().lower(): v.strip() for k, _, v in pairs}
        await reader.readexactly(int(fields.get("content-length", "0")))
        latency[i] = (loop.time() - due) * 1000.0
        status[i] = int(lines[0].split()[1])
        cache[i] = fields.get("cache-status", "")
        pool.append(conn)

    for _ in range(8):
        pool.append(await asyncio.open_connection(host, port))
    await asyncio.gather(*(one(i) for i in range(n)))
    for _, writer in pool:
        writer.close()
    return Replay(latency, cache, status)


def replay(url: str, requests_csv: Path) -> Replay:
    """Send the schedule of ``requests_csv`` to ``url`` open-loop, in real time."""
    schedule = read_schedule(requests_csv)
    started = time.monotonic()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_replay(url, schedule))
    else:
        result = uvloop.run(_replay(url, schedule))
    assert time.monotonic() - started >= schedule[-1][0]
    return result
