"""The accuracy cost of staleness: served vs fresh predictions against the realised price.

For a request at time ``t`` for ``(pair, h)``:

- *realised* is the market price at the minute boundary ``floor((t + h) / 60)``: what actually
  happened ``h`` after the request;
- *fresh* is what the model says with data up to ``as_of = floor(t / 60) * 60`` (what a request
  with no cache gets);
- *served* is the prediction the cache actually returned (possibly made minutes earlier, for an
  earlier ``as_of``, so it aims at an earlier target).

Errors are in basis points, ``1e4 * |prediction - realised| / realised``; ``added error`` is the
served error minus the fresh error. The realised and fresh arrays depend only on the workload,
so they are computed once per run, vectorised per pair and horizon (one matrix product each via
:func:`predcache.model.predict_series`), never one model call per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from predcache.bench.workload import Workload
from predcache.errors import ModelError
from predcache.registry import ModelRegistry

MINUTE_S = 60


@dataclass(frozen=True)
class Counterfactuals:
    """Per request: the realised price and the fresh model prediction."""

    realised: np.ndarray
    fresh: np.ndarray

    def fresh_error_bps(self) -> np.ndarray:
        return error_bps(self.fresh, self.realised)


def error_bps(predicted: np.ndarray, realised: np.ndarray) -> np.ndarray:
    """Absolute error in basis points of the realised price."""
    out: np.ndarray = 1e4 * np.abs(predicted - realised) / realised
    return out


def counterfactuals(workload: Workload, registry: ModelRegistry) -> Counterfactuals:
    """Realised prices and fresh predictions for every request of ``workload``."""
    from predcache import model

    n = workload.requests
    realised = np.empty(n, dtype=np.float64)
    fresh = np.empty(n, dtype=np.float64)
    horizon_of_key = np.array([h for _, h in workload.keys], dtype=np.int64)
    horizons = horizon_of_key[workload.key_index]
    now_minute = np.floor(workload.times / MINUTE_S).astype(np.int64)
    target_minute = np.floor((workload.times + horizons) / MINUTE_S).astype(np.int64)
    for pair in workload.pairs:
        art = registry.artifact(pair)
        seed = art.training.get("market_seed")
        if not isinstance(seed, int) or art.step_s != MINUTE_S:
            raise ModelError(
                f"the model for {pair} was not trained on the synthetic market, so the bench "
                f"has no realised prices to score it; retrain with `predcache train --pairs {pair}`"
            )
        market = registry.market(seed)
        key_ids = [k for k, (p, _) in enumerate(workload.keys) if p == pair]
        in_pair = np.isin(workload.key_index, key_ids)
        base = int(now_minute[in_pair].min()) - art.k
        end = int(target_minute[in_pair].max())
        prices = market.prices(pair, base, end - base + 1)
        realised[in_pair] = prices[target_minute[in_pair] - base]
        for k in key_ids:
            sel = workload.key_index == k
            fresh[sel] = model.predict_series(
                art, prices, now_minute[sel] - base, int(horizon_of_key[k])
            )
    return Counterfactuals(realised, fresh)
