"""``predcache bench`` in simulated mode, as one function: :func:`run_bench`.

The CLI parses options into :class:`BenchOptions` and calls :func:`run_bench`, which builds the
workload once, checks every key against the trained models, computes the accuracy
counterfactuals once, replays the workload for each TTL (plus a ``ttl 0`` baseline when the sweep
has none, for ``speedup_vs_no_cache``), and writes the results folder. It returns data; the CLI
renders it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from predcache.bench import results
from predcache.bench.accuracy import (
    DEFAULT_PATHS,
    Counterfactuals,
    counterfactuals,
    error_bps,
    plugin_counterfactuals,
)
from predcache.bench.engine import OUTCOMES, Replay, replay
from predcache.bench.summary import number, summarise
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
    save_requests: bool = False
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
                ("--save-requests", self.save_requests),
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
        cf = counterfactuals(workload, registry, paths=opts.market_paths)
    else:  # --model: scored on the one market path its market helper reads
        cf = plugin_counterfactuals(workload, registry)
    models = {pair: registry.version(pair) for pair in workload.pairs}
    if any(t > 0 for t in opts.ttls_s):  # a bad spec or an unreachable backend fails here
        open_store(opts.backend, cache_dir=opts.cache_dir, namespace="bench-check").close()
    if on_ready is not None:
        on_ready(workload)
    run_dir = results.new_run_dir(opts.out, opts.label or opts.default_label())
    try:
        return _sweep(opts, registry, workload, cf, models, run_dir, progress)
    except BaseException:
        if not any(run_dir.iterdir()):
            run_dir.rmdir()  # leave no empty folder behind a failed run
        raise


def _sweep(
    opts: BenchOptions,
    registry: ModelSource,
    workload: Workload,
    cf: Counterfactuals,
    models: dict[str, str],
    run_dir: Path,
    progress: ProgressFactory | None,
) -> BenchResult:
    ttls = sorted(opts.ttls_s)
    token = uuid.uuid4().hex[:8]

    def run(ttl: float, stampede: Strategy, what: str) -> Replay:
        tick = progress(what, workload.requests) if progress is not None else None
        return replay(
            workload,
            registry,
            ttl_s=ttl,
            model_delay_s=opts.model_delay_s,
            backend=opts.backend,
            cache_dir=opts.cache_dir,
            namespace=f"bench-{token}-ttl{number(ttl)}-{stampede}",
            size_limit=opts.size_limit,
            progress=tick,
            stampede=stampede,
            stale_grace_s=opts.stale_grace_s,
            model_concurrency=opts.model_concurrency,
            model_fail_rate=opts.model_fail_rate,
            stale_if_error_s=opts.stale_if_error_s,
        )

    first = opts.stampedes[0]
    # one row per TTL and strategy; ttl 0 (no cache, no strategy at work) once, in its place
    # in the sweep, or after the cached rows when the sweep has none (for speedup_vs_no_cache)
    configs = [(t, s) for t in ttls for s in (opts.stampedes if t > 0 else [None])]
    replays = [
        run(t, s or first, f"ttl {format_duration(t)} {s}" if s else "no cache") for t, s in configs
    ]
    baseline = replays[0] if ttls[0] == 0 else run(0.0, first, "no-cache baseline")
    strategy_of = [s for _, s in configs]
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
    baseline_ms = float(baseline.latency_ms.mean())
    rows = []
    for rep, strategy in zip(replays, strategy_of, strict=True):
        expected = expected_outcomes_for_workload(
            workload, rep.ttl_s, opts.model_delay_s, strategy or first
        )
        row = summarise(rep, cf, expected=expected, baseline_mean_ms=baseline_ms, context=context)
        row["stampede"] = strategy
        rows.append(row)
    results.write_params(run_dir, _params(opts, workload, models, run_dir.name, baseline))
    results.write_summary(run_dir, rows)
    if opts.save_requests:
        results.write_requests(run_dir, _request_columns(workload, cf, replays, strategy_of))
    return BenchResult(rows, run_dir, workload, models)


def _params(
    opts: BenchOptions, workload: Workload, models: dict[str, str], run_id: str, baseline: Replay
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
            "label": opts.label,
            **opts.extra,
        },
        "workload": {
            "source": workload.source,
            "requests": workload.requests,
            "keys": [f"{pair}@{format_duration(h)}" for pair, h in workload.keys],
            "first_request_utc": _iso(float(workload.times[0])),
            "span_s": round(workload.span_s(), 3),
            "rate": workload.rate,
        },
        "models": models,
        "simulated": {
            "clock": "discrete events on a manual clock: arrivals and ends of model computations",
            "model_delay_s": opts.model_delay_s,
            "model_delay": "each computation lasts the delay plus the measured inference; "
            "never slept; requests that wait for it (collapsed, queued) wait in simulated time",
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
        "baseline": {"ttl_s": 0, "wall_s": round(baseline.wall_s, 4)},
    }


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _request_columns(
    workload: Workload, cf: Counterfactuals, replays: list[Replay], strategies: Sequence[str | None]
) -> dict[str, list[Any]]:
    """requests.csv: per configuration, per request (timestamp, pair, horizon replay as a trace)."""
    pair_of = [p for p, _ in workload.keys]
    horizon_of = [h for _, h in workload.keys]
    idx = workload.key_index.tolist()
    n = workload.requests
    cols: dict[str, list[Any]] = {
        name: []
        for name in (
            "ttl_s", "stampede", "timestamp", "pair", "horizon", "cache", "age_s", "lookup_ms",
            "model_ms", "latency_ms", "served_price", "fresh_price", "realised_price",
            "served_error_bps", "fresh_error_bps", "detail",
        )
    }  # fmt: skip
    fresh_err = np.round(cf.fresh_error_bps(), 4).tolist()
    for rep, strategy in zip(replays, strategies, strict=True):
        cols["ttl_s"] += [number(rep.ttl_s)] * n
        cols["stampede"] += [strategy] * n
        cols["timestamp"] += workload.times.tolist()
        cols["pair"] += [pair_of[k] for k in idx]
        cols["horizon"] += [horizon_of[k] for k in idx]
        cols["cache"] += [OUTCOMES[o] for o in rep.outcome.tolist()]
        cols["age_s"] += (np.floor(rep.age_s * 1000.0) / 1000.0).tolist()  # never up to the TTL
        cols["lookup_ms"] += np.round(rep.lookup_ms, 5).tolist()
        cols["model_ms"] += np.round(rep.model_ms, 5).tolist()
        cols["latency_ms"] += np.round(rep.latency_ms, 5).tolist()
        cols["served_price"] += rep.served_price.tolist()
        cols["fresh_price"] += cf.fresh.tolist()
        cols["realised_price"] += cf.realised.tolist()
        cols["served_error_bps"] += np.round(error_bps(rep.served_price, cf.realised), 4).tolist()
        cols["fresh_error_bps"] += fresh_err
        cols["detail"] += [
            "failed" if f else "stale-if-error" if s else ""
            for f, s in zip(rep.failed.tolist(), rep.stale_if_error.tolist(), strict=True)
        ]
    return cols
