"""One summary row per configuration, from the engine's streamed records (:mod:`rowstats`).

Every figure is computed from what the engine recorded for this configuration; only the
``model_delay_ms`` in the latencies, and the waits that follow from it, are simulated.
``speedup_vs_no_cache`` divides the mean latency of the same workload with every request
computed (the ``ttl 0`` replay) by this configuration's mean latency. Latencies count every
request (a failed one waited too); ages and accuracy count the answered ones (a request that
``failed`` under a simulated ``--model-fail-rate`` served nothing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from predcache.bench.accuracy import Counterfactuals, ci95_half_width
from predcache.bench.histogram import RELATIVE_ERROR
from predcache.bench.records import Chunk, Counters, Replay
from predcache.bench.rowstats import RowStats
from predcache.predictor import COLLAPSED, HIT, MISS, STALE


def _r(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _age(value: float) -> float | None:
    """Ages are rounded *down* to the millisecond: an entry served at 89.9996 s under a 90 s TTL
    must not read as 90.0 (as old as the TTL, which the freshness rule never serves). None
    (an empty cell) when nothing was served."""
    return math.floor(value * 1000.0) / 1000.0 if math.isfinite(value) else None


def number(value: float) -> int | float:
    """``90.0`` -> ``90`` (TTLs and rates read better without a trailing ``.0``)."""
    return int(value) if float(value).is_integer() else float(value)


def summarise(
    rep: Replay,
    cf: Counterfactuals,
    *,
    expected: Mapping[str, float] | None,
    baseline_mean_ms: float,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """The summary row of a :class:`Replay` kept whole (its requests scored by ``cf``)."""
    stats = RowStats(cf.paths)
    chunk = Chunk(
        0, np.zeros(0), cf.key_index, rep.outcome, rep.age_s, rep.lookup_ms, rep.model_ms,
        rep.latency_ms, rep.served_price, rep.served_as_of, rep.failed, rep.stale_if_error,
    )  # fmt: skip
    stats.add(chunk, cf)
    counters = Counters(
        rep.ttl_s, rep.stampede, rep.requests, rep.model_calls, rep.backend_errors, rep.wall_s,
        rep.duplicate_calls, rep.max_inflight, rep.model_runs,
    )  # fmt: skip
    return summarise_stats(
        stats, counters, expected=expected, baseline_mean_ms=baseline_mean_ms, context=context
    )


def summarise_stats(
    stats: RowStats,
    rep: Counters,
    *,
    fresh_sums: np.ndarray | None = None,
    expected: Mapping[str, float] | None,
    baseline_mean_ms: float,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """The summary row of one configuration (columns: :data:`results.SUMMARY_COLUMNS`).

    ``expected`` holds the TTL model's shares (``hit``, ``collapsed``, ``miss``), or ``None``
    where the strategy has no closed form; ``fresh_sums``, the fresh predictions' summed
    errors per path when another row summed them for the same answered requests.
    """
    n = stats.n
    hits, collapsed = stats.count(HIT), stats.count(COLLAPSED)
    stale, misses = stats.count(STALE), stats.count(MISS)
    lat = stats.latency
    mean_lat = stats.latency_sum / n if n else math.nan
    answered = stats.answered or math.nan  # every request failed: empty cells
    fresh = stats.fresh_sums if fresh_sums is None else fresh_sums
    served_by_path, fresh_by_path = stats.served_sums / answered, fresh / answered
    mae_served, mae_fresh = float(served_by_path.mean()), float(fresh_by_path.mean())
    path0_added = float(served_by_path[0] - fresh_by_path[0])
    exp = expected or {}
    row: dict[str, Any] = {
        "run_id": context["run_id"],
        "ttl_s": number(rep.ttl_s),
        "requests": n,
        "hits": hits,
        "misses": misses,
        "hit_ratio": _r(hits / n, 6),
        "expected_hit_ratio": _r(exp.get("hit"), 6),
        "model_calls": rep.model_calls,
        "latency_p50_ms": _r(lat.percentile(50), 5),
        "latency_p95_ms": _r(lat.percentile(95), 5),
        "latency_p99_ms": _r(lat.percentile(99), 5),
        "hit_latency_p50_ms": _r(stats.hit_latency.percentile(50), 5),
        "miss_latency_p50_ms": _r(stats.miss_latency.percentile(50), 5),
        "speedup_vs_no_cache": _r(baseline_mean_ms / mean_lat, 3),
        "mean_age_s": _age(stats.age_sum / answered),
        "p95_age_s": _age(stats.age.percentile(95)),
        "max_age_s": _age(stats.age_max),
        "mae_fresh_bps": _r(mae_fresh, 4),
        "mae_served_bps": _r(mae_served, 4),
        "added_error_bps": _r(mae_served - mae_fresh, 4),
        **{k: context[k] for k in ("model_delay_ms", "backend", "rate", "zipf", "keys", "seed")},
        "mode": "simulated",
        "workload": context["workload"],
        "latency_mean_ms": _r(mean_lat, 5),
        "lookup_p50_ms": _r(stats.lookup.percentile(50), 5) if rep.ttl_s > 0 else None,
        "model_p50_ms": _r(stats.model.percentile(50), 5),
        "backend_errors": rep.backend_errors,
        "engine_wall_s": _r(rep.wall_s, 4),
        "engine_rps": _r(n / rep.wall_s, 1) if rep.wall_s > 0 else None,
        "market_paths": len(stats.fresh_sums),
        "added_error_path0_bps": _r(path0_added, 4),
        "added_error_ci95_bps": _r(ci95_half_width(served_by_path - fresh_by_path) or math.nan, 4),
        "stampede": rep.stampede,
        "collapsed": collapsed,
        "stale": stale,
        "duplicate_calls": rep.duplicate_calls,
        "max_inflight": rep.max_inflight,
        "served_from_cache_ratio": _r((hits + collapsed + stale) / n, 6),
        "expected_collapsed_ratio": _r(exp.get("collapsed"), 6),
        "expected_miss_ratio": _r(exp.get("miss"), 6),
        "latency_p90_ms": _r(lat.percentile(90), 5),
        "latency_p999_ms": _r(lat.percentile(99.9), 5),
        "stale_grace_s": context.get("stale_grace_s"),
        "model_concurrency": context.get("model_concurrency"),
        "drift_bps": _r(stats.drift_sum / answered, 4),
        "model_fail_rate": context.get("model_fail_rate"),
        "stale_if_error_s": context.get("stale_if_error_s"),
        "failed": stats.failed,
        "stale_if_error": stats.stale_if_error,
        "model_runs": rep.model_runs,
        "percentiles": "exact" if lat.exact else f"histogram ±{RELATIVE_ERROR:.1%}",
    }
    return row
