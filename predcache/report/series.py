"""What the plots draw, per run: measured TTLs as arrays, the TTL-0 baseline, the TTL model.

Plots take :class:`RunSeries` values, never the DataFrame, so every figure draws the same
numbers and the browser report (or a notebook) can build its own figures from them. Only
simulated rows have a TTL; live rows are not series.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from predcache.durations import format_duration

if TYPE_CHECKING:
    import pandas as pd

#: z for a two-sided 95% interval
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Baseline:
    """The run's TTL-0 row: every request computed (the no-cache baseline)."""

    latency_mean_ms: float
    latency_p99_ms: float
    model_calls: float
    requests: float


@dataclass(frozen=True)
class RunSeries:
    """One run's measured TTLs (> 0, ascending) and what was measured at each."""

    run_id: str
    label: str
    ttl_s: np.ndarray
    requests: np.ndarray
    hit_ratio: np.ndarray
    expected_hit_ratio: np.ndarray  # NaN where the summary has none
    model_calls: np.ndarray
    latency_mean_ms: np.ndarray
    latency_p99_ms: np.ndarray
    added_error_bps: np.ndarray
    added_error_ci95_bps: np.ndarray  # NaN where the summary has none (one market path, old runs)
    baseline: Baseline | None
    #: the TTL model's hit ratio at any TTL, for a synthetic (Zipf) workload; None for a trace
    model: Callable[[np.ndarray], np.ndarray] | None

    @property
    def miss_ratio(self) -> np.ndarray:
        return 1.0 - self.hit_ratio

    def miss_ratio_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Wilson 95% interval of the miss ratio, as if requests were independent trials.

        The sampling interval of the measurement: how far the measured ratio could be from the
        traffic's own with this many requests. Requests of one key are not independent under a
        TTL, so this is a guide to the noise, not an exact bound."""
        n = np.maximum(self.requests, 1.0)
        p = self.miss_ratio
        centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
        return centre - half, centre + half


def _column(group: pd.DataFrame, name: str) -> np.ndarray:
    if name not in group.columns:
        return np.full(len(group), math.nan)
    out: np.ndarray = group[name].to_numpy(dtype=np.float64, na_value=math.nan)
    return out


def _value(row: pd.Series, name: str) -> Any:
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def run_label(row: pd.Series) -> str:
    """What tells runs apart in a legend: backend, rate, key popularity, strategy, delay."""
    parts = []
    backend = _value(row, "backend")
    if backend is not None:
        parts.append(str(backend))
    rate = _value(row, "rate")
    if rate is not None:
        parts.append(f"{float(rate):g}/s")
    zipf = _value(row, "zipf")
    if zipf is not None:
        parts.append(f"zipf {float(zipf):g}")
    strategy = _value(row, "stampede")
    if strategy is not None:
        parts.append(str(strategy))
    delay = _value(row, "model_delay_ms")
    if delay is not None:
        parts.append(f"model delay {format_duration(float(delay) / 1000)} (simulated)")
    return ", ".join(parts) or str(row["run_id"])


def _zipf_model(row: pd.Series) -> Callable[[np.ndarray], np.ndarray] | None:
    """The TTL model for a synthetic workload, from the run's rate, keys and Zipf exponent."""
    if _value(row, "workload") not in (None, "synthetic"):
        return None
    rate, keys, zipf = _value(row, "rate"), _value(row, "keys"), _value(row, "zipf")
    if rate is None or keys is None or zipf is None or int(keys) < 1:
        return None
    from predcache.bench.ttl_model import expected_hit_ratio
    from predcache.bench.workload import zipf_probabilities

    rates = float(rate) * zipf_probabilities(int(keys), float(zipf))

    def model(ttls: np.ndarray) -> np.ndarray:
        return np.array([expected_hit_ratio(rates, float(t)) for t in ttls])

    return model


def run_series(df: pd.DataFrame) -> list[RunSeries]:
    """One :class:`RunSeries` per run that has TTL rows, in run order."""
    if "ttl_s" not in df.columns:
        return []
    out = []
    for run_id, group in df[df["ttl_s"].notna()].groupby("run_id", sort=True):
        g = group.sort_values("ttl_s", kind="stable")
        positive = g[g["ttl_s"] > 0]
        zero = g[g["ttl_s"] == 0]
        baseline = None
        if not zero.empty:
            z = zero.iloc[0]
            baseline = Baseline(
                float(z.get("latency_mean_ms", math.nan)),
                float(z.get("latency_p99_ms", math.nan)),
                float(z.get("model_calls", math.nan)),
                float(z.get("requests", math.nan)),
            )
        if positive.empty and baseline is None:
            continue
        first = g.iloc[0]
        out.append(
            RunSeries(
                run_id=str(run_id),
                label=run_label(first),
                ttl_s=_column(positive, "ttl_s"),
                requests=_column(positive, "requests"),
                hit_ratio=_column(positive, "hit_ratio"),
                expected_hit_ratio=_column(positive, "expected_hit_ratio"),
                model_calls=_column(positive, "model_calls"),
                latency_mean_ms=_column(positive, "latency_mean_ms"),
                latency_p99_ms=_column(positive, "latency_p99_ms"),
                added_error_bps=_column(positive, "added_error_bps"),
                added_error_ci95_bps=_column(positive, "added_error_ci95_bps"),
                baseline=baseline,
                model=_zipf_model(first),
            )
        )
    return out
