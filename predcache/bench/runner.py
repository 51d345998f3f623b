"""``predcache bench`` in simulated mode, as one function: :func:`run_bench`.

The CLI parses options into :class:`BenchOptions` and calls :func:`run_bench`, which builds the
workload once, checks every key against the trained models, computes the accuracy
counterfactuals once, replays the workload for each TTL (plus a ``ttl 0`` baseline when the sweep
has none, for ``speedup_vs_no_cache``), and writes the results folder. It returns data; the CLI
renders it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from predcache.bench import results
from predcache.bench.accuracy import DEFAULT_PATHS, Scorer, plugin_scorer, scorer
from predcache.bench.baseline import METHOD as BASELINE_METHOD
from predcache.bench.histogram import EXACT_LIMIT, RELATIVE_ERROR
from predcache.bench.requests_out import join_parts
from predcache.bench.summary import number, summarise_stats
from predcache.bench.sweep import RowResult, RowSpec, run_rows
from predcache.bench.ttl_model import expected_outcomes_for_workload
from predcache.bench.workload import Workload, load_trace, synthetic
from predcache.durations import format_duration
from predcache.registry import ModelRegistry, ModelSource
from predcache.stampede import DEFAULT_STRATEGY, Strategy
from predcache.store import open_store, redact_url

#: Called once per replay with (description, total requests); returns a "done so far" callback.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass(frozen=True)
class BenchOptions:
    """Validated options of a simulated bench run (see ``predcache bench --help``)."""

    ttls_s: list[float]
    requests: int
    rate: float
    pairs: list[str]
    horizons_s: list[int]
    zipf: float
    seed: int
    start: str
    start_s: float
    model_delay_s: float
    backend: str
    out: str
    trace: str | None = None
    cache_dir: str | None = None
    models_dir: str | None = None
    size_limit: int | None = None
    #: market paths the accuracy cost is averaged over (see predcache.bench.accuracy)
    market_paths: int = DEFAULT_PATHS
    #: False; True or "" for requests.csv in the run folder; else a path (.csv or .parquet)
    save_requests: bool | str = False
    label: str | None = None
    #: ``--model SPEC`` (a model function of the user's own) and its version; None: the toy model
    model: str | None = None
    model_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the stampede strategies to sweep (each TTL runs under each)
    stampedes: list[Strategy] = field(default_factory=lambda: [DEFAULT_STRATEGY])
    #: stale-while-revalidate's grace after expiry (0 unless that strategy is swept)
    stale_grace_s: float = 0.0
    #: at most this many model computations at once, the rest queue (None: unlimited)
    model_concurrency: int | None = None
    #: simulated: this fraction of model calls fail (seeded by the workload's seed)
    model_fail_rate: float = 0.0
    #: a failed call is answered with an entry expired less than this long ago (0: off)
    stale_if_error_s: float = 0.0
    #: rows run in this many processes at once (1: one after the other, in this process;
    #: None: the number of cores once the rows hold PARALLEL_MIN requests, else 1)
    jobs: int | None = 1

    def command(self) -> str:
        """The command line that repeats this run (:func:`results.command_line`)."""
        synthetic = self.trace is None
        grace = format_duration(self.stale_grace_s) if self.stale_grace_s > 0 else None
        sie = format_duration(self.stale_if_error_s) if self.stale_if_error_s > 0 else None
        return results.command_line(
            [
                ("--ttl", self.ttls_s),
                ("--trace", self.trace),
                ("--requests", self.requests if synthetic else None),
                ("--rate", self.rate if synthetic else None),
                ("--pairs", self.pairs if synthetic else None),
                (
                    "--horizons",
                    [format_duration(h) for h in self.horizons_s] if synthetic else None,
                ),
                ("--zipf", self.zipf if synthetic else None),
                ("--seed", self.seed if synthetic else None),
                ("--start", self.start if synthetic else None),
                ("--model-delay", format_duration(self.model_delay_s)),
                ("--stampede", list(self.stampedes)),
                ("--stale-grace", grace),
                ("--model-concurrency", self.model_concurrency),
                ("--model-fail-rate", self.model_fail_rate or None),
                ("--stale-if-error", sie),
                ("--backend", self.backend),
                ("--cache-dir", self.cache_dir),
                ("--models-dir", self.models_dir),
                ("--model", self.model),
                ("--model-version", self.model_version),
                (
                    "--market-paths",
                    self.market_paths if self.market_paths != DEFAULT_PATHS else None,
                ),
                ("--size-limit", self.size_limit),
                ("--out", self.out),
                ("--save-requests", True if self.save_requests == "" else self.save_requests),
                ("--label", self.label or None),
            ]
        )

    def default_label(self) -> str:
        ttls = "-".join(f"{number(t)}" for t in self.ttls_s)
        source = f"trace-{Path(self.trace).stem}" if self.trace else "sim"
        return f"{source}-ttl{ttls}-{redact_url(self.backend).split(':')[0]}"


@dataclass(frozen=True)
class BenchResult:
    """What a run produced: one summary row per TTL and strategy, and where it was written."""

    rows: list[dict[str, Any]]
    run_dir: Path
    workload: Workload
    models: dict[str, str]
    #: real model computations the no-cache row made (it computes each key and minute once)
    baseline_runs: int = 0


def build_workload(opts: BenchOptions) -> Workload:
    """The trace, or the synthetic traffic over pairs x horizons (pairs-major)."""
    if opts.trace is not None:
        return load_trace(opts.trace)
    keys = [(pair, h) for pair in opts.pairs for h in opts.horizons_s]
    return synthetic(
        keys,
        requests=opts.requests,
        rate=opts.rate,
        zipf=opts.zipf,
        seed=opts.seed,
        start=opts.start_s,
    )


def run_bench(
    opts: BenchOptions,
    *,
    notify: Callable[[str], None],
    progress: ProgressFactory | None = None,
    on_ready: Callable[[Workload], None] | None = None,
) -> BenchResult:
    """Run every TTL of ``opts`` over one workload and write the results folder.

    ``on_ready`` sees the workload once it is built and checked, before the first replay (the
    CLI prints its header there)."""
    from predcache.factory import select_models

    registry = select_models(opts.model, opts.model_version, opts.models_dir, notify=notify)
    workload = build_workload(opts)
    for pair, horizon in workload.keys:
        registry.check_horizon(pair, horizon)  # a clear error (and auto-training) up front
    if isinstance(registry, ModelRegistry):
        score = scorer(workload, registry, paths=opts.market_paths)
    else:  # --model: scored on the one market path its market helper reads
        score = plugin_scorer(workload, registry)
    models = {pair: registry.version(pair) for pair in workload.pairs}
    if any(t > 0 for t in opts.ttls_s):  # a bad spec or an unreachable backend fails here
        open_store(opts.backend, cache_dir=opts.cache_dir, namespace="bench-check").close()
    if on_ready is not None:
        on_ready(workload)
    run_dir = results.new_run_dir(opts.out, opts.label or opts.default_label())
    try:
        return _sweep(opts, registry, workload, score, models, run_dir, progress)
    except BaseException:
        if not any(run_dir.iterdir()):
            run_dir.rmdir()  # leave no empty folder behind a failed run
        raise


def _sweep(
    opts: BenchOptions,
    registry: ModelSource,
    workload: Workload,
    score: Scorer,
    models: dict[str, str],
    run_dir: Path,
    progress: ProgressFactory | None,
) -> BenchResult:
    ttls = sorted(opts.ttls_s)
    token = uuid.uuid4().hex[:8]
    first = opts.stampedes[0]
    # one row per TTL and strategy; ttl 0 (no cache, no strategy at work) once, in its place
    # in the sweep, or after the cached rows when the sweep has none (for speedup_vs_no_cache)
    configs = [(t, s) for t in ttls for s in (opts.stampedes if t > 0 else [None])]
    target = _requests_target(opts, run_dir)
    specs = [
        RowSpec(
            t, s or first, s, f"ttl {format_duration(t)} {s}" if s else "no cache",
            f"bench-{token}-ttl{number(t)}-{s or first}",
            None if target is None else str(run_dir / f".requests-{i}{target.suffix}"),
            # without failures every row answers every request: the fresh errors are the
            # no-cache row's
            score_fresh=t == 0 or opts.model_fail_rate > 0,
        )
        for i, (t, s) in enumerate(configs)
    ]  # fmt: skip
    if ttls[0] != 0:
        specs.append(RowSpec(0.0, first, None, "no-cache baseline", f"bench-{token}-ttl0"))
    try:
        done = run_rows(opts, registry, workload, score, specs, progress)
    finally:
        if target is not None:
            parts = [Path(s.requests) for s in specs if s.requests is not None]
            join_parts(target, [p for p in parts if p.exists()])
    baseline = done[0] if ttls[0] == 0 else done[-1]
    context = {
        "run_id": run_dir.name,
        "model_delay_ms": number(round(opts.model_delay_s * 1000.0, 3)),
        "backend": redact_url(opts.backend),
        "rate": round(workload.rate, 6) if np.isfinite(workload.rate) else None,
        "zipf": None if workload.zipf is None else number(workload.zipf),
        "keys": len(workload.keys),
        "seed": workload.seed,
        "workload": workload.source,
        "stale_grace_s": number(opts.stale_grace_s) if opts.stale_grace_s > 0 else None,
        "model_concurrency": opts.model_concurrency,
        "model_fail_rate": number(opts.model_fail_rate),
        "stale_if_error_s": number(opts.stale_if_error_s),
    }
    baseline_ms = baseline.stats.latency_sum / max(baseline.stats.n, 1)
    rows = []
    for result, (_, strategy) in zip(done, configs, strict=False):
        expected = expected_outcomes_for_workload(
            workload, result.counters.ttl_s, opts.model_delay_s, strategy or first
        )
        fresh = None if result.stats.score_fresh else baseline.stats.fresh_sums
        row = summarise_stats(
            result.stats, result.counters, fresh_sums=fresh, expected=expected,
            baseline_mean_ms=baseline_ms, context=context,
        )  # fmt: skip
        row["stampede"] = strategy
        rows.append(row)
    results.write_params(run_dir, _params(opts, workload, models, run_dir.name, baseline))
    results.write_summary(run_dir, rows)
    return BenchResult(rows, run_dir, workload, models, baseline.counters.model_runs)


def _requests_target(opts: BenchOptions, run_dir: Path) -> Path | None:
    """Where ``--save-requests`` writes: its PATH, or requests.csv in the run folder."""
    if opts.save_requests is False:
        return None
    if opts.save_requests is True or opts.save_requests == "":
        return run_dir / results.REQUESTS_FILE
    return Path(opts.save_requests)


def _params(
    opts: BenchOptions,
    workload: Workload,
    models: dict[str, str],
    run_id: str,
    baseline: RowResult,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "mode": "simulated",
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": opts.command(),
        "options": {
            "ttl_s": [number(t) for t in sorted(opts.ttls_s)],
            "trace": opts.trace,
            "requests": None if opts.trace else opts.requests,
            "rate": None if opts.trace else opts.rate,
            "pairs": None if opts.trace else opts.pairs,
            "horizons_s": None if opts.trace else opts.horizons_s,
            "zipf": None if opts.trace else opts.zipf,
            "seed": None if opts.trace else opts.seed,
            "start": None if opts.trace else opts.start,
            "model_delay_s": opts.model_delay_s,
            "stampede": list(opts.stampedes),
            "stale_grace_s": opts.stale_grace_s,
            "model_concurrency": opts.model_concurrency,
            "model_fail_rate": opts.model_fail_rate,
            "stale_if_error_s": opts.stale_if_error_s,
            "backend": redact_url(opts.backend),
            "cache_dir": opts.cache_dir,
            "models_dir": opts.models_dir,
            "size_limit": opts.size_limit,
            "market_paths": opts.market_paths,
            "model": opts.model,
            "model_version": opts.model_version,
            "out": opts.out,
            "save_requests": opts.save_requests,
            "jobs": "auto" if opts.jobs is None else opts.jobs,
            "label": opts.label,
            **opts.extra,
        },
        "workload": {
            "source": workload.source,
            "requests": workload.requests,
            "keys": [f"{pair}@{format_duration(h)}" for pair, h in workload.keys],
            "first_request_utc": _iso(workload.first_s),
            "span_s": round(workload.span_s(), 3),
            "rate": workload.rate,
        },
        "models": models,
        "simulated": {
            "clock": "discrete events on a manual clock: arrivals and ends of model computations",
            "model_delay_s": opts.model_delay_s,
            "model_delay": "each computation ends the delay after it starts (never slept); its "
            "measured inference is added to the latency of the requests that wait for it, "
            "without moving simulated events; waits (collapsed, queued) are in simulated time",
            "model_fail_rate": opts.model_fail_rate,
            "model_failures": "a die seeded by the workload's seed fails that fraction of model "
            "calls after their time; nothing is stored; stale-if-error may answer instead",
        },
        "measured": [
            "store lookups, lock and writes (perf_counter, real backend)",
            "model inference on each miss (numpy, perf_counter)",
            "accuracy against the synthetic market's realised price",
            "drift: what the cache served against a fresh model call at that moment",
        ],
        "baseline": {
            "ttl_s": 0,
            "wall_s": round(baseline.counters.wall_s, 4),
            "method": BASELINE_METHOD,
            "requests": workload.requests,
            "model_runs": baseline.counters.model_runs,
        },
        "percentiles": f"exact up to {EXACT_LIMIT:,} values per row, beyond that a "
        f"log-bucketed histogram within {RELATIVE_ERROR:.1%} (relative)",
    }


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
