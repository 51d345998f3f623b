"""One summary row per configuration, from the engine's per-request records.

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
from predcache.bench.engine import OUTCOMES, Replay
from predcache.predictor import COLLAPSED, HIT, MISS, STALE


def _p(values: np.ndarray, q: float) -> float:
    """Percentile ``q`` of ``values``; NaN when there are none (an empty cell in the CSV)."""
    return float(np.percentile(values, q)) if len(values) else math.nan


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
    """The summary row of one configuration (columns: :data:`results.SUMMARY_COLUMNS`).

    ``expected`` holds the TTL model's shares (``hit``, ``collapsed``, ``miss``), or ``None``
    where the strategy has no closed form.
    """
    n = rep.requests
    hits, collapsed = rep.count(HIT), rep.count(COLLAPSED)
    stale, misses = rep.count(STALE), rep.count(MISS)
    lat = rep.latency_ms
    mean_lat = float(lat.mean()) if n else math.nan
    ok = rep.answered
    price, as_of, ages = rep.served_price[ok], rep.served_as_of[ok], rep.age_s[ok]
    if not ok.all():
        cf = cf.select(ok)
    if ok.any():
        served_by_path, fresh_by_path = cf.errors_by_path_bps(price, as_of)
        path0_added = float(cf.served_error_bps(price).mean() - cf.fresh_error_bps().mean())
    else:  # every request failed: nothing was served to age or score (empty cells)
        served_by_path = fresh_by_path = np.full(1, math.nan)
        path0_added, ages = math.nan, np.full(1, math.nan)
    mae_served, mae_fresh = float(served_by_path.mean()), float(fresh_by_path.mean())
    computed = rep.outcome == OUTCOMES.index(MISS)
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
        "latency_p50_ms": _r(_p(lat, 50), 5),
        "latency_p95_ms": _r(_p(lat, 95), 5),
        "latency_p99_ms": _r(_p(lat, 99), 5),
        "hit_latency_p50_ms": _r(_p(lat[rep.hit], 50), 5),
        "miss_latency_p50_ms": _r(_p(lat[computed], 50), 5),
        "speedup_vs_no_cache": _r(baseline_mean_ms / mean_lat, 3),
        "mean_age_s": _age(float(ages.mean())),
        "p95_age_s": _age(_p(ages, 95)),
        "max_age_s": _age(float(ages.max())),
        "mae_fresh_bps": _r(mae_fresh, 4),
        "mae_served_bps": _r(mae_served, 4),
        "added_error_bps": _r(mae_served - mae_fresh, 4),
        **{k: context[k] for k in ("model_delay_ms", "backend", "rate", "zipf", "keys", "seed")},
        "mode": "simulated",
        "workload": context["workload"],
        "latency_mean_ms": _r(mean_lat, 5),
        "lookup_p50_ms": _r(_p(rep.lookup_ms, 50), 5) if rep.ttl_s > 0 else None,
        "model_p50_ms": _r(_p(rep.model_ms[computed], 50), 5),
        "backend_errors": rep.backend_errors,
        "engine_wall_s": _r(rep.wall_s, 4),
        "engine_rps": _r(n / rep.wall_s, 1) if rep.wall_s > 0 else None,
        "market_paths": cf.paths,
        "added_error_path0_bps": _r(path0_added, 4),
        "added_error_ci95_bps": _r(ci95_half_width(served_by_path - fresh_by_path), 4),
        "stampede": rep.stampede,
        "collapsed": collapsed,
        "stale": stale,
        "duplicate_calls": rep.duplicate_calls,
        "max_inflight": rep.max_inflight,
        "served_from_cache_ratio": _r((hits + collapsed + stale) / n, 6),
        "expected_collapsed_ratio": _r(exp.get("collapsed"), 6),
        "expected_miss_ratio": _r(exp.get("miss"), 6),
        "latency_p90_ms": _r(_p(lat, 90), 5),
        "latency_p999_ms": _r(_p(lat, 99.9), 5),
        "stale_grace_s": context.get("stale_grace_s"),
        "model_concurrency": context.get("model_concurrency"),
        "drift_bps": _r(cf.drift_bps(price), 4) if ok.any() else None,
        "model_fail_rate": context.get("model_fail_rate"),
        "stale_if_error_s": context.get("stale_if_error_s"),
        "failed": int(np.count_nonzero(rep.failed)),
        "stale_if_error": int(np.count_nonzero(rep.stale_if_error)),
    }
    return row
