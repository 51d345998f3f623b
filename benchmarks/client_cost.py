"""What the live bench's client adds to a hit, against a plain keep-alive ``http.client`` loop.

One ``predcache serve`` (memory backend, TTL 1 h, every key warm), measured in interleaved
rounds by:

- a plain loop: one keep-alive ``http.client`` connection, POSTs back to back (the cheapest
  way Python sends a request: the reference);
- ``predcache bench --target URL --concurrency 1``: the closed loop, also back to back;
- ``predcache bench --target URL --rate R``: the open loop at a few rates. Its latency counts
  from each request's scheduled time, with an idle gap of 1/R on average before each one;
  ``benchmarks/idle_gap.py`` shows what an idle gap costs any client on this machine.

It prints each hit p50 and its ratio to the plain loop's of the same round::

    python benchmarks/client_cost.py              # 2 rounds, about a minute
"""

from __future__ import annotations

import argparse
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

BODY = json.dumps({"product_id": "ETH/EUR", "horizon": "5m"}).encode()
OPEN_LOOP = (("1000", "3000"), ("200", "2000"), ("50", "500"))  # (rate, requests)


def plain_p50(port: int, requests: int = 3000) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    took = []
    for _ in range(requests):
        t0 = time.perf_counter()
        conn.request("POST", "/predict", BODY, {"content-type": "application/json"})
        conn.getresponse().read()
        took.append(time.perf_counter() - t0)
    conn.close()
    return statistics.median(took[200:]) * 1000.0


def bench_p50(
    exe: list[str], env: dict[str, str], url: str, *flags: str, warm: bool = True
) -> float:
    """The bench's hit p50 (ms); ``warm``: every key is already stored (all hits)."""
    out = subprocess.run(
        [*exe, "bench", "--target", url, *flags, "--json", "--out", env["RESULTS"]],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    (row,) = json.loads(out.stdout)
    assert row["errors"] == 0 and (row["hit_ratio"] == 1.0 or not warm), row
    return float(row["hit_latency_p50_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    args = parser.parse_args()
    exe = [sys.executable, "-m", "predcache"]
    with tempfile.TemporaryDirectory(prefix="predcache-client-cost-") as tmp:
        env = dict(os.environ, HOME=tmp, RESULTS=str(Path(tmp) / "results"))
        subprocess.run([*exe, "train"], env=env, check=True, capture_output=True, timeout=600)
        port = free_port()
        proc = subprocess.Popen(
            [*exe, "serve", "--backend", "memory", "--ttl", "1h", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_up(port, proc)
            url = f"http://127.0.0.1:{port}/predict"
            bench_p50(exe, env, url, "--concurrency", "1", "--requests", "300", warm=False)
            load = os.getloadavg()[0]
            print(f"predcache serve (memory, every key warm); {os.cpu_count()} cores, load "
                  f"average {load:.1f}; hit p50 ms (x the plain loop's of the round)")  # fmt: skip
            head = ["round", "plain loop", "closed loop, concurrency 1"]
            head += [f"open loop, rate {r}/s" for r, _ in OPEN_LOOP]
            print("| " + " | ".join(head) + " |")
            print("|" + " --- |" * len(head))
            for r in range(1, args.rounds + 1):
                plain = plain_p50(port)
                cells = [str(r), f"{plain:.3f}"]
                closed = bench_p50(exe, env, url, "--concurrency", "1", "--requests", "3000")
                cells.append(f"{closed:.3f} ({closed / plain:.2f}x)")
                for rate, n in OPEN_LOOP:
                    p50 = bench_p50(exe, env, url, "--rate", rate, "--requests", n)
                    cells.append(f"{p50:.3f} ({p50 / plain:.2f}x)")
                print("| " + " | ".join(cells) + " |", flush=True)
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
