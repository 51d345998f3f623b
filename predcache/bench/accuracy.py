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

**Streaming.** A run of millions of requests is scored chunk by chunk: :class:`Scorer` holds
what does not grow with requests (per path and pair the market prices over the window, per path
the model's grid over the distinct request minutes) and makes a :class:`Counterfactuals` view
of any chunk of requests; a row adds up its errors per path (:meth:`Counterfactuals.sums`).

Everything is vectorised: per path and key, the model is applied once to every minute of the
window (:func:`predcache.model.predict_series`) and requests index into that grid.
"""

from __future__ import annotations

import math
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
    """One market path's view of a chunk: realised prices and the model on every minute."""

    realised: np.ndarray  # (n,) per request
    grid: np.ndarray  # (keys, request minutes): the model's prediction made at each such minute


@dataclass(frozen=True)
class _Market:
    """One path's prices over the window, every pair's series end to end (``flat``), and the
    model's grid over the request minutes."""

    flat: np.ndarray
    grid: np.ndarray


@dataclass(frozen=True)
class Counterfactuals:
    """Per request of a chunk: realised prices and fresh predictions on path 0; the other
    paths' markets, indexed by ``at`` (per request, its realised price in ``flat``)."""

    realised: np.ndarray  # path 0
    fresh: np.ndarray  # path 0
    key_index: np.ndarray
    minutes: np.ndarray  # the distinct minutes requests are made in, sorted (the grid's columns)
    fresh_col: np.ndarray  # per request: its minute's column in the grids
    at: np.ndarray
    markets: tuple[_Market, ...]  # paths 1..

    @property
    def paths(self) -> int:
        return 1 + len(self.markets)

    @property
    def extra(self) -> tuple[_Path, ...]:
        """Paths 1..: realised prices per request and the model's grid."""
        return tuple(_Path(m.flat[self.at], m.grid) for m in self.markets)

    def select(self, mask: np.ndarray) -> Counterfactuals:
        """The requests where ``mask`` is true (the answered ones: a failed request served
        nothing to score)."""
        return Counterfactuals(
            self.realised[mask], self.fresh[mask], self.key_index[mask], self.minutes,
            self.fresh_col[mask], self.at[mask], self.markets,
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

    def sums(
        self, served_price: np.ndarray, served_as_of: np.ndarray, *, fresh: bool = True
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Summed over this chunk: (served error per path, fresh error per path, drift), in
        bps; the fresh sums are zeros when ``fresh`` is false (every row shares them).

        Path 0 scores each request's served price. On the other paths a request's error
        depends only on (key, the served entry's minute, the realised price's index), so the
        requests are grouped by that triple and each path scores the distinct triples once,
        weighted by their counts.
        """
        served = np.zeros(self.paths)
        fresh_sums = np.zeros(self.paths)
        served[0] = float(self.served_error_bps(served_price).sum())
        if fresh:
            fresh_sums[0] = float(self.fresh_error_bps().sum())
        if self.markets:
            # an entry is made at some request's time, so its minute is one of the columns
            served_col = np.searchsorted(self.minutes, np.floor(served_as_of / MINUTE_S))
            np.clip(served_col, 0, len(self.minutes) - 1, out=served_col)
            served[1:] = self._grouped(served_col)
            if fresh:
                fresh_sums[1:] = self._grouped(self.fresh_col)
        drift = float((1e4 * np.abs(served_price - self.fresh) / self.fresh).sum())
        return served, fresh_sums, drift

    def _grouped(self, col: np.ndarray) -> np.ndarray:
        """Summed error on each path 1.. of the model's grid at ``col`` (per request)."""
        ncols, nkeys = len(self.minutes), int(self.key_index.max()) + 1
        codes = (self.at * nkeys + self.key_index) * ncols + col
        unique, counts = np.unique(codes, return_counts=True)
        rest, u_col = np.divmod(unique, ncols)
        u_at, u_key = np.divmod(rest, nkeys)
        return np.array(
            [float((counts * error_bps(m.grid[u_key, u_col], m.flat[u_at])).sum())
             for m in self.markets]
        )  # fmt: skip

    def errors_by_path_bps(
        self, served_price: np.ndarray, served_as_of: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(served MAE, fresh MAE) per market path, path 0 first."""
        served, fresh, _ = self.sums(served_price, served_as_of)
        n = len(self.key_index)
        return served / n, fresh / n

    def mean_errors_bps(
        self, served_price: np.ndarray, served_as_of: np.ndarray
    ) -> tuple[float, float]:
        """(served MAE, fresh MAE) over every request on every path."""
        served, fresh = self.errors_by_path_bps(served_price, served_as_of)
        return float(served.mean()), float(fresh.mean())


class Scorer:
    """What scoring needs that does not grow with requests; :meth:`view` scores any chunk.

    ``offset[k] + target_minute`` indexes ``flat`` for key ``k`` (its pair's series starts at
    ``offset``). A plugged model (``--model``) has no grid: its fresh prediction is the
    function called at the request's own time, as a cache-less server would call it.
    """

    def __init__(
        self,
        keys: list[tuple[str, int]],
        minutes: np.ndarray,
        offset: np.ndarray,
        markets: list[_Market],
        plugin: ModelSource | None = None,
    ) -> None:
        self.keys = keys
        self.horizons = np.array([h for _, h in keys], dtype=np.int64)
        self.minutes, self.offset, self.markets, self.plugin = minutes, offset, markets, plugin

    @property
    def paths(self) -> int:
        return len(self.markets)

    def view(self, times: np.ndarray, key_index: np.ndarray) -> Counterfactuals:
        now = np.floor(times / MINUTE_S).astype(np.int64)
        target = np.floor((times + self.horizons[key_index]) / MINUTE_S).astype(np.int64)
        at = self.offset[key_index] + target
        fresh_col = np.searchsorted(self.minutes, now)
        path0 = self.markets[0]
        if self.plugin is None:
            fresh = path0.grid[key_index, fresh_col]
        else:
            keys, compute = self.keys, self.plugin.compute
            fresh = np.array(
                [
                    compute(keys[k][0], keys[k][1], t).predicted_price
                    for k, t in zip(key_index.tolist(), times.tolist(), strict=True)
                ]
            )
        return Counterfactuals(
            path0.flat[at], fresh, key_index, self.minutes, fresh_col, at,
            tuple(self.markets[1:]),
        )  # fmt: skip


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


def counterfactuals(
    workload: Workload, registry: ModelRegistry, *, paths: int = DEFAULT_PATHS
) -> Counterfactuals:
    """Realised prices and model predictions for every request, on ``paths`` market paths."""
    return scorer(workload, registry, paths=paths).view(workload.times, workload.key_index)


def scorer(workload: Workload, registry: ModelRegistry, *, paths: int = DEFAULT_PATHS) -> Scorer:
    """The market prices and model grids of ``paths`` paths over the workload's window."""
    from predcache import model
    from predcache.market import Market

    minutes = workload.minutes()
    offset = np.zeros(len(workload.keys), dtype=np.int64)
    markets = []
    for path in range(max(1, paths)):
        series: list[np.ndarray] = []
        grid = np.zeros((len(workload.keys), len(minutes)), dtype=np.float64)
        at = 0
        for pair in workload.pairs:
            art = registry.artifact(pair)
            seed = art.training.get("market_seed")
            if not isinstance(seed, int) or art.step_s != MINUTE_S:
                raise ModelError(
                    f"the model for {pair} was not trained on the synthetic market, so the "
                    f"bench has no realised prices to score it; retrain with "
                    f"`predcache train --pairs {pair}`"
                )
            market = registry.market(seed) if path == 0 else Market(seed + PATH_SEED_OFFSET + path)
            key_ids = [k for k, (p, _) in enumerate(workload.keys) if p == pair]
            base = int(minutes[0]) - art.k
            longest = max(workload.keys[k][1] for k in key_ids)
            end = math.floor((workload.last_s + longest) / MINUTE_S)
            prices = market.prices(pair, base, end - base + 1)
            for k in key_ids:
                offset[k] = at - base
                grid[k] = model.predict_series(art, prices, minutes - base, workload.keys[k][1])
            series.append(prices)
            at += len(prices)
        markets.append(_Market(np.concatenate(series), grid))
    return Scorer(workload.keys, minutes, offset, markets)


def plugin_scorer(workload: Workload, models: ModelSource) -> Scorer:
    """:func:`scorer` for a model passed with ``--model``: one market path.

    A plugged model reads the default synthetic market (:func:`predcache.market.history`), so
    it can be scored on that path only.
    """
    from predcache.market import Market

    market = Market(0)
    minutes = workload.minutes()
    offset = np.zeros(len(workload.keys), dtype=np.int64)
    series: list[np.ndarray] = []
    at = 0
    for pair in workload.pairs:
        key_ids = [k for k, (p, _) in enumerate(workload.keys) if p == pair]
        horizons = [workload.keys[k][1] for k in key_ids]
        first = math.floor((workload.first_s + min(horizons)) / MINUTE_S)
        end = math.floor((workload.last_s + max(horizons)) / MINUTE_S)
        prices = market.prices(pair, first, end - first + 1)
        for k in key_ids:
            offset[k] = at - first
        series.append(prices)
        at += len(prices)
    grid = np.zeros((len(workload.keys), len(minutes)))
    return Scorer(workload.keys, minutes, offset, [_Market(np.concatenate(series), grid)], models)


def plugin_counterfactuals(workload: Workload, models: ModelSource) -> Counterfactuals:
    """Every request's counterfactuals for a plugged model (:func:`plugin_scorer`)."""
    return plugin_scorer(workload, models).view(workload.times, workload.key_index)
