"""The simulated-clock engine over the real predictor, registry and store backends."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from predcache.bench.accuracy import counterfactuals, error_bps
from predcache.bench.engine import replay
from predcache.bench.runner import BenchOptions, run_bench
from predcache.bench.ttl_model import (
    expected_for_workload,
    expected_outcomes_for_workload,
    workload_key_rates,
)
from predcache.bench.workload import Workload, load_trace, synthetic
from predcache.registry import ModelRegistry
from tests.conftest import BACKENDS

START = 1_748_822_400.0  # 2025-06-02T00:00:00Z
KEYS9 = [(p, h) for p in ("ETH/EUR", "BTC/USD", "SOL/USD") for h in (60, 300, 900)]


def registry(models_dir: Path) -> ModelRegistry:
    return ModelRegistry(models_dir, auto_train=False)


def run(
    workload: Workload, models_dir: Path, tmp_path: Path, ttl: float, backend: str = "memory"
) -> object:
    return replay(
        workload,
        registry(models_dir),
        ttl_s=ttl,
        model_delay_s=1.0,
        backend=backend,
        cache_dir=tmp_path / "cache",
        namespace=f"test-{ttl}",
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_checked_scenario(
    models_dir: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """TTL 10 s; fresh while age < 10, a hit does not extend, misses restamp the entry."""
    spec = request.getfixturevalue("redis_url") if backend == "redis" else backend
    rows = [  # offset, pair, horizon -> expected (hit?, age)
        (0, "ETH/EUR", "5m"),  # miss, new entry at 0
        (3, "BTC/USD", "1m"),  # miss, new entry at 3
        (5, "ETH/EUR", "5m"),  # hit, age 5
        (10, "ETH/EUR", "5m"),  # age 10 == TTL: miss, new entry at 10
        (12, "ETH/EUR", "5m"),  # hit, age 2
        (13, "BTC/USD", "1m"),  # age 10: miss, new entry at 13
        (15, "BTC/USD", "1m"),  # hit, age 2 (the entry of 13 was written at 14)
        (25, "ETH/EUR", "5m"),  # age 15: miss
    ]
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "timestamp,pair,horizon\n" + "".join(f"{START + o},{p},{h}\n" for o, p, h in rows)
    )
    rep = replay(
        load_trace(trace),
        registry(models_dir),
        ttl_s=10.0,
        model_delay_s=1.0,
        backend=spec,
        cache_dir=tmp_path / "cache",
        namespace="hand",
    )
    assert rep.hit.tolist() == [False, False, True, False, True, False, True, False]
    assert rep.age_s.tolist() == [0, 0, 5, 0, 2, 0, 2, 0]
    assert rep.model_calls == 5
    # a miss pays the simulated 1 s delay on top of the measured model time; a hit does not
    assert np.all(rep.latency_ms[~rep.hit] >= 1000.0)
    assert np.all(rep.latency_ms[rep.hit] < 1000.0)
    assert np.all(rep.model_ms[~rep.hit] > 0) and np.all(rep.model_ms[rep.hit] == 0)
    assert np.all(rep.lookup_ms > 0)
    # served hits are the entry written by the miss before them
    assert rep.served_price[2] == rep.served_price[0]
    assert rep.served_price[6] == rep.served_price[5]


def test_ttl_zero_computes_every_request(models_dir: Path, tmp_path: Path) -> None:
    w = synthetic(KEYS9, requests=500, rate=5.0, zipf=1.0, seed=1, start=START)
    rep = run(w, models_dir, tmp_path, 0.0)
    assert not rep.hit.any()  # type: ignore[attr-defined]
    assert rep.model_calls == 500  # type: ignore[attr-defined]
    # ...and every served prediction is the fresh counterfactual, computed vectorised
    cf = counterfactuals(w, registry(models_dir))
    assert rep.served_price == pytest.approx(cf.fresh, rel=1e-12)  # type: ignore[attr-defined]


def test_vectorised_counterfactuals_match_the_model(models_dir: Path) -> None:
    w = synthetic(KEYS9, requests=300, rate=0.05, zipf=0.5, seed=2, start=START)
    reg = registry(models_dir)
    cf = counterfactuals(w, reg)
    market = reg.market(0)
    for i in range(0, 300, 37):
        pair, h = w.keys[int(w.key_index[i])]
        t = float(w.times[i])
        assert cf.fresh[i] == pytest.approx(reg.compute(pair, h, t).predicted_price, rel=1e-12)
        assert cf.realised[i] == market.price_at(pair, t + h)
    assert error_bps(np.array([101.0]), np.array([100.0])) == pytest.approx([100.0])


@pytest.mark.parametrize("ttl", [30.0, 90.0, 300.0])
def test_hit_ratio_matches_the_ttl_model(models_dir: Path, tmp_path: Path, ttl: float) -> None:
    """40,000 requests, seed fixed, 1 s model, coalesce. The tolerance comes from the sample: per
    key, misses form a renewal process with cycle mean mu = T + 1/lambda_i and variance
    1/lambda_i**2, so over a span D the miss count has variance ~ D * sigma^2 / mu^3; the
    collapsed count adds a Poisson(lambda_i d) per cycle. Allow 4 standard errors plus the cold
    start (one extra miss a key)."""
    n = 40_000
    w = synthetic(KEYS9, requests=n, rate=5.0, zipf=1.0, seed=11, start=START)
    rep = run(w, models_dir, tmp_path, ttl)
    expected = expected_outcomes_for_workload(w, ttl, 1.0, "coalesce")
    assert expected is not None
    lam = workload_key_rates(w)
    mu = ttl + 1 / lam
    var_misses = w.span_s() * (1 / lam**2) / mu**3
    var_collapsed = w.span_s() / mu * lam * 1.0
    tolerance = 4 * math.sqrt(var_misses.sum() + var_collapsed.sum()) / n + len(w.keys) / n
    assert tolerance < 0.005  # the test is sharp: far tighter than the 0.01
    measured = {o: rep.count(o) / n for o in ("hit", "collapsed", "miss")}  # type: ignore[attr-defined]
    for outcome, share in measured.items():
        assert abs(share - expected[outcome]) <= tolerance, (outcome, share, expected)
    # with no delay nothing is in flight: the classic formula, hits and misses only
    served = measured["hit"] + measured["collapsed"]
    assert abs(served - (expected_for_workload(w, ttl) or 0)) <= tolerance
    assert rep.age_s.max() < ttl + 1.01  # type: ignore[attr-defined]


def test_sweep_is_monotone_and_fresh(models_dir: Path, tmp_path: Path) -> None:
    opts = BenchOptions(
        ttls_s=[300.0, 0.0, 90.0, 30.0],
        requests=20_000,
        rate=5.0,
        pairs=["ETH/EUR", "BTC/USD", "SOL/USD"],
        horizons_s=[60, 300, 900],
        zipf=1.0,
        seed=5,
        start="2025-06-02T00:00:00Z",
        start_s=START,
        model_delay_s=1.0,
        backend="memory",
        out=str(tmp_path / "results"),
    )
    seen: list[str] = []
    result = run_bench(opts, notify=seen.append, progress=lambda d, n: lambda i: None)
    rows = result.rows
    assert [r["ttl_s"] for r in rows] == [0, 30, 90, 300]
    assert rows[0]["hits"] == 0 and rows[0]["added_error_bps"] == pytest.approx(0, abs=1e-3)
    assert rows[0]["speedup_vs_no_cache"] == 1.0
    for a, b in itertools.pairwise(rows):
        assert b["hit_ratio"] > a["hit_ratio"]
        assert b["added_error_bps"] > a["added_error_bps"]
        assert b["speedup_vs_no_cache"] > a["speedup_vs_no_cache"]
        assert b["model_calls"] < a["model_calls"]
    for r in rows:
        assert abs(r["hit_ratio"] - r["expected_hit_ratio"]) < 0.01
        assert r["max_age_s"] < r["ttl_s"] or r["ttl_s"] == r["max_age_s"] == 0
        assert r["mae_fresh_bps"] == rows[0]["mae_fresh_bps"]  # one workload for every TTL
        assert r["hits"] + r["collapsed"] + r["stale"] + r["misses"] == r["requests"] == 20_000
    assert seen == []  # models were trained already: no notice


def test_store_namespace_is_emptied(models_dir: Path, tmp_path: Path) -> None:
    from predcache.store import open_store

    w = synthetic(KEYS9, requests=200, rate=5.0, zipf=1.0, seed=1, start=START)
    run(w, models_dir, tmp_path, 90.0, backend="disk")
    with open_store("disk", cache_dir=tmp_path / "cache") as store:
        assert store.stats().entries == 0


def test_extra_market_paths_score_the_same_cache_decisions(
    models_dir: Path, tmp_path: Path
) -> None:
    w = synthetic(KEYS9, requests=4000, rate=20.0, zipf=1.0, seed=3, start=START)
    reg = registry(models_dir)
    one, many = counterfactuals(w, reg, paths=1), counterfactuals(w, reg, paths=8)
    assert one.paths == 1 and many.paths == 8
    assert np.array_equal(one.fresh, many.fresh) and np.array_equal(one.realised, many.realised)
    # path 0 alone is exactly the single-path figure
    rep = run(w, models_dir, tmp_path, 90.0)
    served, _fresh = one.mean_errors_bps(rep.served_price, rep.served_as_of)  # type: ignore[attr-defined]
    assert served == pytest.approx(float(one.served_error_bps(rep.served_price).mean()))  # type: ignore[attr-defined]
    # a prediction served at age 0 is the fresh one on every path: no added error at all
    fresh_rep = run(w, models_dir, tmp_path, 0.0)
    s, f = many.mean_errors_bps(fresh_rep.served_price, fresh_rep.served_as_of)  # type: ignore[attr-defined]
    assert s == pytest.approx(f, abs=1e-9)
    # the other paths are other markets: their grids differ from path 0's
    assert not np.allclose(many.extra[0].realised, many.realised)


def test_added_error_grows_with_ttl_on_a_short_busy_window(
    models_dir: Path, tmp_path: Path
) -> None:
    """40,000 requests at 50/s span 13 minutes: on one market path the added error of a long TTL
    is mostly that path's luck (it can come out negative); averaged over the default 32 paths
    it grows with the TTL."""
    opts = BenchOptions(
        ttls_s=[0.0, 30.0, 90.0, 300.0, 900.0], requests=40_000, rate=50.0,
        pairs=["ETH/EUR", "BTC/USD", "SOL/USD"], horizons_s=[60, 300, 900], zipf=1.0, seed=1,
        start="2025-06-02T00:00:00Z", start_s=START, model_delay_s=0.0, backend="memory",
        out=str(tmp_path / "results"),
    )  # fmt: skip
    rows = run_bench(opts, notify=lambda m: None).rows
    added = [r["added_error_bps"] for r in rows]
    assert all(a < b for a, b in itertools.pairwise(added)), added
    assert all(r["market_paths"] == 32 for r in rows)


def test_ci95_half_width_by_hand() -> None:
    from predcache.bench.accuracy import ci95_half_width

    # two draws 1 and 3: sample sd sqrt(2), standard error 1, so 1.96
    assert ci95_half_width(np.array([1.0, 3.0])) == pytest.approx(1.96)
    # four draws 0, 0, 2, 2: sd 2/sqrt(3), se 1/sqrt(3)
    assert ci95_half_width(np.array([0.0, 0.0, 2.0, 2.0])) == pytest.approx(1.96 / math.sqrt(3))
    assert ci95_half_width(np.array([5.0])) is None


def test_summary_band_is_the_spread_between_paths(models_dir: Path, tmp_path: Path) -> None:
    from predcache.bench.accuracy import ci95_half_width
    from predcache.bench.summary import summarise

    w = synthetic(KEYS9, requests=2000, rate=20.0, zipf=1.0, seed=3, start=START)
    cf = counterfactuals(w, registry(models_dir), paths=4)
    rep = run(w, models_dir, tmp_path, 90.0)
    served, fresh = cf.errors_by_path_bps(rep.served_price, rep.served_as_of)
    context = {
        "run_id": "r", "model_delay_ms": 0, "backend": "memory", "rate": 20.0, "zipf": 1.0,
        "keys": 9, "seed": 3, "workload": "synthetic",
    }  # fmt: skip
    row = summarise(rep, cf, expected=None, baseline_mean_ms=1.0, context=context)
    assert row["added_error_bps"] == round(float((served - fresh).mean()), 4)
    assert row["added_error_ci95_bps"] == round(ci95_half_width(served - fresh) or 0.0, 4)
    assert row["added_error_ci95_bps"] > 0
    one = summarise(
        rep, counterfactuals(w, registry(models_dir), paths=1), expected=None,
        baseline_mean_ms=1.0, context=context,
    )  # fmt: skip
    assert one["added_error_ci95_bps"] is None
