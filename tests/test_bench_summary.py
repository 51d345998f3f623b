"""A summary row (:mod:`predcache.bench.summary`) from six hand-made requests, every cell by hand.

The requests, their latencies, ages and served prices are written out below, and scored on
two market paths: path 0 realises 100 everywhere, path 1 realises 300 and its model says
310 / 330 for key 0 and 290 / 270 for key 1 at minutes 100 / 101. Latencies use thirds and
sevenths so that each rounding (5 decimals for milliseconds, 6 for ratios, 4 for bps) shows.
Percentiles are numpy's linear interpolation: on six sorted values, ``p`` sits at rank
``p / 100 * 5``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from predcache.bench.accuracy import Counterfactuals, _Market
from predcache.bench.records import Chunk, Counters, Replay
from predcache.bench.rowstats import RowStats
from predcache.bench.summary import number, summarise, summarise_stats

HIT, COLLAPSED, STALE, MISS = range(4)

CONTEXT = {
    "run_id": "hand", "model_delay_ms": 2.5, "backend": "memory", "rate": 0.5, "zipf": 1.1,
    "keys": 2, "seed": 7, "workload": "synthetic", "stale_grace_s": 30, "model_concurrency": 4,
    "model_fail_rate": 0.25, "stale_if_error_s": 2.5,
}  # fmt: skip
EXPECTED = {"hit": 0.1234567, "collapsed": 0.2345678, "miss": 0.6419755}


def scored(n: int = 6) -> Counterfactuals:
    """Requests 0-2 in minute 100, 3-5 in minute 101, keys 0 1 0 1 0 1 (``n`` of them)."""
    extra = _Market(np.array([300.0]), np.array([[310.0, 330.0], [290.0, 270.0]]))
    return Counterfactuals(
        realised=np.full(n, 100.0), fresh=np.full(n, 100.0),
        key_index=np.arange(n) % 2, minutes=np.array([100, 101]),
        fresh_col=(np.arange(n) >= 3).astype(np.int64), at=np.zeros(n, dtype=np.int64),
        markets=(extra,),
    )  # fmt: skip


def replay(**changes: Any) -> Replay:
    fields: dict[str, Any] = {
        "ttl_s": 90.0,
        "outcome": np.array([MISS, HIT, COLLAPSED, STALE, HIT, MISS], dtype=np.int8),
        "age_s": np.array([0.0, 10.0, 0.0, 95.5, 20.0, 0.0]),
        "lookup_ms": np.array([0.5, 1 / 3, 0.25, 0.5, 0.125, 1.0]),
        "model_ms": np.array([4.0, 0.0, 0.0, 0.0, 0.0, 16 / 3]),
        "latency_ms": np.array([5.0, 0.125, 10 / 3, 0.25, 1 / 3, 43 / 7]),
        "served_price": np.array([100.0, 101.0, 100.0, 98.0, 101.0, 100.0]),
        # every entry was made in minute 100 except request 5's own (a miss in minute 101)
        "served_as_of": np.array([6000.0] * 5 + [6060.0]),
        "model_calls": 2,
        "backend_errors": 1,
        "wall_s": 0.01281,
        "failed": np.zeros(6, dtype=bool),
        "stale_if_error": np.array([False, False, False, True, False, False]),
        "stampede": "stale-while-revalidate",
        "duplicate_calls": 1,
        "max_inflight": 2,
        "model_runs": 3,
    }
    fields.update(changes)
    return Replay(**fields)


#: every cell of the row of :func:`replay` scored by :func:`scored`, worked out by hand
ROW: dict[str, Any] = {
    "run_id": "hand",
    "ttl_s": 90,  # an int: TTLs read without ".0"
    "requests": 6,
    "hits": 2,
    "misses": 2,
    "hit_ratio": 0.333333,  # 2 / 6
    "expected_hit_ratio": 0.123457,
    "model_calls": 2,
    # sorted latencies: 1/8, 1/4, 1/3, 10/3, 5, 43/7
    "latency_p50_ms": 1.83333,  # rank 2.5: (1/3 + 10/3) / 2 = 11/6
    "latency_p95_ms": 5.85714,  # rank 4.75: 5 + 0.75 * 8/7
    "latency_p99_ms": 6.08571,  # rank 4.95: 5 + 0.95 * 8/7
    "hit_latency_p50_ms": 0.22917,  # (1/8 + 1/3) / 2 = 11/48
    "miss_latency_p50_ms": 5.57143,  # (5 + 43/7) / 2 = 39/7
    "speedup_vs_no_cache": 3.161,  # 8 / mean (the mean below) = 8064/2551 = 3.16111..
    "mean_age_s": 20.916,  # 125.5 / 6 = 20.91666.., floored to the ms
    "p95_age_s": 76.625,  # sorted 0 0 0 10 20 95.5, rank 4.75: 20 + 0.75 * 75.5
    "max_age_s": 95.5,
    # path 0: fresh is exact; served 100 bps (101), 200 bps (98), 100 bps (101): 400 / 6.
    # path 1 (realised 300): fresh at columns 0 0 0 1 1 1 -> 1/30 (1000/3 bps) three times,
    # then 1000 bps three times: 4000 / 6; served at column 0 except request 5:
    # five times 1000/3 and 1000 bps: 8000/3 / 6.
    # MAE fresh = (0 + 4000/6) / 2 = 1000/3; served = (400/6 + 8000/18) / 2 = 2300/9
    "mae_fresh_bps": 333.3333,
    "mae_served_bps": 255.5556,
    "added_error_bps": -77.7778,  # 2300/9 - 3000/9 = -700/9
    "model_delay_ms": 2.5,
    "backend": "memory",
    "rate": 0.5,
    "zipf": 1.1,
    "keys": 2,
    "seed": 7,
    "mode": "simulated",
    "workload": "synthetic",
    "latency_mean_ms": 2.53075,  # (1/8 + 1/4 + 1/3 + 10/3 + 5 + 43/7) / 6 = 2551/1008
    "lookup_p50_ms": 0.41667,  # sorted 1/8 1/4 1/3 1/2 1/2 1: (1/3 + 1/2) / 2 = 5/12
    "model_p50_ms": 4.66667,  # the two misses' 4 and 16/3
    "backend_errors": 1,
    "engine_wall_s": 0.0128,
    "engine_rps": 468.4,  # 6 / 0.01281 = 468.38..
    "market_paths": 2,
    "added_error_path0_bps": 66.6667,  # 400 / 6
    # per path added error 200/3 and 8000/18 - 4000/6 = -2000/9; two draws: 1.96 * |a - b| / 2
    "added_error_ci95_bps": 283.1111,  # 0.98 * 2600/9
    "stampede": "stale-while-revalidate",
    "collapsed": 1,
    "stale": 1,
    "duplicate_calls": 1,
    "max_inflight": 2,
    "served_from_cache_ratio": 0.666667,  # (2 hits + 1 collapsed + 1 stale) / 6
    "expected_collapsed_ratio": 0.234568,
    "expected_miss_ratio": 0.641976,
    "latency_p90_ms": 5.57143,  # rank 4.5: 5 + 0.5 * 8/7
    "latency_p999_ms": 6.13714,  # rank 4.995: 5 + 0.995 * 8/7
    "stale_grace_s": 30,
    "model_concurrency": 4,
    "drift_bps": 66.6667,  # |served - fresh| on path 0: 400 bps / 6
    "model_fail_rate": 0.25,
    "stale_if_error_s": 2.5,
    "failed": 0,
    "stale_if_error": 1,
    "model_runs": 3,
    "percentiles": "exact",
}


def same(row: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal cell by cell, in order, and of the same type (``90`` is not ``90.0``)."""
    assert list(row) == list(expected)
    assert row == expected
    assert {k: type(v) for k, v in row.items()} == {k: type(v) for k, v in expected.items()}


def test_every_cell_of_a_hand_worked_row() -> None:
    row = summarise(replay(), scored(), expected=EXPECTED, baseline_mean_ms=8.0, context=CONTEXT)
    same(row, ROW)


def test_fresh_errors_summed_by_another_row_are_used_as_given() -> None:
    """A row that does not score its fresh predictions takes the no-cache row's sums."""
    rep = replay()
    stats = RowStats(2, score_fresh=False)
    stats.add(
        Chunk(
            0, np.zeros(6), scored().key_index, rep.outcome, rep.age_s, rep.lookup_ms,
            rep.model_ms, rep.latency_ms, rep.served_price, rep.served_as_of, rep.failed,
            rep.stale_if_error,
        ),
        scored(),
    )  # fmt: skip
    assert stats.fresh_sums.tolist() == [0.0, 0.0]
    counters = Counters(90.0, "stale-while-revalidate", 6, 2, 1, 0.01281, 1, 2, 3)
    row = summarise_stats(
        stats, counters, fresh_sums=np.array([0.0, 4000.0]), expected=EXPECTED,
        baseline_mean_ms=8.0, context=CONTEXT,
    )  # fmt: skip
    same(row, ROW)


def test_empty_cells_where_a_figure_does_not_exist() -> None:
    """No cache (TTL 0: no lookups), no hits, one market path (no confidence band), no
    closed form for the strategy, an engine wall time too short to read, no failure options."""
    no_cache = replay(
        ttl_s=0.0,
        outcome=np.full(6, MISS, dtype=np.int8),
        age_s=np.zeros(6),
        served_price=np.full(6, 100.0),
        model_ms=np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        wall_s=0.0,
    )
    one_path = Counterfactuals(
        np.full(6, 100.0), np.full(6, 100.0), np.arange(6) % 2, np.array([100, 101]),
        np.zeros(6, dtype=np.int64), np.zeros(6, dtype=np.int64), (),
    )  # fmt: skip
    context = {k: v for k, v in CONTEXT.items() if not k.startswith(("stale", "model_"))}
    context["model_delay_ms"] = 2.5
    row = summarise(no_cache, one_path, expected=None, baseline_mean_ms=8.0, context=context)
    assert row["ttl_s"] == 0 and type(row["ttl_s"]) is int
    assert {k: row[k] for k in ("hits", "misses", "hit_ratio", "served_from_cache_ratio")} == {
        "hits": 0, "misses": 6, "hit_ratio": 0.0, "served_from_cache_ratio": 0.0,
    }  # fmt: skip
    empty = (
        "expected_hit_ratio", "expected_collapsed_ratio", "expected_miss_ratio",
        "hit_latency_p50_ms", "lookup_p50_ms", "engine_rps", "added_error_ci95_bps",
        "stale_grace_s", "model_concurrency", "model_fail_rate", "stale_if_error_s",
    )  # fmt: skip
    assert {k: row[k] for k in empty} == dict.fromkeys(empty)
    assert row["market_paths"] == 1
    # every request's latency and its model time; served fresh: no age, no error
    assert row["miss_latency_p50_ms"] == row["latency_p50_ms"] == 1.83333
    assert row["model_p50_ms"] == 3.5  # all six model times 1 .. 6 count: (3 + 4) / 2
    assert (row["mean_age_s"], row["p95_age_s"], row["max_age_s"]) == (0.0, 0.0, 0.0)
    assert (row["mae_served_bps"], row["added_error_bps"], row["drift_bps"]) == (0.0, 0.0, 0.0)
    assert row["engine_wall_s"] == 0.0


def test_a_ttl_between_whole_seconds_keeps_its_fraction() -> None:
    row = summarise(
        replay(ttl_s=0.5), scored(), expected=EXPECTED, baseline_mean_ms=8.0, context=CONTEXT
    )
    assert row["ttl_s"] == 0.5 and type(row["ttl_s"]) is float
    assert row["lookup_p50_ms"] == 0.41667  # a cache, if a short one: lookups counted
    assert number(np.float64(300.0)) == 300 and type(number(np.float64(300.0))) is int
    assert number(0.5) == 0.5 and type(number(0.5)) is float


def test_past_the_exact_limit_the_row_says_its_percentiles_are_estimates() -> None:
    """65,537 latencies: percentiles come from the histogram, within its 0.1% bound."""
    n = 65_537
    rep = replay(
        outcome=np.full(n, MISS, dtype=np.int8), age_s=np.zeros(n), lookup_ms=np.ones(n),
        model_ms=np.ones(n), latency_ms=np.ones(n), served_price=np.full(n, 100.0),
        served_as_of=np.full(n, 6000.0), failed=np.zeros(n, dtype=bool),
        stale_if_error=np.zeros(n, dtype=bool),
    )  # fmt: skip
    row = summarise(rep, scored(n), expected=None, baseline_mean_ms=1.0, context=CONTEXT)
    assert row["percentiles"] == "histogram ±0.1%"
    assert row["requests"] == n and row["latency_p50_ms"] == 1.0


@pytest.mark.parametrize(
    ("age", "cell"),
    [(89.9996, 89.999), (0.0004, 0.0), (12.3459, 12.345), (7.0, 7.0)],
)
def test_ages_are_floored_to_the_millisecond(age: float, cell: float) -> None:
    """An entry served at 89.9996 s under a 90 s TTL must not read as 90.0."""
    rep = replay(age_s=np.full(6, age))
    row = summarise(rep, scored(), expected=EXPECTED, baseline_mean_ms=8.0, context=CONTEXT)
    assert (row["mean_age_s"], row["p95_age_s"], row["max_age_s"]) == (cell, cell, cell)


def test_a_failed_request_counts_in_latency_but_not_in_ages_or_accuracy() -> None:
    """Request 5 (a miss in minute 101) failed: it served nothing, so ages and errors are over
    the five answered requests; its latency still counts."""
    failed = np.array([False] * 5 + [True])
    row = summarise(
        replay(failed=failed), scored(), expected=EXPECTED, baseline_mean_ms=8.0, context=CONTEXT
    )
    assert (row["requests"], row["failed"], row["hit_ratio"]) == (6, 1, 0.333333)
    assert row["latency_mean_ms"] == ROW["latency_mean_ms"]
    # ages 0 10 0 95.5 20: mean 25.1; sorted 0 0 10 20 95.5, p95 at rank 3.8: 20 + 0.8 * 75.5
    # = 80.4, which numpy's interpolation gives as 80.39999..: floored to 80.399
    assert (row["mean_age_s"], row["p95_age_s"], row["max_age_s"]) == (25.1, 80.399, 95.5)
    # path 0: served 400 bps over 5, fresh exact; path 1: fresh columns 0 0 0 1 1 -> three
    # times 1000/3 and twice 1000 bps = 3000 / 5, served at column 0: five times 1000/3 / 5
    assert row["mae_fresh_bps"] == 300.0  # (0 + 600) / 2
    assert row["mae_served_bps"] == 206.6667  # (80 + 1000/3) / 2
    assert row["added_error_bps"] == -93.3333
    assert row["added_error_path0_bps"] == 80.0
    assert row["added_error_ci95_bps"] == 339.7333  # 0.98 * |80 - (1000/3 - 600)|
    assert row["drift_bps"] == 80.0
