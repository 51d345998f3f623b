"""Live vs simulated: does the simulated bench predict what `predcache serve` really does?

For each workload and stampede strategy (coalesce, none) this script starts
`predcache serve --backend memory --ttl T --model-delay D --stampede S` on a free loopback
port, drives it with the live open-loop bench, runs the simulated bench on the same workload
flags, and prints the two side by side with their differences, the checks of issue #10:

- model calls within 8%, hit ratio within 0.02, mean latency within 20%,
  p90 within 20% or 10 ms (whichever is larger);
- the live bench's hit p50 at most 1.25x a plain keep-alive http.client loop's p50 against
  the same server (measured right after the live run, on the workload's hottest key);
- an independent open-loop client (benchmarks/independent_client.py: asyncio, hand-written
  HTTP/1.1, no code shared with the bench's client) replaying the schedule the live bench
  sent, against a fresh server, sees a mean latency within 25% of the live bench's;

and the client floor each live run measured. Every figure is measured in this run, on this
machine; run it on a quiet machine for the latency checks (other load inflates live latency
and the floor alike). Both worlds use the command lines a user would type (printed with
--verbose), through the installed `predcache` entry point.

    python benchmarks/live_vs_sim.py            # 2 workloads x 2 strategies, about 4 minutes
    python benchmarks/live_vs_sim.py --quick    # 1 workload, about 2 minutes
    python benchmarks/live_vs_sim.py --workload 120,4,300ms,0.9 --requests 3000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from independent_client import replay
from perf_http import free_port, stop

STRATEGIES = ("coalesce", "none")
PAIRS, HORIZONS = "ETH/EUR,BTC/USD,SOL/USD", "1m,5m,15m"


@dataclass(frozen=True)
class Workload:
    rate: float
    ttl: str
    delay: str
    zipf: float
    seconds: float  # live duration: requests = rate x seconds
    seed: int = 1

    def label(self) -> str:
        return f"{self.rate:g}/s ttl {self.ttl} model {self.delay} zipf {self.zipf:g}"


#: the issue's workload, and one far from it (fast model, short TTL, skewed, busier)
DEFAULT_WORKLOADS = (
    Workload(50, "5s", "1s", 1.0, 24),
    Workload(150, "2s", "200ms", 1.2, 16),
)


def exe() -> list[str]:
    found = shutil.which("predcache")
    return [found] if found else [sys.executable, "-m", "predcache"]


def run_json(args: list[str], env: dict[str, str], verbose: bool) -> list[dict[str, Any]]:
    if verbose:
        print("$ predcache " + " ".join(args), file=sys.stderr)
    proc = subprocess.run([*exe(), *args], env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"predcache {' '.join(args)} failed: {proc.stderr.strip()}")
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


def start_server(w: Workload, strategy: str, env: dict[str, str], log: Path) -> tuple[Any, str]:
    port = free_port()
    args = ["serve", "--backend", "memory", "--ttl", w.ttl, "--model-delay", w.delay,
            "--stampede", strategy, "--port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen([*exe(), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"predcache serve exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("predcache serve did not start")


def plain_loop_hit_p50(url: str, gap_s: float, requests: int = 400) -> tuple[float, float]:
    """A plain keep-alive http.client loop on the hottest key (Zipf rank 1): hits, back to
    back (the issue's reference) and paced at the workload's mean gap (what any client that
    waits between requests pays to wake up on this machine)."""
    import http.client

    from predcache.bench.openloop import plain_loop

    body = json.dumps({"product_id": PAIRS.split(",")[0], "horizon": "1m"}).encode()
    plain_loop(url + "/predict", body, 20)  # the key is fresh (or refreshed) after this
    back_to_back = float(np.percentile(plain_loop(url + "/predict", body, requests), 50))
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    paced = []
    headers = {"content-type": "application/json"}
    for _ in range(150):
        time.sleep(gap_s)
        t0 = time.perf_counter()
        conn.request("POST", "/predict", body, headers)
        conn.getresponse().read()
        paced.append((time.perf_counter() - t0) * 1000.0)
    conn.close()
    return back_to_back, float(np.percentile(paced, 50))


def one(
    w: Workload, strategy: str, env: dict[str, str], tmp: Path, verbose: bool
) -> dict[str, Any]:
    requests = int(w.rate * w.seconds)
    flags = ["--rate", f"{w.rate:g}", "--requests", str(requests), "--pairs", PAIRS,
             "--horizons", HORIZONS, "--zipf", f"{w.zipf:g}", "--seed", str(w.seed),
             "--json"]  # fmt: skip
    out = tmp / f"live-{strategy}-{w.rate:g}"
    proc, url = start_server(w, strategy, env, tmp / f"serve-{strategy}.log")
    try:
        (live,) = run_json(["bench", "--target", url + "/predict", *flags, "--out", str(out),
                            "--save-requests"], env, verbose)  # fmt: skip
        plain, paced = plain_loop_hit_p50(url, min(1.0 / w.rate, 0.02))
    finally:
        stop(proc)
    # the same schedule again, from a client that shares no code with the bench's, against a
    # fresh server (so it meets the same cold cache)
    (sent,) = out.glob("*/requests.csv")
    proc, url = start_server(w, strategy, env, tmp / f"serve-{strategy}-independent.log")
    try:
        independent = replay(url + "/predict", sent)
    finally:
        stop(proc)
    sim_rows = run_json(["bench", "--ttl", w.ttl, "--model-delay", w.delay, "--stampede", strategy,
                         "--backend", "memory", "--market-paths", "1", *flags, "--out",
                         str(tmp / "sim")], env, verbose)  # fmt: skip
    sim = next(r for r in sim_rows if r["ttl_s"] and r["stampede"] == strategy)
    return {"workload": w.label(), "strategy": strategy, "live": live, "sim": sim, "plain": plain,
            "paced": paced, "independent": independent}  # fmt: skip


def checks(r: dict[str, Any]) -> dict[str, bool]:
    live, sim = r["live"], r["sim"]
    p90_tol = max(0.2 * live["latency_p90_ms"], 10.0)
    return {
        "calls": abs(sim["model_calls"] - live["model_calls"]) <= 0.08 * live["model_calls"],
        "hit": abs(sim["hit_ratio"] - live["hit_ratio"]) <= 0.02,
        "mean": abs(sim["latency_mean_ms"] - live["latency_mean_ms"])
        <= 0.2 * live["latency_mean_ms"],
        "p90": abs(sim["latency_p90_ms"] - live["latency_p90_ms"]) <= p90_tol,
        "client": live["hit_latency_p50_ms"] <= 1.25 * r["plain"],
        "independent": abs(r["independent"].mean_ms - live["latency_mean_ms"])
        <= 0.25 * live["latency_mean_ms"],
    }


def report(results: list[dict[str, Any]]) -> bool:
    def pct(a: float, b: float) -> str:
        return f"{(b - a) / a:+.0%}" if a else "-"

    print(
        "| workload | stampede | model calls live / sim (diff) | hit ratio live / sim (diff) "
        "| mean ms live / sim (diff) | p90 ms live / sim (diff) | collapsed live / sim "
        "| hit p50 ms: live / plain loop (ratio) / paced plain loop "
        "| client floor p50: open loop / plain "
        "| independent client: mean ms (diff to live) / hit p50 ms | ok |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    every = True
    for r in results:
        live, sim, ok, ind = r["live"], r["sim"], checks(r), r["independent"]
        every &= all(ok.values())
        failed = ", ".join(k for k, v in ok.items() if not v) or "all"
        print(
            f"| {r['workload']} | {r['strategy']} "
            f"| {live['model_calls']} / {sim['model_calls']} "
            f"({pct(live['model_calls'], sim['model_calls'])}) "
            f"| {live['hit_ratio']:.3f} / {sim['hit_ratio']:.3f} "
            f"({sim['hit_ratio'] - live['hit_ratio']:+.3f}) "
            f"| {live['latency_mean_ms']:.1f} / {sim['latency_mean_ms']:.1f} "
            f"({pct(live['latency_mean_ms'], sim['latency_mean_ms'])}) "
            f"| {live['latency_p90_ms']:.1f} / {sim['latency_p90_ms']:.1f} "
            f"({sim['latency_p90_ms'] - live['latency_p90_ms']:+.1f}) "
            f"| {live['collapsed']} / {sim['collapsed']} "
            f"| {live['hit_latency_p50_ms']:.3f} / {r['plain']:.3f} "
            f"({live['hit_latency_p50_ms'] / r['plain']:.2f}x) / {r['paced']:.3f} "
            f"| {live['client_floor_p50_ms']:.3f} / {live['plain_loop_p50_ms']:.3f} "
            f"| {ind.mean_ms:.1f} ({pct(live['latency_mean_ms'], ind.mean_ms)}) "
            f"/ {ind.hit_p50_ms():.3f} "
            f"| {'yes' if all(ok.values()) else 'NO: ' + failed} |"
        )
    return every


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the first workload")
    parser.add_argument(
        "--workload", action="append", default=[],
        help="RATE,TTL,DELAY,ZIPF[,SECONDS] (repeatable), instead of the defaults",
    )  # fmt: skip
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--verbose", action="store_true", help="print each command on stderr")
    args = parser.parse_args()
    workloads = list(DEFAULT_WORKLOADS[:1] if args.quick else DEFAULT_WORKLOADS)
    if args.workload:
        workloads = []
        for spec in args.workload:
            parts = spec.split(",")
            seconds = float(parts[4]) if len(parts) > 4 else 20.0
            workloads.append(
                Workload(float(parts[0]), parts[1], parts[2], float(parts[3]), seconds)
            )
    tmp = Path(tempfile.mkdtemp(prefix="predcache-live-vs-sim-"))
    env = dict(os.environ, HOME=str(tmp / "home"), PREDCACHE_MODELS_DIR=str(tmp / "models"),
               PREDCACHE_CACHE_DIR=str(tmp / "cache"))  # fmt: skip
    started = time.monotonic()
    try:
        subprocess.run([*exe(), "train", "--pairs", PAIRS], env=env, check=True,
                       capture_output=True, timeout=300)  # fmt: skip
        results = []
        for w in workloads:
            for strategy in args.strategies.split(","):
                print(f"... {w.label()}, {strategy}", file=sys.stderr, flush=True)
                results.append(one(w, strategy, env, tmp, args.verbose))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"predcache live vs simulated, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{time.monotonic() - started:.0f} s; model delays are the server's simulated "
          "sleeps")  # fmt: skip
    ok = report(results)
    print("every check met" if ok else "some checks not met (see the ok column)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
