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
    #: what was asked, e.g. ``--error-budget 1``
    criterion: str = ""

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
    """The rows with a TTL that caches (TTL 0, no cache at all, is the baseline, not a pick)."""
    if "ttl_s" not in df.columns:  # a hand-edited summary: nothing to pick from
        return df.iloc[0:0]
    return df[df["ttl_s"] > 0].sort_values("ttl_s", kind="stable")


def _pick(run_id: str, row: pd.Series, reason: str, criterion: str) -> Recommendation:
    return Recommendation(
        run_id,
        float(row["ttl_s"]),
        float(row.get("hit_ratio", math.nan)),
        float(row.get("speedup_vs_no_cache", math.nan)),
        float(row.get("added_error_bps", math.nan)),
        reason,
        criterion,
    )


def _none(run_id: str, reason: str, criterion: str) -> Recommendation:
    return Recommendation(run_id, None, None, None, None, reason, criterion)


def within_error_budget(df: pd.DataFrame, budget_bps: float) -> list[Recommendation]:
    """Per run, the largest TTL whose added error is at most ``budget_bps``."""
    criterion = f"--error-budget {budget_bps:g}"
    out = []
    runs = _simulated(df)
    if runs.empty or "added_error_bps" not in runs.columns:
        return [_none("-", "no simulated run with an added error to compare", criterion)]
    for run_id, group in runs.groupby("run_id", sort=True):
        ok = group[group["added_error_bps"] <= budget_bps]
        if ok.empty:
            least = group["added_error_bps"].min()
            reason = (
                f"no measured TTL keeps the added error within {budget_bps:g} bps "
                f"(the least is {_f(least, '+.2f')} bps)"
            )
            out.append(_none(str(run_id), reason, criterion))
        else:
            reason = f"largest within {budget_bps:g} bps"
            out.append(_pick(str(run_id), ok.iloc[-1], reason, criterion))
    return out


def reaching_hit_ratio(df: pd.DataFrame, target: float) -> list[Recommendation]:
    """Per run, the smallest TTL whose measured hit ratio is at least ``target``."""
    criterion = f"--target-hit-ratio {target:g}"
    out = []
    runs = _simulated(df)
    if runs.empty or "hit_ratio" not in runs.columns:
        return [_none("-", "no simulated run with a hit ratio per TTL", criterion)]
    for run_id, group in runs.groupby("run_id", sort=True):
        ok = group[group["hit_ratio"] >= target]
        if ok.empty:
            best = group["hit_ratio"].max()
            reason = (
                f"no measured TTL reaches a hit ratio of {target:g} "
                f"(the best is {_f(best, '.3f')}); try a longer TTL"
            )
            out.append(_none(str(run_id), reason, criterion))
        else:
            out.append(_pick(str(run_id), ok.iloc[0], f"smallest reaching {target:g}", criterion))
    return out


def marks(picks: list[Recommendation]) -> dict[str, list[tuple[float, str]]]:
    """run_id -> [(TTL, short reason)]: what the decision plot marks as recommended."""
    out: dict[str, list[tuple[float, str]]] = {}
    for pick in picks:
        if pick.ttl_s is not None:
            out.setdefault(pick.run_id, []).append((pick.ttl_s, pick.reason))
    return out


def unmet(picks: list[Recommendation]) -> str | None:
    """One line when some criterion picked a TTL for no run at all (the command then fails);
    ``None`` when every criterion asked for has at least one answer."""
    by_reason: dict[str, list[Recommendation]] = {}
    for pick in picks:
        by_reason.setdefault(pick.criterion, []).append(pick)
    for criterion, group in by_reason.items():
        if all(p.ttl_s is None for p in group):
            return f"no TTL to recommend for {criterion}: {group[0].reason}"
    return None
