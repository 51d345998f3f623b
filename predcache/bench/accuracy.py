"""The accuracy cost of staleness: served vs fresh predictions against the realised price.

For a request at time ``t`` for ``(pair, h)``:

- *realised* is the market price at the minute boundary ``floor((t + h) / 60)``: what actually
  happened ``h`` after the request;
- *fresh* is what the model says with data up to ``as_of = floor(t / 60) * 60`` (what a request
  with no cache gets);
- *served* is the prediction the cache actually returned (made at an earlier ``as_of`` when it
  is stale, so it aims at an earlier target).

Errors are in basis points, ``1e4 * |prediction - realised| / realised``; ``added error`` is the
served error minus the fresh error.

**Market paths.** On one market path the added error of a run is largely that path's luck: the
reference sweep's 40,000 requests at 5/s span 2 h 13 min, some 130 one-minute price moves per
pair, and a stale prediction can just as well land closer to what happened. The cache's
decisions (which entry was served, how old it was) do not depend on prices, so they are also
scored on ``paths - 1`` independent paths of the same synthetic market: on each, the served
prediction is the model applied at the served entry's ``as_of``, the fresh one at the
request's. Path 0 is the market the model was trained on and scores the prices the cache
really served. The summary
reports the mean over all paths (an expectation, not one path's draw), its 95% confidence
half-width from the spread between paths (independent draws of the same market), and path 0
alone.

Everything is vectorised: per path and key, the model is applied once to every minute of the
window (:func:`predcache.model.predict_series`) and requests index into that grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from predcache.bench.workload import Workload
from predcache.errors import ModelError
from predcache.registry import ModelRegistry, ModelSource

MINUTE_S = 60
DEFAULT_PATHS = 32
#: extra paths use market seeds far from the small seeds models are trained on
PATH_SEED_OFFSET = 10_000


@dataclass(frozen=True)
class _Path:
    """One market path's view of the window: realised prices and the model on every minute."""

    realised: np.ndarray  # (n,) per request
    grid: np.ndarray  # (keys, request minutes): the model's prediction made at each such minute


@dataclass(frozen=True)
class Counterfactuals:
    """Per request: realised prices and fresh predictions, on path 0 and on every other path."""

    realised: np.ndarray  # path 0
    fresh: np.ndarray  # path 0
    key_index: np.ndarray
    minutes: np.ndarray  # the distinct minutes requests are made in, sorted (the grid's columns)
    fresh_col: np.ndarray  # per request: its minute's column in the grids
    extra: tuple[_Path, ...]

    @property
    def paths(self) -> int:
        return 1 + len(self.extra)

    def select(self, mask: np.ndarray) -> Counterfactuals:
        """The requests where ``mask`` is true (the answered ones: a failed request served
        nothing to score)."""
        extra = tuple(_Path(p.realised[mask], p.grid) for p in self.extra)
        return Counterfactuals(
            self.realised[mask], self.fresh[mask], self.key_index[mask], self.minutes,
            self.fresh_col[mask], extra,
        )  # fmt: skip

    def drift_bps(self, served_price: np.ndarray) -> float:
        """Mean ``|served - fresh| / fresh`` in bps: how far what the cache served was from what
        a fresh model call would have said at that moment. Needs no realised price, so it
        measures staleness for any model."""
        return float((1e4 * np.abs(served_price - self.fresh) / self.fresh).mean())

    def fresh_error_bps(self) -> np.ndarray:
        """Path 0: the fresh prediction's error per request."""
        return error_bps(self.fresh, self.realised)

    def served_error_bps(self, served_price: np.ndarray) -> np.ndarray:
        """Path 0: the error of what the cache really served."""
        return error_bps(served_price, self.realised)

    def errors_by_path_bps(
        self, served_price: np.ndarray, served_as_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(served MAE, fresh MAE) per market path, path 0 first."""
        served = [float(self.served_error_bps(served_price).mean())]
        fresh = [float(self.fresh_error_bps().mean())]
        # an entry is made at some request's time, so its as_of minute is one of the columns
        served_col = np.searchsorted(self.minutes, np.floor(served_as_of / MINUTE_S))
        keys = self.key_index
        for path in self.extra:
            served.append(float(error_bps(path.grid[keys, served_col], path.realised).mean()))
            fresh.append(float(error_bps(path.grid[keys, self.fresh_col], path.realised).mean()))
        return np.array(served), np.array(fresh)

    def mean_errors_bps(
        self, served_price: np.ndarray, served_as_of: np.ndarray
    ) -> tuple[float, float]:
        """(served MAE, fresh MAE) over every request on every path."""
        served, fresh = self.errors_by_path_bps(served_price, served_as_of)
        return float(served.mean()), float(fresh.mean())


def ci95_half_width(values: np.ndarray) -> float | None:
    """Half-width of a 95% confidence interval for the mean of independent draws (normal
    approximation, 1.96 standard errors); ``None`` for fewer than two draws."""
    if len(values) < 2:
        return None
    return float(1.96 * np.std(values, ddof=1) / np.sqrt(len(values)))


def error_bps(predicted: np.ndarray, realised: np.ndarray) -> np.ndarray:
    """Absolute error in basis points of the realised price."""
    out: np.ndarray = 1e4 * np.abs(predicted - realised) / realised
    return out


def now_minutes(workload: Workload) -> np.ndarray:
    """The market minute each request is made in."""
    out: np.ndarray = np.floor(workload.times / MINUTE_S).astype(np.int64)
    return out


def counterfactuals(
    workload: Workload, registry: ModelRegistry, *, paths: int = DEFAULT_PATHS
) -> Counterfactuals:
    """Realised prices and model predictions for every request, on ``paths`` market paths."""
    horizon_of_key = np.array([h for _, h in workload.keys], dtype=np.int64)
    horizons = horizon_of_key[workload.key_index]
    now_minute = now_minutes(workload)
    target_minute = np.floor((workload.times + horizons) / MINUTE_S).astype(np.int64)
    minutes = np.unique(now_minute)
    views = [
        _path_view(workload, registry, p, horizon_of_key, minutes, target_minute)
        for p in range(max(1, paths))
    ]
    fresh_col = np.searchsorted(minutes, now_minute)
    fresh = views[0].grid[workload.key_index, fresh_col]
    return Counterfactuals(
        views[0].realised, fresh, workload.key_index, minutes, fresh_col, tuple(views[1:])
    )


def _path_view(
    workload: Workload,
    registry: ModelRegistry,
    path: int,
    horizon_of_key: np.ndarray,
    minutes: np.ndarray,
    target_minute: np.ndarray,
) -> _Path:
    from predcache import model
    from predcache.market import Market

    realised = np.empty(workload.requests, dtype=np.float64)
    grid = np.empty((len(workload.keys), len(minutes)), dtype=np.float64)
    for pair in workload.pairs:
        art = registry.artifact(pair)
        seed = art.training.get("market_seed")
        if not isinstance(seed, int) or art.step_s != MINUTE_S:
            raise ModelError(
                f"the model for {pair} was not trained on the synthetic market, so the bench "
                f"has no realised prices to score it; retrain with `predcache train --pairs {pair}`"
            )
        market = registry.market(seed) if path == 0 else Market(seed + PATH_SEED_OFFSET + path)
        key_ids = [k for k, (p, _) in enumerate(workload.keys) if p == pair]
        in_pair = np.isin(workload.key_index, key_ids)
        if not in_pair.any():
            continue
        base = int(minutes[0]) - art.k
        end = int(target_minute[in_pair].max())
        prices = market.prices(pair, base, end - base + 1)
        realised[in_pair] = prices[target_minute[in_pair] - base]
        columns = minutes - base  # where each request minute sits in ``prices``
        for k in key_ids:
            grid[k] = model.predict_series(art, prices, columns, int(horizon_of_key[k]))
    return _Path(realised, grid)


def plugin_counterfactuals(workload: Workload, models: ModelSource) -> Counterfactuals:
    """:func:`counterfactuals` for a model passed with ``--model``: one market path.

    A plugged model reads the default synthetic market (:func:`predcache.market.history`), so
    it can be scored on that path only; the fresh prediction of each request is the function
    called at the request's own time, as a cache-less server would call it.
    """
    from predcache.market import Market

    market = Market(0)
    horizon_of_key = np.array([h for _, h in workload.keys], dtype=np.int64)
    target_minute = np.floor(
        (workload.times + horizon_of_key[workload.key_index]) / MINUTE_S
    ).astype(np.int64)
    realised = np.empty(workload.requests, dtype=np.float64)
    for pair in workload.pairs:
        in_pair = np.isin(
            workload.key_index, [k for k, (p, _) in enumerate(workload.keys) if p == pair]
        )
        if in_pair.any():
            first, last = int(target_minute[in_pair].min()), int(target_minute[in_pair].max())
            prices = market.prices(pair, first, last - first + 1)
            realised[in_pair] = prices[target_minute[in_pair] - first]
    keys = workload.keys
    fresh = np.array(
        [
            models.compute(keys[k][0], keys[k][1], t).predicted_price
            for k, t in zip(workload.key_index.tolist(), workload.times.tolist(), strict=True)
        ]
    )
    minutes = np.unique(now_minutes(workload))
    fresh_col = np.searchsorted(minutes, now_minutes(workload))
    return Counterfactuals(realised, fresh, workload.key_index, minutes, fresh_col, ())
