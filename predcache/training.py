"""Train several pairs and report: the work behind ``predcache train``.

``train_many`` returns data (one :class:`TrainResult` per pair); ``render_table`` draws it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predcache.durations import format_duration
from predcache.registry import artifact_path


@dataclass(frozen=True)
class TrainResult:
    """One trained and saved artifact."""

    pair: str
    artifact: Any  # predcache.model.ModelArtifact (numpy stays a lazy import)
    path: Path
    seconds: float

    def rows(self) -> list[dict[str, Any]]:
        """One row per horizon: the figures of the table, for --json."""
        out = []
        for h in self.artifact.horizons_s:
            m = self.artifact.metrics[str(h)]
            out.append(
                {
                    "pair": self.pair,
                    "horizon": format_duration(h),
                    "horizon_s": h,
                    "rows": m["rows"],
                    "holdout_rows": m["holdout_rows"],
                    "mae_model_bps": m["mae_model_bps"],
                    "mae_naive_bps": m["mae_naive_bps"],
                    "improvement_pct": m["improvement_pct"],
                    "version": self.artifact.version,
                    "source": self.artifact.training.get("source"),
                }
            )
        return out


def train_many(
    pairs: list[str],
    horizons_s: list[int],
    *,
    days: int,
    market_seed: int,
    data: Path | None,
    models_dir: Path,
    show_progress: bool = True,
) -> list[TrainResult]:
    """Train and save one artifact per pair (synthetic market, or the candles in ``data``)."""
    from rich.progress import Progress

    from predcache import model
    from predcache.market import load_candles_csv

    candles = load_candles_csv(data) if data is not None else None
    results: list[TrainResult] = []
    progress = Progress(transient=True, disable=not (show_progress and sys.stderr.isatty()))
    with progress:
        task = progress.add_task("training", total=len(pairs))
        for pair in pairs:
            progress.update(task, description=f"training {pair}")
            t0 = time.perf_counter()
            if candles is not None:
                art = model.train_csv(pair, candles, horizons_s=horizons_s)
            else:
                art = model.train_synthetic(
                    pair, horizons_s=tuple(horizons_s), days=days, market_seed=market_seed
                )
            path = artifact_path(models_dir, pair)
            model.save_artifact(art, path)
            results.append(TrainResult(pair, art, path, time.perf_counter() - t0))
            progress.advance(task)
    return results


def render_table(results: list[TrainResult], models_dir: Path) -> None:
    """The rich table of model vs naive MAE per pair and horizon, then the saved versions."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="holdout MAE, basis points (lower is better)")
    for col in ("pair", "horizon", "rows", "model", "naive", "improvement"):
        table.add_column(col, justify="left" if col in ("pair", "horizon") else "right")
    for res in results:
        for r in res.rows():
            better = r["improvement_pct"] > 0
            table.add_row(
                r["pair"],
                r["horizon"],
                f"{r['rows']:,}",
                f"{r['mae_model_bps']:.2f}",
                f"{r['mae_naive_bps']:.2f}",
                f"[{'green' if better else 'red'}]{r['improvement_pct']:+.1f}%[/]",
            )
    console = Console()
    console.print(table)
    for res in results:
        console.print(
            f"saved {res.pair} model {res.artifact.version} -> {res.path} ({res.seconds:.2f}s)"
        )
