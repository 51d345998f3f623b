"""Training: the one place that turns market data into saved model artifacts.

``train_synthetic`` and ``train_csv`` fit one pair (from the synthetic market, or from real
candles); ``train_many`` trains and saves several, the work behind ``predcache train``;
``train_default`` is what a first ``predict`` without a model runs. They return data; the CLI
renders it. Imports numpy: the registry imports this module only when it must train.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from predcache import config, model
from predcache.artifact import (
    ModelArtifact,
    artifact_path,
    make_artifact,
    read_header,
    save_artifact,
)
from predcache.durations import format_duration
from predcache.errors import BadDataError, BadInputError, ModelError
from predcache.market import MINUTES_PER_DAY, Candles, Market
from predcache.pairs import parse_pair

DEFAULT_HORIZONS_S = config.DEFAULT_HORIZONS_S
#: the last minute of the default training window (see ``config.DEFAULT_MARKET_TIME``)
DEFAULT_END_MINUTE = config.DEFAULT_MARKET_TIME_S // 60


def train_synthetic(
    pair: str,
    *,
    horizons_s: Iterable[int] = DEFAULT_HORIZONS_S,
    days: int = 7,
    end_minute: int | None = None,
    market_seed: int = 0,
    k: int = model.DEFAULT_K,
    progress: Callable[[float], None] | None = None,
) -> ModelArtifact:
    """Train on ``days`` of the synthetic market ending at ``end_minute`` (default: the fixed
    :data:`predcache.config.DEFAULT_MARKET_TIME`, so the same call trains the same model, with
    the same version, on any day and machine)."""
    pair = parse_pair(pair)
    if days < 1:
        raise BadInputError(f"bad days {days}: must be at least 1")
    if end_minute is None:
        end_minute = DEFAULT_END_MINUTE
    start = end_minute - days * MINUTES_PER_DAY
    market = Market(market_seed)
    chunks = []
    for d in range(days):  # a day at a time, only to report progress
        chunks.append(market.prices(pair, start + d * MINUTES_PER_DAY, MINUTES_PER_DAY))
        if progress is not None:
            progress(0.9 * (d + 1) / days)
    chunks.append(market.prices(pair, end_minute, 1))
    coefficients, metrics = model.fit_prices(np.concatenate(chunks), horizons_s, k=k)
    training = {
        "source": "synthetic",
        "market_seed": market_seed,
        "start": start * 60,
        "end": end_minute * 60,
        "rows": days * MINUTES_PER_DAY + 1,
    }
    art = make_artifact(pair, k, coefficients, metrics, training)
    if progress is not None:
        progress(1.0)
    return art


def train_csv(
    pair: str,
    candles: Candles,
    *,
    horizons_s: Iterable[int] = DEFAULT_HORIZONS_S,
    k: int = model.DEFAULT_K,
) -> ModelArtifact:
    """Train on the close prices of real candles. The step is the median candle spacing; rows
    whose window or target spans a missing candle are skipped rather than mis-timed."""
    pair = parse_pair(pair)
    ts = candles.timestamp
    if len(ts) < 2:
        raise BadDataError(f"{candles.path}: need at least two candles")
    spacing = np.diff(ts)
    step = int(np.median(spacing))
    gaps = np.concatenate(([False], spacing != step))
    coefficients, metrics = model.fit_prices(candles.close, horizons_s, k=k, step_s=step, gaps=gaps)
    training = {
        "source": "csv",
        "market_seed": None,
        "start": int(ts[0]),
        "end": int(ts[-1]),
        "rows": len(ts),
        "csv": Path(candles.path).name,
    }
    return make_artifact(pair, k, coefficients, metrics, training, step_s=step)


@dataclass(frozen=True)
class TrainResult:
    """One trained and saved artifact; ``kept`` are the horizons trained though not asked for
    (the replaced artifact's, or the defaults), on the same data, so that none goes missing."""

    pair: str
    artifact: ModelArtifact
    path: Path
    seconds: float
    kept: tuple[int, ...] = ()

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


def horizons_to_train(path: Path, pair: str, asked: list[int], *, replace: bool) -> list[int]:
    """The asked horizons, plus those the pair's current artifact has (unless ``replace``).

    One artifact per pair serves every horizon, so training only ``5m`` must not drop the
    ``1m`` that ``predict`` and ``bench`` ask for by default. Each horizon's fit is independent
    of the others, so the kept ones come out as a training of their own would. No artifact (or
    an unreadable one) counts as the default horizons, which a first ``predict`` would train."""
    if replace:
        return list(asked)
    try:
        current = read_header(path, pair).horizons_s
    except (FileNotFoundError, ModelError):
        current = DEFAULT_HORIZONS_S
    return sorted(set(asked) | set(current))


def train_many(
    pairs: list[str],
    horizons_s: list[int],
    *,
    days: int,
    market_seed: int,
    data: Path | None,
    models_dir: Path,
    end_minute: int | None = None,
    replace: bool = False,
    show_progress: bool = True,
) -> list[TrainResult]:
    """Train and save one artifact per pair (synthetic market ending at ``end_minute``, or the
    candles in ``data``), keeping the pair's other trained horizons unless ``replace``."""
    from rich.progress import Progress

    from predcache.market import load_candles_csv

    candles = load_candles_csv(data) if data is not None else None
    results: list[TrainResult] = []
    progress = Progress(transient=True, disable=not (show_progress and sys.stderr.isatty()))
    with progress:
        task = progress.add_task("training", total=len(pairs))
        for pair in pairs:
            progress.update(task, description=f"training {pair}")
            t0 = time.perf_counter()
            path = artifact_path(models_dir, pair)
            wanted = horizons_to_train(path, pair, horizons_s, replace=replace)
            if candles is not None:
                art = train_csv(pair, candles, horizons_s=wanted)
            else:
                art = train_synthetic(
                    pair,
                    horizons_s=tuple(wanted),
                    days=days,
                    end_minute=end_minute,
                    market_seed=market_seed,
                )
            save_artifact(art, path)
            kept = tuple(h for h in wanted if h not in horizons_s)
            results.append(TrainResult(pair, art, path, time.perf_counter() - t0, kept))
            progress.advance(task)
    return results


def train_default(pair: str, path: Path) -> ModelArtifact:
    """Train ``pair`` with every default and save it to ``path`` (first use of a pair)."""
    art = train_synthetic(pair)
    save_artifact(art, path)
    return art
