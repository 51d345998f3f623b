"""The accuracy scorer (:mod:`predcache.bench.accuracy`) on hand-made requests and markets.

Three requests at known times; every realised price is read back from the market path it
belongs to (path 0 is the market the model was trained on, path ``p > 0`` is
``Market(seed + 10_000 + p)``), every window length is worked out by hand below, and the
summed errors of :meth:`Counterfactuals.sums` are worked out on a two-minute toy grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predcache.artifact import artifact_path, load_artifact, make_artifact, save_artifact
from predcache.bench.accuracy import (
    Counterfactuals,
    _Market,
    plugin_counterfactuals,
    plugin_scorer,
    scorer,
)
from predcache.bench.workload import Workload
from predcache.errors import ModelError
from predcache.market import Market
from predcache.registry import Computed, ModelRegistry

START = 1_748_822_400.0  # 2025-06-02T00:00:00Z, a whole minute
M0 = int(START // 60)
KEYS = [("ETH/EUR", 60), ("ETH/EUR", 300), ("BTC/USD", 900)]
#: request i: (offset from START, key index)
REQUESTS = [(30.0, 0), (150.0, 1), (200.0, 2)]


def workload() -> Workload:
    times = np.array([START + dt for dt, _ in REQUESTS])
    key_index = np.array([k for _, k in REQUESTS], dtype=np.int64)
    return Workload("trace", times, key_index, KEYS, 1.0, None, None, "hand-made")


def test_each_market_path_is_its_own_seed_over_the_window_the_model_needs(
    models_dir: Path,
) -> None:
    reg = ModelRegistry(models_dir, auto_train=False)
    k = reg.artifact("ETH/EUR").k
    assert k == reg.artifact("BTC/USD").k == 16
    seed = reg.artifact("ETH/EUR").training["market_seed"]
    score = scorer(workload(), reg, paths=3)
    assert score.paths == 3
    # request minutes M0, M0+2, M0+3 are the grid's columns
    assert score.minutes.tolist() == [M0, M0 + 2, M0 + 3]
    # each pair's prices run from k minutes before the first request minute (the model's lags)
    # to the last request's longest target: ETH/EUR to floor((200 + 300) / 60) = M0 + 8,
    # BTC/USD to floor((200 + 900) / 60) = M0 + 18
    eth_n, btc_n = 8 + k + 1, 18 + k + 1
    for p in range(3):
        market = reg.market(seed) if p == 0 else Market(seed + 10_000 + p)
        flat = score.markets[p].flat
        assert len(flat) == eth_n + btc_n
        assert np.array_equal(flat[:eth_n], market.prices("ETH/EUR", M0 - k, eth_n))
        assert np.array_equal(flat[eth_n:], market.prices("BTC/USD", M0 - k, btc_n))
    cf = score.view(workload().times, workload().key_index)
    assert cf.paths == 3
    for p, realised in enumerate([cf.realised, *(x.realised for x in cf.extra)]):
        market = reg.market(seed) if p == 0 else Market(seed + 10_000 + p)
        # the realised price is the one at the request's target minute on that path
        assert realised.tolist() == [
            market.price_at("ETH/EUR", START + 30 + 60),
            market.price_at("ETH/EUR", START + 150 + 300),
            market.price_at("BTC/USD", START + 200 + 900),
        ]
    # the paths are different markets
    assert len({float(score.markets[p].flat[0]) for p in range(3)}) == 3


def _retrained(models_dir: Path, tmp_path: Path, *, seed: bool, step_s: int) -> ModelRegistry:
    """The trained ETH/EUR model re-stamped without its market seed or on other candles."""
    art = load_artifact(artifact_path(models_dir, "ETH/EUR"))
    training = dict(art.training)
    if not seed:
        del training["market_seed"]
    coefficients = {h: c for h, c in art.coefficients.items() if int(h) % step_s == 0}
    metrics = {h: m for h, m in art.metrics.items() if h in coefficients}
    out = tmp_path / f"models-{seed}-{step_s}"
    out.mkdir()
    other = make_artifact(art.pair, art.k, coefficients, metrics, training, step_s=step_s)
    save_artifact(other, artifact_path(out, "ETH/EUR"))
    return ModelRegistry(out, auto_train=False)


@pytest.mark.parametrize(("seed", "step_s"), [(False, 60), (True, 300)])
def test_a_model_not_trained_on_the_synthetic_market_cannot_be_scored(
    models_dir: Path, tmp_path: Path, seed: bool, step_s: int
) -> None:
    """Without a market seed there are no realised prices; on other candles the grid's
    minutes are not the model's steps: either one is refused, with how to fix it."""
    reg = _retrained(models_dir, tmp_path, seed=seed, step_s=step_s)
    w = Workload("trace", np.array([START]), np.array([0]), [("ETH/EUR", 300)], 1.0, None, None)
    with pytest.raises(ModelError) as err:
        scorer(w, reg, paths=2)
    assert str(err.value) == (
        "the model for ETH/EUR was not trained on the synthetic market, so the bench has no "
        "realised prices to score it; retrain with `predcache train --pairs ETH/EUR`"
    )


class Plugged:
    """A plugged model (``--model``) whose prediction says which arguments it was called with."""

    def version(self, pair: str) -> str:
        return "plugged"

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        return None

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        base = {"ETH/EUR": 1000.0, "BTC/USD": 5000.0, "SOL/USD": 20.0}[pair]
        return Computed(base + horizon_s + (at - START) / 1000.0, at, base)


def plugged_workload() -> Workload:
    """The three requests and a fourth, SOL/USD 1m at +250 s: three pairs end to end."""
    times = np.array([START + dt for dt in (30.0, 150.0, 200.0, 250.0)])
    keys = [*KEYS, ("SOL/USD", 60)]
    return Workload("trace", times, np.array([0, 1, 2, 3]), keys, 1.0, None, None, "hand-made")


def test_a_plugged_model_is_called_at_each_request_and_scored_on_the_default_market() -> None:
    w = plugged_workload()
    cf = plugin_counterfactuals(w, Plugged())
    assert cf.paths == 1 and cf.extra == ()
    # fresh: the function at the request's own time (pair base + horizon + offset / 1000)
    assert cf.fresh.tolist() == [1060.03, 1300.15, 5900.2, 80.25]
    market = Market(0)
    assert cf.realised.tolist() == [
        market.price_at("ETH/EUR", START + 30 + 60),
        market.price_at("ETH/EUR", START + 150 + 300),
        market.price_at("BTC/USD", START + 200 + 900),
        market.price_at("SOL/USD", START + 250 + 60),
    ]
    # each pair's window: from the first request's time plus the pair's shortest horizon to
    # the last request's time plus its longest; ETH/EUR floor(90/60) = M0+1 .. floor(550/60)
    # = M0+9, BTC/USD floor(930/60) = M0+15 .. floor(1150/60) = M0+19, SOL/USD
    # floor(90/60) = M0+1 .. floor(310/60) = M0+5
    flat = plugin_scorer(w, Plugged()).markets[0].flat
    assert len(flat) == 9 + 5 + 5
    assert np.array_equal(flat[:9], market.prices("ETH/EUR", M0 + 1, 9))
    assert np.array_equal(flat[9:14], market.prices("BTC/USD", M0 + 15, 5))
    assert np.array_equal(flat[14:], market.prices("SOL/USD", M0 + 1, 5))


def test_a_plugged_view_pairs_each_time_with_its_key() -> None:
    """The plugged model is called once per request: keys and times that do not pair up
    are refused, not scored on the shorter list."""
    w = workload()
    with pytest.raises(ValueError, match="zip"):
        plugin_scorer(w, Plugged()).view(w.times, w.key_index[:1])


def toy() -> Counterfactuals:
    """Two requests for keys 0 and 1 in minutes 100 and 101; one extra path whose realised
    prices are 100 and 200 and whose model says 110 / 150 (key 0) and 90 / 180 (key 1) at
    minutes 100 / 101."""
    extra = _Market(np.array([100.0, 200.0]), np.array([[110.0, 150.0], [90.0, 180.0]]))
    return Counterfactuals(
        realised=np.array([100.0, 200.0]),
        fresh=np.array([100.0, 200.0]),
        key_index=np.array([0, 1]),
        minutes=np.array([100, 101]),
        fresh_col=np.array([0, 1]),
        at=np.array([0, 1]),
        markets=(extra,),
    )


def test_sums_by_hand() -> None:
    cf = toy()
    served, fresh, drift = cf.sums(np.array([101.0, 190.0]), np.array([100 * 60.0, 101 * 60.0]))
    # path 0: |101-100|/100 = 100 bps, |190-200|/200 = 500 bps; fresh is exact there
    # path 1, served at minutes 100 and 101: key 0 |110-100|/100 = 1000, key 1 |180-200|/200
    # = 1000; fresh (columns 0, 1) the same entries
    assert served.tolist() == pytest.approx([600.0, 2000.0])
    assert fresh.tolist() == pytest.approx([0.0, 2000.0])
    # drift: served vs fresh, |1|/100 + |10|/200 in bps
    assert drift == pytest.approx(600.0)
    served, fresh, _ = cf.sums(np.array([101.0, 190.0]), np.array([100 * 60.0] * 2), fresh=False)
    # key 1 served its minute-100 entry: |90-200|/200 = 5500 bps
    assert served.tolist() == pytest.approx([600.0, 6500.0])
    assert fresh.tolist() == [0.0, 0.0]


def test_an_entry_made_after_the_last_request_minute_is_scored_at_the_last_column() -> None:
    """An entry's ``as_of`` past the grid's last minute is scored at the last minute the grid
    has, not out of its bounds. The simulated bench makes every entry at some request's time,
    so its minute is a column; this pins the guard for any other ``served_as_of``."""
    cf = toy()
    served, _, _ = cf.sums(np.array([100.0, 200.0]), np.array([105 * 60.0, 107 * 60.0]))
    # both at column 1 (minute 101): key 0 |150-100|/100 = 5000, key 1 |180-200|/200 = 1000
    assert served.tolist() == pytest.approx([0.0, 6000.0])
