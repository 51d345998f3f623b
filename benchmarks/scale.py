"""The bench at scale (issue #11): whole-command time, engine replay and peak RSS by requests.

    python benchmarks/scale.py                         # 100k, 1M, 10M requests and the checks
    python benchmarks/scale.py --sizes 100000,2000000  # other sizes
    python benchmarks/scale.py --quick                 # 100k and 2M only, no 10M

Each figure is one ``predcache bench`` process run under ``/usr/bin/time -f "%e %M"`` (wall
seconds of the whole command, peak resident set of that process and nothing else), its
``--json`` rows read back for the engine's own replay time (``engine_wall_s``). Printed:

1. the issue's table: ``--ttl 90 --rate 50 --backend memory --jobs 1`` at each size, with the
   ratio ``whole / (1.5 x engine + 3 s)`` (at most 1 meets the issue) and peak RSS against the
   smallest size (at most 1.5 meets it);
2. how it grows with keys (more pairs and horizons), TTLs (a four-TTL sweep, ``--jobs 1`` and
   ``--jobs 2``: the counts must match) and market paths (``--market-paths 1, 32, 256``);
3. a 2,000,000-row trace as CSV and as Parquet: peak RSS of each replay (under 400 MB meets the
   issue) and whether their summaries' counts agree; and a trace with a bad row at line
   1,500,001 (one line, exit 2).

Timing on a shared machine is noisy: the load average is printed before and after; re-run on a
quiet machine for figures to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

COUNTS = ("ttl_s", "stampede", "requests", "hits", "misses", "collapsed", "model_calls")
BASE = ["--rate", "50", "--backend", "memory", "--json"]
MORE_KEYS = ["--pairs", "ETH/EUR,BTC/USD,SOL/USD,ETH/USD,BTC/EUR", "--horizons", "1m,5m,15m,1h"]


def timed(args: list[str], out: Path) -> tuple[float, float, list[dict[str, Any]], str]:
    """(wall s, peak RSS MB, JSON rows, stderr's last line) of one ``predcache bench``."""
    stats = out / "time.txt"
    cmd = ["/usr/bin/time", "-o", str(stats), "-f", "%e %M", sys.executable, "-m", "predcache"]
    proc = subprocess.run(
        [*cmd, "bench", *args, "--out", str(out / "results")],
        capture_output=True,
        text=True,
        check=False,
    )
    wall, rss_kb = stats.read_text().split()[-2:]
    rows = json.loads(proc.stdout) if proc.returncode == 0 else []
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    return float(wall), int(rss_kb) / 1024, rows, f"exit {proc.returncode}: {last}"


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def row_of(rows: list[dict[str, Any]], ttl: float) -> dict[str, Any]:
    return next(r for r in rows if r["ttl_s"] == ttl)


def sizes_table(sizes: list[int], tmp: Path) -> None:
    print(
        "| requests | whole command | engine replay (TTL 90) | peak RSS "
        "| whole / (1.5 engine + 3 s) | RSS / smallest |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    first_rss = None
    for n in sizes:
        wall, rss, rows, status = timed(
            ["--ttl", "90", "--requests", str(n), "--jobs", "1", *BASE], tmp
        )
        if not rows:
            print(f"| {n:,} | failed: {status} |")
            continue
        engine = row_of(rows, 90)["engine_wall_s"]
        first_rss = first_rss or rss
        print(
            f"| {n:,} | {wall:.1f} s | {engine:.1f} s ({n / engine / 1000:.0f}k req/s) | "
            f"{rss:.0f} MB | {wall / (1.5 * engine + 3):.2f} | {rss / first_rss:.2f} |"
        )


def growth(n: int, tmp: Path) -> None:
    print(f"\n{n:,} requests, --backend memory, by keys, TTLs, jobs and market paths:\n")
    print("| run | whole command | sum of engine replays | peak RSS |")
    print("| --- | --- | --- | --- |")
    cases = [
        ("9 keys, TTL 90 (the table's)", ["--ttl", "90", "--jobs", "1"]),
        ("20 keys (5 pairs x 4 horizons), TTL 90", ["--ttl", "90", "--jobs", "1", *MORE_KEYS]),
        ("TTL 0,30,90,300, --jobs 1", ["--ttl", "0,30,90,300", "--jobs", "1"]),
        ("TTL 0,30,90,300, --jobs 2", ["--ttl", "0,30,90,300", "--jobs", "2"]),
        ("TTL 90, --market-paths 1", ["--ttl", "90", "--jobs", "1", "--market-paths", "1"]),
        ("TTL 90, --market-paths 256", ["--ttl", "90", "--jobs", "1", "--market-paths", "256"]),
    ]
    timed(["--ttl", "90", "--requests", "10", *MORE_KEYS, *BASE], tmp)  # trains new pairs once
    counts, ratios = {}, {}
    for label, args in cases:
        wall, rss, rows, status = timed([*args, "--requests", str(n), *BASE], tmp)
        if not rows:
            print(f"| {label} | failed: {status} | | |")
            continue
        engine = sum(r["engine_wall_s"] for r in rows)
        counts[label] = [{k: r[k] for k in COUNTS} for r in rows]
        ratios[label] = [(r["ttl_s"], r["hit_ratio"], r["expected_hit_ratio"]) for r in rows]
        print(f"| {label} | {wall:.1f} s | {engine:.1f} s | {rss:.0f} MB |")
    one, two = (counts.get(f"TTL 0,30,90,300, --jobs {j}") for j in (1, 2))
    print(f"\n--jobs 2 counts == --jobs 1 counts: {one == two and one is not None}")
    for r in one or []:
        print(f"  {r}")
    for ttl, measured, model in ratios.get("TTL 0,30,90,300, --jobs 1", []):
        gap = abs(measured - model)
        print(f"  TTL {ttl}: hit ratio {measured} vs TTL model {model}: within 0.01: {gap <= 0.01}")


def write_traces(n: int, tmp: Path, bad_line: int | None = None) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    times = 1_748_822_400.0 + np.cumsum(rng.exponential(1 / 50, n))
    keys = [(p, h) for p in ("ETH/EUR", "BTC/USD", "SOL/USD") for h in ("1m", "5m", "15m")]
    probs = 1 / np.arange(1, 10)
    pick = rng.choice(9, size=n, p=probs / probs.sum())
    pairs = np.array([p for p, _ in keys])[pick]
    horizons = np.array([h for _, h in keys])[pick].astype(object)
    if bad_line is not None:
        horizons[bad_line - 2] = "5 fortnights"  # the header is line 1
    table = pa.table({"timestamp": times, "pair": pairs, "horizon": horizons.astype(str)})
    csv_path, parquet_path = tmp / f"trace-{n}.csv", tmp / f"trace-{n}.parquet"
    pq.write_table(table, parquet_path)
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, csv_path)
    return csv_path, parquet_path


def traces(n: int, tmp: Path) -> None:
    print(f"\nA {n:,}-row trace, CSV and Parquet (--ttl 0,90 --market-paths 32):\n")
    print("| trace | whole command | peak RSS |")
    print("| --- | --- | --- |")
    got = {}
    for path in write_traces(n, tmp):
        args = ["--trace", str(path), "--ttl", "0,90", "--backend", "memory", "--json"]
        wall, rss, rows, status = timed([*args, "--jobs", "1"], tmp)
        got[path.suffix] = [{k: r[k] for k in (*COUNTS, "mean_age_s", "mae_served_bps")}
                            for r in rows]  # fmt: skip
        print(f"| {path.suffix[1:]} | {wall:.1f} s | {rss:.0f} MB | {status if not rows else ''}")
    print(f"\nsame summary counts, ages and errors: {got['.csv'] == got['.parquet']}")
    bad_csv, _ = write_traces(1_600_000, tmp, bad_line=1_500_001)
    proc = subprocess.run(
        [sys.executable, "-m", "predcache", "bench", "--trace", str(bad_csv), "--backend",
         "memory", "--out", str(tmp / "bad")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    print(f"bad row at line 1,500,001: exit {proc.returncode}: {proc.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--quick", action="store_true", help="100k and 2M only")
    parser.add_argument("--growth", type=int, default=1_000_000, help="requests for part 2")
    parser.add_argument("--trace-rows", type=int, default=2_000_000)
    args = parser.parse_args()
    sizes = [100_000, 2_000_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="predcache-scale-"))
    try:
        print(f"before: {load()}, {os.cpu_count()} cores\n")
        sizes_table(sizes, tmp)
        growth(args.growth, tmp)
        traces(args.trace_rows, tmp)
        print(f"\nafter: {load()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
