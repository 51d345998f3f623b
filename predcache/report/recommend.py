"""Pick a TTL per run: the largest within an error budget, the smallest reaching a hit ratio.

Both answers come from the measured rows of a run (not from the TTL model), so they hold for
the traffic that run replayed; a TTL between two measured ones is not interpolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from predcache.durations import format_duration

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Recommendation:
    """One run's answer; ``ttl_s`` is ``None`` when no measured TTL qualifies."""

    run_id: str
    ttl_s: float | None
    hit_ratio: float | None
    speedup: float | None
    added_error_bps: float | None
    reason: str

    def line(self) -> str:
        if self.ttl_s is None:
            return f"{self.run_id}: {self.reason}"
        return (
            f"{self.run_id}: TTL {format_duration(self.ttl_s)} ({self.reason}): hit ratio "
            f"{_f(self.hit_ratio, '.3f')}, speedup {_f(self.speedup, '.1f')}x, added error "
            f"{_f(self.added_error_bps, '+.2f')} bps"
        )


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:{spec}}"


def _simulated(df: pd.DataFrame) -> pd.DataFrame:
    rows = df[df["ttl_s"].notna()] if "ttl_s" in df.columns else df.iloc[0:0]
    return rows.sort_values("ttl_s")


def _pick(run_id: str, row: pd.Series, reason: str) -> Recommendation:
    return Recommendation(
        run_id,
        float(row["ttl_s"]),
        float(row["hit_ratio"]),
        float(row.get("speedup_vs_no_cache", math.nan)),
        float(row.get("added_error_bps", math.nan)),
        reason,
    )


def within_error_budget(df: pd.DataFrame, budget_bps: float) -> list[Recommendation]:
    """Per run, the largest TTL whose added error is at most ``budget_bps``."""
    out = []
    for run_id, group in _simulated(df).groupby("run_id", sort=True):
        ok = group[group["added_error_bps"] <= budget_bps]
        if ok.empty:
            least = group["added_error_bps"].min()
            reason = (
                f"no measured TTL keeps the added error within {budget_bps:g} bps "
                f"(the least is {_f(least, '+.2f')} bps)"
            )
            out.append(Recommendation(str(run_id), None, None, None, None, reason))
        else:
            out.append(_pick(str(run_id), ok.iloc[-1], f"largest within {budget_bps:g} bps"))
    return out


def reaching_hit_ratio(df: pd.DataFrame, target: float) -> list[Recommendation]:
    """Per run, the smallest TTL whose measured hit ratio is at least ``target``."""
    out = []
    for run_id, group in _simulated(df).groupby("run_id", sort=True):
        ok = group[group["hit_ratio"] >= target]
        if ok.empty:
            best = group["hit_ratio"].max()
            reason = (
                f"no measured TTL reaches a hit ratio of {target:g} "
                f"(the best is {_f(best, '.3f')}); try a longer TTL"
            )
            out.append(Recommendation(str(run_id), None, None, None, None, reason))
        else:
            out.append(_pick(str(run_id), ok.iloc[0], f"smallest reaching {target:g}"))
    return out
