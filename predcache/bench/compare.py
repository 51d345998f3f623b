"""``--compare-simulated``: the same workload, simulated, next to the live run.

After an open-loop live run, the simulated bench replays the identical workload (same flags,
same seed) with the server's TTL, model delay and stampede strategy, on the memory backend and
one market path (the accuracy columns are not compared). The two rows go into one results
folder, and :func:`differences` lines them up: a simulation is only trusted where it agrees
with a live run (product brief, "One workload, two worlds").
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from predcache.bench.live_options import LiveOptions
from predcache.bench.runner import BenchOptions, ProgressFactory, run_bench

#: (column, label) compared row by row
COMPARED: tuple[tuple[str, str], ...] = (
    ("requests", "requests"),
    ("model_calls", "model calls"),
    ("hit_ratio", "hit ratio"),
    ("served_from_cache_ratio", "served from cache"),
    ("collapsed", "collapsed"),
    ("stale", "stale"),
    ("latency_mean_ms", "mean ms"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p90_ms", "p90 ms"),
    ("latency_p95_ms", "p95 ms"),
    ("latency_p99_ms", "p99 ms"),
    ("hit_latency_p50_ms", "hit p50 ms"),
)


def simulate(
    opts: LiveOptions,
    run_id: str,
    *,
    notify: Callable[[str], None],
    progress: ProgressFactory | None = None,
) -> dict[str, Any]:
    """The simulated row for the live run's workload and the server's settings."""
    c = opts.compare
    assert c is not None and opts.rate is not None and opts.requests is not None
    scratch = tempfile.mkdtemp(prefix="predcache-compare-")
    try:
        sim = BenchOptions(
            ttls_s=[c.ttl_s], requests=opts.requests, rate=opts.rate, pairs=opts.pairs,
            horizons_s=opts.horizons_s, zipf=opts.zipf, seed=opts.seed, start=opts.start,
            start_s=opts.start_s, model_delay_s=c.model_delay_s, backend=c.backend, out=scratch,
            market_paths=1, stampedes=[c.stampede], stale_grace_s=c.stale_grace_s,
        )  # fmt: skip
        rows = run_bench(sim, notify=notify, progress=progress).rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    row = next(r for r in rows if r["ttl_s"] and r["stampede"] == c.stampede)
    return {**row, "run_id": run_id}


#: (label, live, simulated, simulated - live, relative to live)
Diff = tuple[str, Any, Any, float | None, float | None]


def differences(live: Mapping[str, Any], sim: Mapping[str, Any]) -> list[Diff]:
    """Per compared column: (label, live, simulated, simulated - live, relative to live)."""
    out: list[Diff] = []
    for col, label in COMPARED:
        a, b = live.get(col), sim.get(col)
        if isinstance(a, int | float) and isinstance(b, int | float):
            diff = float(b) - float(a)
            rel = diff / float(a) if a else None
            out.append((label, a, b, diff, rel))
        else:
            out.append((label, a, b, None, None))
    return out
