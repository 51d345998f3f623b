"""Hit latency on the memory, disk and redis backends, measured side by side in one process.

    python benchmarks/backends.py                       # starts a private redis-server
    python benchmarks/backends.py --redis redis://127.0.0.1:6379/0

What is timed: one ``Predictor.get_or_compute`` call on a fresh entry (a cache hit), through
``open_store`` exactly as ``predcache predict/serve/bench`` open it (Redis with its circuit
breaker, connection pool and timeouts; disk with diskcache in a private temp dir). The model
source is a constant stand-in: a hit never calls the model, so its speed does not matter.
Rounds interleave the backends in a shuffled order, so machine noise lands on all of them
alike; the ratios are the figure to quote, the absolute numbers belong to this machine.
Without ``--redis``, a redis-server on a free loopback port, persistence off, is started and
stopped by the script (Redis over loopback TCP: no network latency is included).
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from predcache.clock import SystemClock
from predcache.predictor import HIT, Predictor
from predcache.registry import Computed
from predcache.store import open_store, redact_url

PAIRS = ("ETH/EUR", "BTC/USD", "SOL/USD")
HORIZONS = (60, 300, 900)


class ConstantModels:
    """A numpy-free model source; only misses (the warm-up) call it."""

    def version(self, pair: str) -> str:
        return "bench1"

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        return None

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        return Computed(100.0, float(int(at // 60) * 60), 100.0)


@contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, persistence off."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: pass --redis redis://host:port/db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="predcache-bench-redis-")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *args, "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.02)
        else:
            raise SystemExit("redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def run(redis_url: str, requests: int, rounds: int, seed: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="predcache-bench-disk-"))
    specs = {"memory": "memory", "disk": f"disk://{tmp}", "redis": redis_url}
    predictors = {
        name: Predictor(
            open_store(spec, namespace="backends-bench"),
            ConstantModels(),
            clock=SystemClock(),
            ttl_s=3600,
        )
        for name, spec in specs.items()
    }
    keys = [(p, h) for p in PAIRS for h in HORIZONS]
    for predictor in predictors.values():  # warm: one miss per key, then every call is a hit
        for pair, horizon in keys:
            predictor.get_or_compute(pair, horizon)
    samples: dict[str, list[float]] = {name: [] for name in predictors}
    rng = random.Random(seed)
    order = list(predictors)
    try:
        for _ in range(rounds):
            rng.shuffle(order)
            for name in order:
                predictor = predictors[name]
                for i in range(requests):
                    pair, horizon = keys[i % len(keys)]
                    t0 = time.perf_counter()
                    served = predictor.get_or_compute(pair, horizon)
                    samples[name].append((time.perf_counter() - t0) * 1e6)
                    if served.cache != HIT:
                        raise SystemExit(f"{name}: expected a hit, got {served.cache}")
    finally:
        for predictor in predictors.values():
            if predictor.store is not None:
                predictor.store.clear()
                predictor.store.close()
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(samples["memory"])
    n = rounds * requests
    print(f"hit latency of Predictor.get_or_compute, {n} hits per backend, {rounds} interleaved")
    print(f"rounds; redis = {redact_url(redis_url)} over loopback TCP (no network hop)")
    print()
    print(f"{'backend':<8} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'p50 / memory':>13}")
    for name, values in samples.items():
        q = statistics.quantiles(values, n=100)
        p50 = statistics.median(values)
        print(f"{name:<8} {p50:>8.1f} {q[89]:>8.1f} {q[98]:>8.1f} {p50 / base:>12.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis", help="use this Redis instead of starting a private one")
    parser.add_argument("--requests", type=int, default=2000, help="hits per backend per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seed", type=int, default=1, help="seed for the round order")
    args = parser.parse_args()
    if not 1 <= args.requests <= 100_000 or not 1 <= args.rounds <= 100:
        parser.error("--requests must be 1..100000 and --rounds 1..100")
    if args.redis:
        run(args.redis, args.requests, args.rounds, args.seed)
    else:
        with private_redis() as url:
            run(url, args.requests, args.rounds, args.seed)


if __name__ == "__main__":
    main()
