"""One Redis node vs a 3-primary Redis Cluster: hit latency and hits per second, side by side.

    python benchmarks/cluster.py                 # starts a private node and a private 3+3 cluster
    python benchmarks/cluster.py --seconds 3 --rounds 3 --processes 4

Both topologies run on this machine, on loopback, persistence off, started by the script (the
cluster exactly as the tests start it: ``tests/fixtures/redis_cluster.py``). What is timed is
``Predictor.get_or_compute`` on fresh entries (hits: one ``GET`` each) through ``open_store``,
as ``predcache predict/serve/bench`` open the backend (circuit breaker, pools, timeouts).

- **hit p50**: one thread, rounds interleaved in shuffled order, so noise lands on both alike.
- **hits/s**: ``--processes`` client processes hit ``--keys`` keys (spread over every slot) for
  ``--seconds``; the count of hits they completed, per second. Rounds alternate topologies.

Everything shares this host's cores (clients and all servers), so the figures say what the
cluster costs here, not what it gains on separate hosts: a cluster adds capacity by adding
machines, and one machine's cores are the limit for both columns. Quote the ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo: tests.fixtures

from predcache.clock import SystemClock
from predcache.predictor import HIT, Predictor
from predcache.store import open_store

PAIRS = ("ETH/EUR", "BTC/USD", "SOL/USD")


class ConstantModels:
    """A numpy-free model source; only the warm-up's misses call it."""

    def version(self, pair: str) -> str:
        return "bench1"

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        return None

    def compute(self, pair: str, horizon_s: int, at: float) -> Any:
        from predcache.registry import Computed

        return Computed(100.0, float(int(at // 60) * 60), 100.0)


def keys(n: int) -> list[tuple[str, int]]:
    """``n`` distinct (pair, horizon) keys: their hash tags spread over the cluster's slots."""
    return [(PAIRS[i % len(PAIRS)], 60 + i // len(PAIRS)) for i in range(n)]


def predictor(url: str) -> Predictor:
    return Predictor(
        open_store(url, namespace="cluster-bench"),
        ConstantModels(),
        clock=SystemClock(),
        ttl_s=3600,
    )


@dataclass
class Topology:
    url: str
    ports: list[int]  # every redis-server of it, for their CPU counters


def server_cpu_s(ports: list[int]) -> float:
    """CPU seconds (user + sys) the servers have used so far, from ``INFO cpu``."""
    from tests.fixtures.redis_cluster import command

    total = 0.0
    for port in ports:
        for line in command(port, "INFO", "cpu").decode().splitlines():
            if line.startswith(("used_cpu_sys:", "used_cpu_user:")):
                total += float(line.split(":")[1])
    return total


@contextmanager
def topologies(workdir: Path) -> Iterator[dict[str, Topology]]:
    """A private single node and a private 3-primary / 3-replica cluster, stopped at the end."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise SystemExit("needs redis-server and redis-cli (apt-get install redis-server)")
    from tests.fixtures.redis import free_port
    from tests.fixtures.redis_cluster import LocalCluster, Node

    with ExitStack() as stack:
        node = Node(shutil.which("redis-server") or "", workdir / "single", free_port(), [])
        stack.callback(node.stop)
        node.start()
        cluster = LocalCluster(
            shutil.which("redis-server") or "", shutil.which("redis-cli") or "", workdir
        )
        stack.callback(cluster.stop)
        cluster.start()
        yield {
            "1 node": Topology(node.url, [node.port]),
            "3-primary cluster": Topology(cluster.url, [n.port for n in cluster.nodes]),
        }


def hit_latency(
    urls: dict[str, str], n_keys: int, requests: int, rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """p50 microseconds of one hit, and this process's CPU microseconds per hit, per topology."""
    predictors = {name: predictor(url) for name, url in urls.items()}
    ks = keys(n_keys)
    for p in predictors.values():
        for pair, horizon in ks:
            p.get_or_compute(pair, horizon)
    samples: dict[str, list[float]] = {name: [] for name in urls}
    cpu = dict.fromkeys(urls, 0.0)
    order = list(urls)
    rng = random.Random(1)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            p = predictors[name]
            cpu0 = time.process_time()
            for i in range(requests):
                pair, horizon = ks[i % len(ks)]
                t0 = time.perf_counter()
                served = p.get_or_compute(pair, horizon)
                samples[name].append((time.perf_counter() - t0) * 1e6)
                if served.cache != HIT:
                    raise SystemExit(f"{name}: expected a hit, got {served.cache}")
            cpu[name] += time.process_time() - cpu0
    for p in predictors.values():
        if p.store is not None:
            p.store.close()
    n = rounds * requests
    p50 = {name: statistics.median(v) for name, v in samples.items()}
    return p50, {name: cpu[name] / n * 1e6 for name in urls}


def hit_worker(url: str, n_keys: int, seconds: float, start: Any, out: Any) -> None:
    """One client process: hits for ``seconds`` after every process is ready; reports the count."""
    p = predictor(url)
    ks = keys(n_keys)
    p.get_or_compute(*ks[0])  # connect (a cluster client reads the slot map) before the clock
    start.wait()
    done, i = 0, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pair, horizon = ks[i % len(ks)]
        i += 1
        if p.get_or_compute(pair, horizon).cache == HIT:
            done += 1
    if done != i:
        raise SystemExit(f"{i - done} of {i} requests were not hits: the figures would be wrong")
    out.put(done)


def hits_per_second(url: str, n_keys: int, processes: int, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=hit_worker, args=(url, n_keys, seconds, start, out))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    total = sum(out.get(timeout=60 + seconds) for _ in procs)
    for proc in procs:
        proc.join(timeout=30)
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=600, help="distinct keys (spread over slots)")
    parser.add_argument("--requests", type=int, default=2000, help="hits per topology per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--processes", type=int, default=4, help="client processes for hits/s")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one hits/s round")
    args = parser.parse_args()
    if not (1 <= args.keys <= 100_000 and 1 <= args.requests <= 100_000):
        parser.error("--keys and --requests must be 1..100000")
    if not (1 <= args.rounds <= 20 and 1 <= args.processes <= 32 and 0 < args.seconds <= 60):
        parser.error("--rounds 1..20, --processes 1..32, --seconds up to 60")
    with (
        tempfile.TemporaryDirectory(prefix="predcache-cluster-bench-") as tmp,
        topologies(Path(tmp)) as urls,
    ):
        p50, client_cpu = hit_latency(
            {name: t.url for name, t in urls.items()}, args.keys, args.requests, args.rounds
        )
        rates: dict[str, list[float]] = {name: [] for name in urls}
        busy: dict[str, list[float]] = {name: [] for name in urls}
        for r in range(args.rounds):
            for name in list(urls)[:: 1 if r % 2 == 0 else -1]:  # alternate who goes first
                t = urls[name]
                before = server_cpu_s(t.ports)
                rates[name].append(hits_per_second(t.url, args.keys, args.processes, args.seconds))
                # servers' CPU over the round (includes the workers' start-up: an upper bound)
                busy[name].append((server_cpu_s(t.ports) - before) / args.seconds)
    base = "1 node"
    base_rate = statistics.median(rates[base])
    print(
        f"Predictor hits on {args.keys} keys; p50 over {args.rounds * args.requests} hits in "
        f"{args.rounds} interleaved rounds (1 thread);\nhits/s = median of {args.rounds} rounds "
        f"of {args.processes} client processes x {args.seconds:g}s; all on this host, loopback;\n"
        f"client cpu = this process's CPU per hit; server cores = redis-servers' CPU seconds "
        f"per second\nduring the hits/s rounds (at most; start-up included)"
    )
    print()
    print(
        f"{'topology':<18} {'hit p50 us':>10} {'vs 1 node':>9} {'client cpu us':>13} "
        f"{'hits/s':>7} {'vs 1 node':>9} {'server cores':>12}"
    )
    for name in p50:
        rate = statistics.median(rates[name])
        print(
            f"{name:<18} {p50[name]:>10.1f} {p50[name] / p50[base]:>8.2f}x "
            f"{client_cpu[name]:>13.1f} {rate:>7.0f} {rate / base_rate:>8.2f}x "
            f"{statistics.median(busy[name]):>12.2f}"
        )


if __name__ == "__main__":
    main()
