"""Human output of a simulated bench run: the header that says what is measured and what is
simulated, and the rich table with one row per TTL."""

from __future__ import annotations

import math
from typing import Any

from predcache.bench.runner import BenchOptions, BenchResult
from predcache.bench.workload import Workload
from predcache.config import display_path
from predcache.durations import format_duration, format_latency
from predcache.store import redact_url

#: strategy names short enough for the table (the CSV and JSON keep the full names)
SHORT = {"stale-while-revalidate": "swr", "refresh-ahead": "ahead"}


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:{spec}}{suffix}"


def fmt_age(value: float | None) -> str:
    """Seconds, rounded down: an age just under the TTL never shows as the TTL itself."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{math.floor(value * 10) / 10:.1f}s"


def describe_workload(w: Workload, opts: BenchOptions) -> str:
    """One line: where the traffic comes from and its shape."""
    from predcache.timestamps import iso_utc

    if w.source == "trace":
        return (
            f"trace {opts.trace}: {w.requests:,} requests over {len(w.keys)} keys, "
            f"{w.span_s():,.0f}s of traffic (mean {w.rate:.3g}/s), replayed on a simulated clock"
        )
    horizons = ",".join(format_duration(h) for h in opts.horizons_s)
    return (
        f"{w.requests:,} requests, Poisson at {w.rate:g}/s of simulated time from "
        f"{iso_utc(float(w.times[0]))}, {len(w.keys)} keys ({','.join(opts.pairs)} x {horizons}), "
        f"Zipf s={w.zipf:g}, seed {w.seed}"
    )


def header_lines(opts: BenchOptions, workload: Workload) -> list[str]:
    """What the run measures and what it simulates, before it starts."""
    backend = redact_url(opts.backend)
    delay = format_duration(opts.model_delay_s)
    lines = [
        f"predcache bench (simulated clock): {describe_workload(workload, opts)}",
        f"measured: real {backend} store reads and writes, real model inference on each miss, "
        "accuracy against the market's realised price",
        f"simulated: the clock, and a {delay} model delay in every computation (never slept); "
        f"requests for a key being computed: {', '.join(opts.stampedes)} (--stampede)",
    ]
    if opts.model_fail_rate > 0:
        sie = format_duration(opts.stale_if_error_s) if opts.stale_if_error_s > 0 else "off"
        lines.append(
            f"simulated: {opts.model_fail_rate:.0%} of model calls fail (--model-fail-rate, "
            f"seeded); stale-if-error {sie}"
        )
    return lines


def table_title(result: BenchResult, opts: BenchOptions) -> str:
    """The line above the table; printed as a line of its own, so piped output never wraps it
    mid-sentence (a rich table title wraps at the table's width)."""
    delay = format_duration(opts.model_delay_s)
    fresh = result.rows[0]["mae_fresh_bps"] if result.rows else None
    return (
        f"{result.workload.requests:,} requests per row; latency includes a simulated "
        f"{delay} model delay per computation (collapsed requests wait for it); a fresh "
        f"prediction's MAE is {fmt(fresh, '.2f')} bps"
    )


def render_table(result: BenchResult, opts: BenchOptions) -> Any:
    """The rich table of a run: one row per TTL (narrow enough for an 80-column terminal)."""
    from rich import box
    from rich.table import Table

    table = Table(
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        show_edge=False,
        pad_edge=False,
    )
    sweep = len({r["stampede"] for r in result.rows if r["stampede"]}) > 1
    failing = opts.model_fail_rate > 0
    names: tuple[str, ...] = (
        "TTL", "hit\nratio", "TTL\nmodel", "col-\nlapsed", "model\ncalls", "mean", "p90", "p99",
        "speed\nup", "mean\nage", "added\nbps",
    )  # fmt: skip
    cells = [
        [
            format_duration(float(r["ttl_s"])),
            fmt(r["hit_ratio"], ".3f"),
            fmt(r["expected_hit_ratio"], ".3f"),
            fmt(r["collapsed"] / r["requests"], ".3f"),
            f"{r['model_calls']:,}",
            format_latency(r["latency_mean_ms"]),
            format_latency(r["latency_p90_ms"]),
            format_latency(r["latency_p99_ms"]),
            fmt(r["speedup_vs_no_cache"], ".1f", "x"),
            fmt_age(r["mean_age_s"]),
            fmt(r["added_error_bps"], "+.2f"),
        ]
        for r in result.rows
    ]
    if failing:  # the TTL model assumes a model that never fails: its column makes room
        names = (names[0], names[1], "failed\n/sie", *names[3:])  # sie: stale-if-error
        for row, r in zip(cells, result.rows, strict=True):
            row[2] = f"{r['failed']:,}/{r['stale_if_error']:,}"
    if sweep:  # one row per TTL and strategy: name the strategy after the TTL
        names = (names[0], "stam-\npede", *names[1:-2], names[-1])  # mean age makes room
        for row, r in zip(cells, result.rows, strict=True):
            row.insert(1, SHORT.get(str(r["stampede"]), str(r["stampede"])) if r["ttl_s"] else "-")
            del row[-2]
    for i, name in enumerate(names):
        widest = max([len(row[i]) for row in cells] + [len(w) for w in name.split("\n")])
        table.add_column(name, justify="left" if i == 0 else "right", min_width=widest)
    for row in cells:
        table.add_row(*row)
    return table


def footer_lines(result: BenchResult) -> list[str]:
    """Where the results went and how fast the engine itself ran (wall clock, measured)."""
    files = ", ".join(p.name for p in sorted(result.run_dir.iterdir()))
    wall = sum(float(r["engine_wall_s"] or 0) for r in result.rows)
    requests = sum(int(r["requests"]) for r in result.rows)
    rate = requests / wall if wall > 0 else math.nan
    backend = result.rows[0]["backend"] if result.rows else "-"
    return [
        f"results: {display_path(result.run_dir)}/ ({files})",
        f"engine: {requests:,} requests replayed in {wall:.2f}s wall ({rate:,.0f} requests/s "
        f"on {backend}); read it with `predcache report {result.run_dir}`",
        f"no-cache baseline: {result.baseline_runs:,} real model runs for "
        f"{result.workload.requests:,} requests (each key and market minute computed once, "
        "its measured inference plus the simulated delay for every request of that minute)",
    ]
