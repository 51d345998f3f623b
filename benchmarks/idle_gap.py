"""What a hit costs a client as a function of the idle time between requests.

The live bench's hit p50 at a modest rate (50/s) reads about 2-3x the p50 of a plain keep-alive
``http.client`` loop sending back to back (benchmarks/live_vs_sim.py). This script shows where
that comes from, with no open-loop machinery at all: one plain ``http.client`` connection to
``predcache serve`` (memory backend, a warm key), requests sent one at a time with a fixed idle
gap before each. The client never sleeps (it spins through the gap on the clock), so its own
wake-up is not in the figures; only the gap changes. If the p50 grows with the gap, that growth
is what any client at that rate pays on this machine (the server and the CPU caches go cold
between requests), not the load generator's cost.

    python benchmarks/idle_gap.py
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf_http import free_port, stop, wait_until_up

GAPS_MS = (0.0, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
BODY = json.dumps({"product_id": "ETH/EUR", "horizon": "1m"}).encode()
HEADERS = {"content-type": "application/json"}


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ, HOME=str(home))
    exe = [sys.executable, "-m", "predcache"]
    subprocess.run([*exe, "train", "--pairs", "ETH/EUR"], env=env, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    proc = subprocess.Popen(
        [*exe, "serve", "--backend", "memory", "--ttl", "1h", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    wait_until_up(port, proc)  # uvicorn listens once start-up (models loaded) is done
    return proc, port


def measure(port: int) -> list[tuple[float, float, int]]:
    """(gap ms, p50 ms, requests) for each gap, on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    perf = time.perf_counter

    def one() -> None:
        conn.request("POST", "/predict", BODY, HEADERS)
        conn.getresponse().read()

    for _ in range(200):  # the key is stored, and everything is warm
        one()
    rows = []
    for gap_ms in GAPS_MS:
        n = int(min(400, 4000 / max(gap_ms, 1.0)))
        took = []
        for _ in range(n):
            due = perf() + gap_ms / 1000.0
            while perf() < due:
                pass  # spin: this client never sleeps, so its own wake-up is not measured
            t0 = perf()
            one()
            took.append((perf() - t0) * 1000.0)
        rows.append((gap_ms, statistics.median(took), n))
    conn.close()
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="predcache-idle-gap-") as tmp:
        proc, port = start_server(Path(tmp))
        try:
            rows = measure(port)
        finally:
            stop(proc)
    print(f"predcache serve (memory, warm key), one plain keep-alive http.client connection; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| idle gap before each request | requests | hit p50 | vs back to back |")
    print("| --- | --- | --- | --- |")
    base = rows[0][1]
    for gap_ms, p50, n in rows:
        print(f"| {gap_ms:g} ms | {n} | {p50:.3f} ms | {p50 / base:.2f}x |")


if __name__ == "__main__":
    main()
