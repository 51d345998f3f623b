"""Hit throughput per core against the ASGI floor, measured with wrk (issue #20).

One command, a few minutes::

    python benchmarks/throughput.py                 # 3 interleaved rounds of 5 s per server
    python benchmarks/throughput.py --rounds 5 --duration 8

Every server is a uvicorn process from this venv on loopback (httptools + uvloop, access log
off): a raw ASGI no-op app (the floor), a no-op FastAPI endpoint, and ``predcache serve`` hits
on the memory, disk and Redis backends (Redis: a private ``redis-server`` on a free port, when
one is installed), plus the raw app and the disk backend with ``--workers 2``. wrk (Debian's
``wrk`` package: ``sudo apt-get install wrk``) drives each in turn with the same request, a
POST /predict for one warm key, 1 thread and 8 keep-alive connections (as the issue measured).
Rounds are interleaved (round r runs the servers in a rotated order), so a noisy neighbour on a
shared machine hits every server alike; the table gives medians over rounds and the ratio of
each median to the raw app's. For predcache servers the script also checks, from each server's
own /metrics, that every request it answered during the run was a hit, and counts non-2xx.
It also gives each server's CPU time (user + system, its processes and their children, from
/proc) per request answered: on a shared machine that moves less with the neighbours' load
than requests/s does, though it still grows when the server is descheduled more often.

wrk and the servers share the machine's cores: on a 2-core machine, ``--workers 2`` competes
with wrk itself, so its figure is a lower bound of what two cores give.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from perf_http import free_port, stop, wait_until_up

HERE = Path(__file__).resolve().parent
BODY = '{"product_id": "ETH/EUR", "horizon": "5m"}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""
_ENTRY = "from predcache.cli import main; main()"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass
class Server:
    """One server under test: its name, process and whether it is predcache (checked)."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    predcache: bool
    runs: list[Run] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    #: the server's CPU time per request of this run (microseconds)
    cpu_us: float = 0.0
    hits: float | None = None
    answered: float | None = None


def need_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(
            "benchmarks/throughput.py: wrk not found. Install it (Debian/Ubuntu: "
            "`sudo apt-get install wrk`; macOS: `brew install wrk`) and run again."
        )
    return wrk


def start(cmd: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    wait_until_up(port, proc, timeout_s=60)
    return proc


def counts(url: str) -> tuple[float, float]:
    """(hits, requests) from one scrape of the server's /metrics (one scrape: consistent)."""
    found: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("predcache_cache_hits_total", "predcache_requests_total"):
            found[name] = float(value)
    if len(found) != 2:
        raise SystemExit(f"hit and request counters missing from {url}/metrics")
    return found["predcache_cache_hits_total"], found["predcache_requests_total"]


def warm(server: Server) -> None:
    """One miss (the model runs), then the same request must be a hit."""
    for _ in range(2):
        r = httpx.post(f"{server.url}/predict", content=BODY, timeout=60)
        r.raise_for_status()
    if not r.headers.get("cache-status", "").startswith("predcache; hit"):
        raise SystemExit(f"{server.name}: the warm key is not a hit: {r.headers}")


def parse_wrk(out: str) -> Run:
    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            raise SystemExit(f"cannot read the {pct}% latency from wrk:\n{out}")
        return float(m.group(1)) * _UNITS[m.group(2)]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    done = re.search(r"^\s+(\d+) requests in", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if rps is None or done is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    non_2xx = int(bad.group(1)) if bad else 0
    if errors:
        print(f"  wrk: {errors.group(0).strip()}", file=sys.stderr)
    return Run(float(rps.group(1)), latency("50"), latency("99"), int(done.group(1)), non_2xx)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and every process under it (workers), from /proc."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


def drive(wrk: str, lua: Path, server: Server, seconds: float, connections: int) -> Run:
    before = counts(server.url) if server.predcache else None
    cmd = [
        wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(lua),
        f"{server.url}/predict",
    ]  # fmt: skip
    cpu_before = cpu_seconds(server.proc.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    cpu = cpu_seconds(server.proc.pid) - cpu_before
    run = parse_wrk(out.stdout)
    run.cpu_us = cpu / max(run.requests, 1) * 1e6
    if before is not None:
        time.sleep(0.2)  # the last request wrk gave up on may still be finishing
        after = counts(server.url)
        run.hits, run.answered = after[0] - before[0], after[1] - before[1]
    return run


def start_servers(tmp: Path, redis_port: int | None) -> list[Server]:
    env = dict(os.environ)
    env["PREDCACHE_MODELS_DIR"] = str(tmp / "models")
    env.pop("PREDCACHE_BACKEND", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    py = sys.executable
    servers: list[Server] = []

    def add(name: str, cmd: Callable[[int], list[str]], predcache: bool) -> None:
        port = free_port()
        servers.append(Server(name, port, start(cmd(port), port, env), predcache))

    floor = str(HERE / "floor_apps.py")
    add("raw ASGI no-op", lambda p: [py, floor, "raw", str(p)], False)
    add("no-op FastAPI", lambda p: [py, floor, "fastapi", str(p)], False)

    def serve(*args: str) -> Callable[[int], list[str]]:
        # a TTL longer than the whole run: every answer under load must be a hit
        return lambda p: [py, "-c", _ENTRY, "serve", "--port", str(p), "--ttl", "1h", *args]

    add("memory hit (predcache)", serve("--backend", "memory"), True)
    add("disk hit (predcache)", serve("--backend", "disk", "--cache-dir", str(tmp / "d1")), True)
    if redis_port is not None:
        add("redis hit (predcache)", serve("--backend", f"redis://127.0.0.1:{redis_port}/0"), True)
    raw2 = [py, "-m", "uvicorn", "floor_apps:raw", "--app-dir", str(HERE), "--workers", "2"]
    add(
        "raw ASGI no-op, 2 workers",
        lambda p: [*raw2, "--port", str(p), "--log-level", "warning", "--no-access-log"],
        False,
    )
    disk2 = serve("--backend", "disk", "--cache-dir", str(tmp / "d2"), "--workers", "2")
    add("disk hit (predcache), 2 workers", disk2, True)
    for s in servers:
        if s.predcache:
            warm(s)
    return servers


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes] | None, int | None]:
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        print("redis-server not found: the Redis row is left out", file=sys.stderr)
        return None, None
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(port, proc)
    return proc, port


def table(servers: list[Server]) -> None:
    raw = next(s for s in servers if s.name == "raw ASGI no-op")
    raw_rps = statistics.median(r.rps for r in raw.runs)
    raw_p99 = statistics.median(r.p99_ms for r in raw.runs)
    head = f"{'server':<32}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'x raw':>7}{'p99 x raw':>10}"
    print(head + f"{'CPU us/req':>11}  non-2xx  hits/answered  req/s per round")
    for s in servers:
        rps = statistics.median(r.rps for r in s.runs)
        p50 = statistics.median(r.p50_ms for r in s.runs)
        p99 = statistics.median(r.p99_ms for r in s.runs)
        cpu = statistics.median(r.cpu_us for r in s.runs)
        bad = sum(r.non_2xx for r in s.runs)
        hits = (
            f"{sum(r.hits or 0 for r in s.runs):.0f}/{sum(r.answered or 0 for r in s.runs):.0f}"
            if s.predcache
            else "-"
        )
        rounds = ", ".join(f"{r.rps:.0f}" for r in s.runs)
        print(
            f"{s.name:<32}{rps:>9.0f}{p50:>8.2f}{p99:>8.2f}{rps / raw_rps:>7.2f}"
            f"{p99 / raw_p99:>10.2f}{cpu:>11.1f}  {bad:>7}  {hits:>13}  {rounds}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections (8)")
    args = parser.parse_args()
    wrk = need_wrk()
    load_at_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="predcache-throughput-"))
    redis_proc, redis_port = start_redis(tmp)
    servers: list[Server] = []
    try:
        print("training the models (once)...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-c", _ENTRY, "train", "--models-dir", str(tmp / "models")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        servers = start_servers(tmp, redis_port)
        lua = tmp / "post.lua"
        lua.write_text(LUA)
        total = args.rounds * len(servers) * args.duration
        print(
            f"wrk {args.rounds} rounds x {len(servers)} servers x {args.duration:g} s "
            f"(~{total:.0f} s), 1 thread, {args.connections} connections, POST /predict",
            file=sys.stderr,
        )
        for r in range(args.rounds):
            order = servers[r % len(servers) :] + servers[: r % len(servers)]
            for s in order:
                s.runs.append(drive(wrk, lua, s, args.duration, args.connections))
                time.sleep(0.5)  # let the previous server's sockets settle
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)
        print(
            f"\nwrk 1 thread, {args.connections} connections, {args.duration:g} s per run, "
            f"median of {args.rounds} interleaved rounds; os.cpu_count()={os.cpu_count()}; "
            f"load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        )
        table(servers)
    finally:
        for s in servers:
            stop(s.proc)
        if redis_proc is not None:
            stop(redis_proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
