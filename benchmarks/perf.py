"""What a cache hit costs on every interface, next to the cheapest thing it could cost.

    python benchmarks/perf.py            # rich table, and results/perf.csv
    python benchmarks/perf.py --json     # the same rows as one JSON list

Each figure is a ratio of two things measured side by side in one run, interleaved so machine
noise lands on both sides alike (the absolute numbers belong to this machine; the ratios are
the claim):

a. in-process hit: ``Predictor.get_or_compute`` on a fresh disk entry vs a raw
   ``diskcache.Cache.get`` of the same JSON entry (p50 over p50);
b. HTTP hit: ``predcache serve`` vs a no-op FastAPI endpoint returning a constant JSON (same
   uvicorn settings, same lean keep-alive client, requests alternated): p50 and p99 ratios, and
   throughput at concurrency 1 and 16;
c. CLI hit: the ``predcache predict`` process vs ``python -c "import typer, diskcache"`` (runs
   alternated, median over median), plus which heavy modules a hit imports;
d. bench engine: simulated requests per second of a 60,000-request replay on the memory and
   disk backends vs raw ``diskcache.Cache.get`` calls per second in the same process;
e. HTTP miss with a simulated 1 s model delay over the HTTP hit (p50 over p50).

Everything runs under a private temporary HOME (models trained there, the default cache dir
there), on loopback, and is removed at the end. The console script is run from this
interpreter's scripts directory (never a shell shim, which would add its own startup cost).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import perf_http as http

HEAVY = ("numpy", "pandas", "fastapi", "matplotlib")
PAIRS = ("ETH/EUR", "BTC/USD", "SOL/USD")


@dataclass
class Row:
    """One line of the table and of results/perf.csv."""

    check: str
    metric: str
    predcache: float
    baseline: float
    unit: str
    ratio: float
    target: str
    ok: bool | None


def _target(ratio: float, op: str, bound: float) -> tuple[str, bool]:
    ok = ratio <= bound if op == "<=" else ratio >= bound
    return f"{op} {bound:g}", ok


def row(
    check: str, metric: str, ours: float, base: float, unit: str, ratio: float, target: str = ""
) -> Row:
    """A row whose ratio is checked against ``target`` ("<= 1.15"), or informational."""
    if not target:
        return Row(check, metric, ours, base, unit, ratio, "", None)
    op, bound = target.split()
    text, ok = _target(ratio, op, float(bound))
    return Row(check, metric, ours, base, unit, ratio, text, ok)


def p(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# --- setup -------------------------------------------------------------------------------------


class Sandbox:
    """A private HOME with trained models, and the real console script."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="predcache-perf-"))
        self.script = str(Path(sysconfig.get_path("scripts")) / "predcache")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREDCACHE_", "XDG_"))}
        env["HOME"] = str(self.tmp / "home")
        env["NO_COLOR"] = "1"
        self.env = env
        self.cli("train", "--json")
        probe = "from predcache import config; print(config.models_dir())"
        self.models_dir = self.python("-c", probe).strip()

    def cli(self, *args: str) -> str:
        return self._run([self.script, *args])

    def python(self, *args: str) -> str:
        return self._run([sys.executable, *args])

    def _run(self, cmd: list[str]) -> str:
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[1:3])} failed: {done.stderr.strip()[-400:]}")
        return done.stdout

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def interleave(
    fns: dict[str, Callable[[], float]], rounds: int, rng: random.Random
) -> dict[str, list[float]]:
    """Call each timing function once per round, in a shuffled order, and collect the samples."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            out[name].append(fns[name]())
    return out


# --- a. in-process hit -------------------------------------------------------------------------


def in_process(box: Sandbox, hits: int, rng: random.Random) -> list[Row]:
    import diskcache

    from predcache.entry import encode_entry
    from predcache.factory import build_predictor
    from predcache.predictor import HIT

    predictor = build_predictor(
        backend="disk", cache_dir=box.tmp / "a-store", models_dir=box.models_dir, ttl_s=3600
    )
    served = predictor.get_or_compute("ETH/EUR", 300)  # the miss that fills the entry
    raw = diskcache.Cache(str(box.tmp / "a-raw"))
    raw.set(served.key, encode_entry(served.entry))
    get_or_compute, raw_get, key, clock = (
        predictor.get_or_compute,
        raw.get,
        served.key,
        time.perf_counter,
    )

    def ours() -> float:
        t0 = clock()
        s = get_or_compute("ETH/EUR", 300)
        dt = clock() - t0
        if s.cache != HIT:
            raise SystemExit(f"in-process: expected a hit, got {s.cache}")
        return dt * 1e6

    def base() -> float:
        t0 = clock()
        value = raw_get(key)
        dt = clock() - t0
        assert value is not None
        return dt * 1e6

    for _ in range(500):  # warm both paths
        ours(), base()
    samples = interleave({"ours": ours, "base": base}, hits, rng)
    predictor.store.close() if predictor.store else None
    raw.close()
    a, b = statistics.median(samples["ours"]), statistics.median(samples["base"])
    return [row("a", "in-process hit p50 vs diskcache.get", a, b, "us", a / b, "<= 1.5")]


# --- b + e. HTTP -------------------------------------------------------------------------------


def over_http(box: Sandbox, hits: int, misses: int, rng: random.Random) -> list[Row]:
    ours_port, noop_port = http.free_port(), http.free_port()
    serve = subprocess.Popen(
        [box.script, "serve", "--port", str(ours_port), "--ttl", "1h", "--model-delay", "1s"],
        env=box.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    noop = None
    try:
        http.wait_until_up(ours_port, serve)
        noop = http.start_noop(noop_port)
        with http.pinned(serve.pid, noop.pid):
            return _http_rows(ours_port, noop_port, hits, misses, rng)
    finally:
        http.stop(serve)
        if noop is not None:
            http.stop(noop)


def _post(pair: str, horizon: str) -> bytes:
    body = json.dumps({"product_id": pair, "horizon": horizon}).encode()
    return http.request_bytes("POST", "/predict", body)


def _http_rows(
    ours_port: int, noop_port: int, hits: int, misses: int, rng: random.Random
) -> list[Row]:
    ours, noop = http.Connection(ours_port), http.Connection(noop_port)
    keys = [("ETH/EUR", "5m")] + [(p, h) for p in PAIRS for h in ("1m", "15m", "1h")]
    miss_ms = []
    for pair, horizon in keys[:misses]:  # e: each first request on a key is a 1 s-model miss
        t0 = time.perf_counter()
        status, headers, _ = ours.send(_post(pair, horizon))
        miss_ms.append((time.perf_counter() - t0) * 1000)
        if status != 200 or "fwd=miss" not in headers.get("cache-status", ""):
            raise SystemExit(f"HTTP: expected a miss for {pair} {horizon}: {status} {headers}")
    requests = {
        "POST": (_post("ETH/EUR", "5m"), http.request_bytes("POST", "/noop", b'{"x": 1}')),
        "GET": (
            http.request_bytes("GET", "/predict?pair=ETH/EUR&horizon=5m"),
            http.request_bytes("GET", "/noop"),
        ),
    }
    rows: list[Row] = []
    hit_p50: dict[str, float] = {}
    for method, (ours_req, noop_req) in requests.items():

        def time_ours(req: bytes = ours_req) -> float:
            t0 = time.perf_counter()
            status, headers, _ = ours.send(req)
            dt = time.perf_counter() - t0
            if status != 200 or "; hit" not in headers.get("cache-status", ""):
                raise SystemExit(f"HTTP: expected a hit, got {status} {headers}")
            return dt * 1000

        def time_noop(req: bytes = noop_req) -> float:
            t0 = time.perf_counter()
            status, _, _ = noop.send(req)
            dt = time.perf_counter() - t0
            if status != 200:
                raise SystemExit(f"no-op endpoint answered {status}")
            return dt * 1000

        interleave({"ours": time_ours, "noop": time_noop}, 300, rng)  # warm-up
        s = interleave({"ours": time_ours, "noop": time_noop}, hits, rng)
        a, b = statistics.median(s["ours"]), statistics.median(s["noop"])
        hit_p50[method] = a
        rows.append(row("b", f"HTTP {method} hit p50 vs no-op", a, b, "ms", a / b, "<= 1.15"))
        a99, b99 = p(s["ours"], 0.99), p(s["noop"], 0.99)
        rows.append(row("b", f"HTTP {method} hit p99 vs no-op", a99, b99, "ms", a99 / b99))
    ours.close()
    noop.close()
    post_ours, post_noop = requests["POST"]
    for conc in (1, 16):
        per_client = max(50, 3000 // conc)
        best = {"ours": 0.0, "noop": 0.0}
        for _ in range(2):  # alternate twice, keep each side's best
            best["ours"] = max(
                best["ours"], http.throughput(ours_port, post_ours, conc, per_client)
            )
            best["noop"] = max(
                best["noop"], http.throughput(noop_port, post_noop, conc, per_client)
            )
        a, b = best["ours"], best["noop"]
        rows.append(row("b", f"HTTP POST hit throughput, concurrency {conc}", a, b, "req/s", a / b))
    m = statistics.median(miss_ms)
    h = hit_p50["POST"]
    rows.append(
        row("e", "HTTP miss (simulated 1 s model) p50 / hit p50", m, h, "ms", m / h, ">= 1000")
    )
    return rows


# --- c. CLI ------------------------------------------------------------------------------------


def cli(box: Sandbox, runs: int, rng: random.Random) -> list[Row]:
    hit_cmd = [box.script, "predict", "ETH/EUR", "--horizon", "5m"]
    first = box.cli(*hit_cmd[1:])  # fills the entry (or is already a hit)
    if "MISS" not in first and "HIT" not in first:
        raise SystemExit(f"unexpected predict output: {first}")
    base_cmd = [sys.executable, "-c", "import typer, diskcache"]

    def timed(cmd: list[str], expect: str) -> Callable[[], float]:
        def go() -> float:
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=box.env, capture_output=True, text=True, timeout=60)
            dt = time.perf_counter() - t0
            if done.returncode != 0 or expect not in done.stdout:
                raise SystemExit(f"CLI run failed: {done.stderr.strip()[-300:]}")
            return dt * 1000

        return go

    fns = {"ours": timed(hit_cmd, " HIT "), "base": timed(base_cmd, "")}
    interleave(fns, 3, rng)  # warm the page cache and .pyc files
    s = interleave(fns, runs, rng)
    a, b = statistics.median(s["ours"]), statistics.median(s["base"])
    heavy = heavy_imports(box, hit_cmd)
    rows = [row("c", "CLI hit process vs import typer, diskcache", a, b, "ms", a / b, "<= 1.2")]
    rows.append(
        Row("c", f"heavy modules on a CLI hit: {', '.join(heavy) or 'none'}", len(heavy), 0,
            "modules", float(len(heavy)), "== 0", not heavy)
    )  # fmt: skip
    return rows


def heavy_imports(box: Sandbox, hit_cmd: list[str]) -> list[str]:
    """Which of :data:`HEAVY` a CLI hit imports (``python -X importtime`` on the real script)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *hit_cmd],
        env=box.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 or " HIT " not in done.stdout:
        raise SystemExit(f"importtime run failed: {done.stderr.strip()[-300:]}")
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return [m for m in HEAVY if m in names]


# --- d. bench engine ---------------------------------------------------------------------------


def engine(box: Sandbox, requests: int) -> list[Row]:
    import diskcache

    from predcache.bench.engine import replay
    from predcache.bench.workload import DEFAULT_START, parse_start, synthetic
    from predcache.registry import ModelRegistry

    registry = ModelRegistry(Path(box.models_dir), auto_train=False)
    keys = [(pair, h) for pair in PAIRS for h in (60, 300, 900)]
    workload = synthetic(keys, requests=requests, seed=0, start=parse_start(DEFAULT_START))
    raw = diskcache.Cache(str(box.tmp / "d-raw"))
    raw.set("k", json.dumps({"pair": "ETH/EUR", "predicted_price": 1.0, "created_at": 0.0}))

    def raw_rate() -> float:
        get, t0 = raw.get, time.perf_counter()
        for _ in range(requests):
            get("k")
        return requests / (time.perf_counter() - t0)

    rows = []
    for backend, ttl in (("memory", 90.0), ("disk", 30.0), ("disk", 90.0)):
        base = raw_rate()
        rep = replay(
            workload,
            registry,
            ttl_s=ttl,
            model_delay_s=1.0,
            backend=backend,
            cache_dir=str(box.tmp / "d-store"),
            namespace=f"perf-{backend}-{ttl:g}",
        )
        ours = requests / rep.wall_s
        base = max(base, raw_rate())  # the raw rate measured right before and after
        hit = float(rep.hit.mean())
        metric = f"bench engine {backend} ttl {ttl:g}s ({hit:.0%} hits) vs diskcache.get"
        rows.append(row("d", metric, ours, base, "req/s", ours / base, ">= 0.33"))
    raw.close()
    return rows


# --- output ------------------------------------------------------------------------------------


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        for r in rows:
            w.writerow({**asdict(r), "ratio": f"{r.ratio:.3f}"})


def print_table(rows: list[Row], header: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=header, title_justify="left")
    for name, justify in (("", "left"), ("measure", "left"), ("predcache", "right"),
                          ("baseline", "right"), ("unit", "left"), ("ratio", "right"),
                          ("target", "left"), ("ok", "left")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        ok = "" if r.ok is None else ("[green]yes[/]" if r.ok else "[red]NO[/]")
        table.add_row(r.check, r.metric, _num(r.predcache), _num(r.baseline), r.unit,
                      f"{r.ratio:.2f}", r.target, ok)  # fmt: skip
    Console(width=140).print(table)


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON list")
    parser.add_argument("--hits", type=int, default=2000, help="timed hits per side (a, b)")
    parser.add_argument("--misses", type=int, default=5, help="1 s-model misses over HTTP (e)")
    parser.add_argument("--cli-runs", type=int, default=30, help="timed processes per side (c)")
    parser.add_argument("--requests", type=int, default=60_000, help="bench replay length (d)")
    parser.add_argument("--out", default="results/perf.csv", help="where the CSV goes")
    parser.add_argument("--seed", type=int, default=1, help="seed for the interleaving order")
    parser.add_argument(
        "--only",
        default="abcde",
        help="run only these checks, e.g. --only c (b and e run together)",
    )
    args = parser.parse_args()
    if not (100 <= args.hits <= 20_000 and 1 <= args.misses <= 10 and 5 <= args.cli_runs <= 200
            and 1000 <= args.requests <= 200_000):  # fmt: skip
        parser.error("bounds: --hits 100..20000, --misses 1..10, --cli-runs 5..200, "
                     "--requests 1000..200000")  # fmt: skip
    rng = random.Random(args.seed)
    started = time.perf_counter()
    box = Sandbox()
    try:
        rows: list[Row] = []
        if "a" in args.only:
            rows += in_process(box, args.hits, rng)
        if "b" in args.only or "e" in args.only:
            rows += over_http(box, args.hits, args.misses, rng)
        if "c" in args.only:
            rows += cli(box, args.cli_runs, rng)
        if "d" in args.only:
            rows += engine(box, args.requests)
    finally:
        box.close()
    write_csv(rows, Path(args.out))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
        return
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"predcache perf, {when}, {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        f"{time.perf_counter() - started:.0f} s; model delay is simulated"
    )
    print_table(rows, header)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
