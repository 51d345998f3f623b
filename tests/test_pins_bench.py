"""Bench and report figures pinned to hand-computed values, through the public outputs.

The bench is driven through ``predcache bench`` and read back from the files it writes
(``summary.csv``, ``requests.csv``), so these pins hold whatever the engine looks like inside:

- on an 8-request trace whose hits and ages are worked out by hand below: every count, the hit
  ratio, the TTL model's expected hit ratio, the age columns;
- every latency percentile and the speedup, recomputed by hand (linear interpolation written
  out here) from the per-request latencies the same run wrote;
- the staleness error as an *absolute* error, recomputed from the served, fresh and realised
  prices of a run in which predictions fall on both sides of what happened;
- the summary's columns, against the list in the product contract written out here (not
  imported: a column dropped from the code and its constant must still turn this red).

The report's picks and sort are pinned on unsorted input with hand-chosen rows.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predcache.bench.accuracy import error_bps
from predcache.cli import run
from predcache.report.recommend import reaching_hit_ratio, within_error_budget

START = 1_748_822_400  # 2025-06-02T00:00:00Z
#: offset (s), pair, horizon; TTL 10 s. Hand-worked: fresh while age < 10; a hit does not extend.
TRACE = [
    (0, "ETH/EUR", "5m"),  # miss: entry E1 at 0
    (3, "BTC/USD", "1m"),  # miss: entry B1 at 3
    (5, "ETH/EUR", "5m"),  # hit E1, age 5
    (10, "ETH/EUR", "5m"),  # E1 is 10 s old == TTL: miss, E2 at 10
    (12, "ETH/EUR", "5m"),  # hit E2, age 2
    (13, "BTC/USD", "1m"),  # B1 is 10 s old: miss, B2 at 13
    (14, "BTC/USD", "1m"),  # hit B2, age 1
    (25, "ETH/EUR", "5m"),  # E2 is 15 s old: miss
]
#: the product contract's summary columns, in order (docs/bench.md)
REQUIRED_COLUMNS = [
    "run_id", "ttl_s", "requests", "hits", "misses", "hit_ratio", "expected_hit_ratio",
    "model_calls", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "hit_latency_p50_ms",
    "miss_latency_p50_ms", "speedup_vs_no_cache", "mean_age_s", "p95_age_s", "max_age_s",
    "mae_fresh_bps", "mae_served_bps", "added_error_bps", "model_delay_ms", "backend", "rate",
    "zipf", "keys", "seed",
]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    """By hand: linear interpolation between the two closest ranks (numpy's default)."""
    s = sorted(values)
    rank = q / 100 * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (rank - lo) * (s[hi] - s[lo])


def bench(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    """Run ``predcache bench`` (simulated, memory backend, one market path); its run folder."""
    out = tmp_path / "results"
    code = run(["bench", *args, "--backend", "memory", "--market-paths", "1",
                "--save-requests", "--out", str(out), "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    (folder,) = out.iterdir()
    return folder


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def trace_run(models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "timestamp,pair,horizon\n" + "".join(f"{START + o},{p},{h}\n" for o, p, h in TRACE)
    )
    return bench(tmp_path, capsys, "--trace", str(trace), "--ttl", "10,0", "--model-delay", "0")


def test_summary_columns_are_the_contract(trace_run: Path) -> None:
    with (trace_run / "summary.csv").open() as fh:
        header = next(csv.reader(fh))
    assert header[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS


def test_counts_ratios_and_ages_of_the_hand_worked_trace(trace_run: Path) -> None:
    no_cache, ttl10 = read(trace_run / "summary.csv")  # sorted by TTL
    assert {k: no_cache[k] for k in ("ttl_s", "requests", "hits", "misses", "model_calls")} == {
        "ttl_s": "0", "requests": "8", "hits": "0", "misses": "8", "model_calls": "8",
    }  # fmt: skip
    assert (no_cache["hit_ratio"], no_cache["expected_hit_ratio"]) == ("0.0", "0.0")
    assert {k: ttl10[k] for k in ("ttl_s", "requests", "hits", "misses", "model_calls")} == {
        "ttl_s": "10", "requests": "8", "hits": "3", "misses": "5", "model_calls": "5",
    }  # fmt: skip
    assert float(ttl10["hit_ratio"]) == 3 / 8
    # the TTL model on the trace's own rates: ETH/EUR 5 requests, BTC/USD 3, over 25 s
    lam = {"ETH": 5 / 25, "BTC": 3 / 25}
    share = {"ETH": 5 / 8, "BTC": 3 / 8}
    expected = sum(share[k] * lam[k] * 10 / (1 + lam[k] * 10) for k in lam)
    assert float(ttl10["expected_hit_ratio"]) == round(expected, 6) == 0.621212
    assert float(ttl10["rate"]) == 8 / 25
    # served ages: 0 0 5 0 2 0 1 0; mean 1, p95 = 2 + 0.65 * (5 - 2) = 3.95, floored to the ms
    # (3.95 is 3.94999... in binary, so 3.949), max 5
    ages = [0.0, 0.0, 5.0, 0.0, 2.0, 0.0, 1.0, 0.0]
    served = [r for r in read(trace_run / "requests.csv") if r["ttl_s"] == "10"]
    assert [float(r["age_s"]) for r in served] == ages
    assert [r["cache"] for r in served] == [
        "miss",
        "miss",
        "hit",
        "miss",
        "hit",
        "miss",
        "hit",
        "miss",
    ]
    assert (ttl10["mean_age_s"], ttl10["p95_age_s"], ttl10["max_age_s"]) == ("1.0", "3.949", "5.0")
    assert math.floor(percentile(ages, 95) * 1000) / 1000 == 3.949


def test_every_latency_figure_from_the_requests_it_summarises(trace_run: Path) -> None:
    requests = read(trace_run / "requests.csv")
    summary = {r["ttl_s"]: r for r in read(trace_run / "summary.csv")}
    mean = {}
    for ttl, row in summary.items():
        mine = [r for r in requests if r["ttl_s"] == ttl]
        lat = [float(r["latency_ms"]) for r in mine]
        hits = [float(r["latency_ms"]) for r in mine if r["cache"] == "hit"]
        misses = [float(r["latency_ms"]) for r in mine if r["cache"] == "miss"]
        assert len(lat) == 8 and len(hits) == int(row["hits"])
        mean[ttl] = sum(lat) / len(lat)
        tol = 2e-5  # both sides are rounded to 5 decimals
        assert float(row["latency_p50_ms"]) == pytest.approx(percentile(lat, 50), abs=tol)
        assert float(row["latency_p95_ms"]) == pytest.approx(percentile(lat, 95), abs=tol)
        assert float(row["latency_p99_ms"]) == pytest.approx(percentile(lat, 99), abs=tol)
        assert float(row["latency_mean_ms"]) == pytest.approx(mean[ttl], abs=tol)
        assert float(row["miss_latency_p50_ms"]) == pytest.approx(percentile(misses, 50), abs=tol)
        if hits:
            assert float(row["hit_latency_p50_ms"]) == pytest.approx(percentile(hits, 50), abs=tol)
        else:
            assert row["hit_latency_p50_ms"] == ""
    assert float(summary["0"]["speedup_vs_no_cache"]) == 1.0
    speedup = mean["0"] / mean["10"]
    # rounded to 3 decimals; the per-request latencies to 5
    assert float(summary["10"]["speedup_vs_no_cache"]) == pytest.approx(speedup, rel=2e-3, abs=5e-4)


def test_error_bps_is_absolute() -> None:
    predicted = np.array([99.0, 101.0, 100.0, 95.0])
    realised = np.array([100.0, 100.0, 100.0, 100.0])
    assert error_bps(predicted, realised).tolist() == [100.0, 100.0, 0.0, 500.0]


def test_staleness_error_columns_are_absolute_errors(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Slow traffic over hours with a 10-minute TTL: served predictions are often minutes old,
    and land above and below the realised price, so a signed error would cancel out."""
    folder = bench(tmp_path, capsys, "--ttl", "600", "--requests", "300", "--rate", "0.02",
                   "--pairs", "ETH/EUR,BTC/USD", "--horizons", "5m", "--seed", "3")  # fmt: skip
    (row,) = read(folder / "summary.csv")
    requests = read(folder / "requests.csv")
    served = np.array([float(r["served_price"]) for r in requests])
    fresh = np.array([float(r["fresh_price"]) for r in requests])
    realised = np.array([float(r["realised_price"]) for r in requests])
    assert (served < realised).sum() > 20 and (served > realised).sum() > 20  # both signs
    assert int(row["hits"]) > 100  # many served predictions are stale
    mae_served = float(np.mean(1e4 * np.abs(served - realised) / realised))
    mae_fresh = float(np.mean(1e4 * np.abs(fresh - realised) / realised))
    assert float(row["mae_served_bps"]) == pytest.approx(mae_served, abs=1e-4)
    assert float(row["mae_fresh_bps"]) == pytest.approx(mae_fresh, abs=1e-4)
    assert float(row["added_error_bps"]) == pytest.approx(mae_served - mae_fresh, abs=2e-4)
    assert float(row["added_error_path0_bps"]) == pytest.approx(mae_served - mae_fresh, abs=2e-4)
    assert mae_served != pytest.approx(mae_fresh, abs=1e-2)  # the stale entries cost something


# --- the report: picks and order, on unsorted hand-made rows --------------------------------

ROWS = pd.DataFrame(
    [  # run, ttl, hit ratio, added error, speedup; deliberately out of order, not monotone
        ("B", 20.0, 0.70, 0.30, 3.0),
        ("A", 300.0, 0.70, 2.50, 7.0),
        ("A", 0.0, 0.00, 0.00, 1.0),
        ("A", 600.0, 0.95, 0.95, 9.0),
        ("A", float("nan"), 0.99, 0.00, 50.0),  # a live row: no TTL, never picked
        ("A", 90.0, 0.80, 0.90, 5.0),
        ("B", 10.0, 0.50, 0.10, 2.0),
        ("A", 30.0, 0.60, 0.20, 2.5),
    ],
    columns=["run_id", "ttl_s", "hit_ratio", "added_error_bps", "speedup_vs_no_cache"],
)


def _picks(recs: list) -> dict[str, float | None]:  # type: ignore[type-arg]
    return {r.run_id: r.ttl_s for r in recs}


@pytest.mark.parametrize(
    ("budget", "picks"),
    [
        (1.0, {"A": 600.0, "B": 20.0}),  # largest within budget, not the last before a breach
        (0.5, {"A": 30.0, "B": 20.0}),
        (0.2, {"A": 30.0, "B": 10.0}),  # "at most": equal to the budget qualifies
        (0.1, {"A": None, "B": 10.0}),  # TTL 0 (no cache, the baseline) is never a pick
    ],
)
def test_error_budget_picks_the_largest_qualifying_ttl(
    budget: float, picks: dict[str, float | None]
) -> None:
    assert _picks(within_error_budget(ROWS, budget)) == picks


@pytest.mark.parametrize(
    ("target", "picks"),
    [
        (0.75, {"A": 90.0, "B": None}),  # smallest reaching it, though 300 s falls back below
        (0.70, {"A": 90.0, "B": 20.0}),  # "at least": equal to the target qualifies
        (0.5, {"A": 30.0, "B": 10.0}),
        (0.96, {"A": None, "B": None}),  # the live row's 0.99 does not count
    ],
)
def test_hit_ratio_target_picks_the_smallest_qualifying_ttl(
    target: float, picks: dict[str, float | None]
) -> None:
    assert _picks(reaching_hit_ratio(ROWS, target)) == picks


def test_a_pick_carries_its_row_and_says_why() -> None:
    (a, b) = within_error_budget(ROWS, 1.0)
    assert (a.ttl_s, a.hit_ratio, a.speedup, a.added_error_bps) == (600.0, 0.95, 9.0, 0.95)
    assert a.line() == (
        "A: TTL 10m (largest within 1 bps): hit ratio 0.950, speedup 9.0x, added error +0.95 bps"
    )
    assert b.line() == (
        "B: TTL 20s (largest within 1 bps): hit ratio 0.700, speedup 3.0x, added error +0.30 bps"
    )
    (none_a, none_b) = within_error_budget(ROWS, -1.0)
    assert none_a.line() == (
        "A: no measured TTL keeps the added error within -1 bps (the least is +0.20 bps)"
    )
    assert none_b.ttl_s is None and "(the least is +0.10 bps)" in none_b.line()
    (best_a, _) = reaching_hit_ratio(ROWS, 0.96)
    assert best_a.line() == (
        "A: no measured TTL reaches a hit ratio of 0.96 (the best is 0.950); try a longer TTL"
    )


def test_report_sorts_unsorted_summaries(
    trace_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs whose files list TTLs out of order, and whose folder order is not the run
    order: the report lists runs by id, then TTLs ascending."""
    rows = read(trace_run / "summary.csv")  # TTL 0 then 10
    results = tmp_path / "shuffled"
    for folder, run_id in (("1-first-folder", "zz-run"), ("2-second-folder", "aa-run")):
        (results / folder).mkdir(parents=True)
        with (results / folder / "summary.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in reversed(rows):  # TTL 10 first
                writer.writerow(dict(row, run_id=run_id))
    code = run(["report", str(results), "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0, err
    listed = [(r["run_id"], r["ttl_s"]) for r in csv.DictReader(out.splitlines())]
    assert listed == [("aa-run", "0"), ("aa-run", "10"), ("zz-run", "0"), ("zz-run", "10")]


# --- the TTL model, by hand ------------------------------------------------------------------


def test_expected_hit_ratio_by_hand() -> None:
    from predcache.bench.ttl_model import expected_hit_ratio

    # one key at 1 req/s, T = 2: 2 / 3
    assert expected_hit_ratio(np.array([1.0]), 2.0) == pytest.approx(2 / 3, abs=1e-15)
    # rates 3 and 1, T = 1: p = (.75, .25), x = (3, 1): .75 * 3/4 + .25 * 1/2 = .6875
    assert expected_hit_ratio(np.array([3.0, 1.0]), 1.0) == pytest.approx(0.6875, abs=1e-15)
    # a key nobody asks for adds nothing
    assert expected_hit_ratio(np.array([3.0, 1.0, 0.0]), 1.0) == pytest.approx(0.6875, abs=1e-15)
    assert expected_hit_ratio(np.array([3.0, 1.0]), 0.0) == 0.0
    assert expected_hit_ratio(np.array([3.0, 1.0]), -5.0) == 0.0
    assert expected_hit_ratio(np.array([0.0, 0.0]), 90.0) == 0.0
    assert expected_hit_ratio([2, 2], 0.5) == pytest.approx(0.5, abs=1e-15)  # type: ignore[arg-type]


def test_key_rates_of_a_workload(tmp_path: Path) -> None:
    from predcache.bench.ttl_model import expected_for_workload, workload_key_rates
    from predcache.bench.workload import load_trace, synthetic, zipf_probabilities

    keys = [("ETH/EUR", 60), ("BTC/USD", 60), ("SOL/USD", 60)]
    w = synthetic(keys, requests=50, rate=4.0, zipf=1.0, seed=1, start=float(START))
    assert workload_key_rates(w) == pytest.approx(4.0 * zipf_probabilities(3, 1.0), abs=1e-15)
    assert zipf_probabilities(3, 1.0) == pytest.approx([6 / 11, 3 / 11, 2 / 11], abs=1e-15)
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,pair,horizon\n" + "".join(
        f"{START + o},{p},1m\n" for o, p in [(0, "ETH/EUR"), (4, "BTC/USD"), (10, "ETH/EUR")]
    ))  # fmt: skip
    t = load_trace(trace)
    rates = dict(zip(t.keys, workload_key_rates(t).tolist(), strict=True))
    assert rates == {("ETH/EUR", 60): 2 / 10, ("BTC/USD", 60): 1 / 10}
    # p = (2/3, 1/3), x = lambda T = (1, 0.5): 2/3 * 1/2 + 1/3 * 0.5/1.5 = 4/9
    expected = 4 / 9
    assert expected_for_workload(t, 5.0) == pytest.approx(expected, abs=1e-15)
    same_instant = tmp_path / "s.csv"
    same_instant.write_text(f"timestamp,pair,horizon\n{START},ETH/EUR,1m\n{START},BTC/USD,1m\n")
    assert expected_for_workload(load_trace(same_instant), 5.0) is None
    half_second = tmp_path / "h.csv"
    half_second.write_text(
        f"timestamp,pair,horizon\n{START},ETH/EUR,1m\n{START + 0.5},ETH/EUR,1m\n"
    )
    assert expected_for_workload(load_trace(half_second), 1.0) == 0.8  # rate 4/s, x = 4


def test_expected_outcomes_of_unequal_keys_by_hand() -> None:
    """Two keys at 3/s and 1/s (shares 3/4, 1/4) and one nobody asks for; T = 3 s, d = 1 s."""
    from predcache.bench.ttl_model import expected_outcomes

    rates = np.array([3.0, 1.0, 0.0])
    # coalesce, per key cycle 1 + r T: r=3: 10 -> hit 3*2/10, collapsed 3*1/10, miss 1/10;
    # r=1: 4 -> 2/4, 1/4, 1/4. Weighted: .75 * (.6, .3, .1) + .25 * (.5, .25, .25)
    c = expected_outcomes(rates, 3.0, 1.0, "coalesce")
    assert c == pytest.approx({"hit": 0.575, "collapsed": 0.2875, "miss": 0.1375}, abs=1e-15)
    # a negative delay is no delay: r=3: 3*3/10 hit, 1/10 miss; r=1: 3/4, 1/4
    assert expected_outcomes(rates, 3.0, -1.0, "coalesce") == pytest.approx(
        {"hit": 0.75 * 0.9 + 0.25 * 0.75, "collapsed": 0.0, "miss": 0.75 * 0.1 + 0.25 * 0.25},
        abs=1e-15,
    )
    # none: E[L] = d - (1 - e^-rd)/r: r=3: 0.683262, r=1: e^-1 = 0.367879; hits per key
    # r (E[L] + T - d) / (1 + r (E[L] + T)): 0.668044 and 0.542111; the idle key adds nothing
    n = expected_outcomes(rates, 3.0, 1.0, "none")
    assert n == pytest.approx({"hit": 0.636561, "collapsed": 0.0, "miss": 0.363439}, abs=1e-6)
    # a model slower than the TTL without protection: the entry is stale before it is written
    # (r=1, d=2: E[L] = 2 - (1 - e^-2) = 1.135335, E[L] + T - d < 0 at T = 0.5): nothing hits
    assert expected_outcomes(np.array([1.0]), 0.5, 2.0, "none") == {
        "hit": 0.0, "collapsed": 0.0, "miss": 1.0,
    }  # fmt: skip
    # no TTL: every request misses, even with requests arriving during the computation
    for stampede in ("coalesce", "none", "refresh-ahead"):
        assert expected_outcomes(rates, 0.0, 1.0, stampede) == {
            "hit": 0.0, "collapsed": 0.0, "miss": 1.0,
        }  # fmt: skip
    assert expected_outcomes(np.array([0.0, 0.0]), 3.0, 1.0, "coalesce") is None  # no traffic
    assert expected_outcomes([3, 1], 3.0, 1.0, "coalesce") == c  # type: ignore[arg-type]


def test_expected_outcomes_of_a_workload(tmp_path: Path) -> None:
    from predcache.bench.ttl_model import expected_outcomes_for_workload
    from predcache.bench.workload import load_trace

    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,pair,horizon\n" + "".join(
        f"{START + o},{p},1m\n" for o, p in [(0, "ETH/EUR"), (4, "BTC/USD"), (10, "ETH/EUR")]
    ))  # fmt: skip
    # rates 0.2 and 0.1 over the 10 s span, T = 5, d = 1 (coalesce): cycles 2 and 1.5:
    # 2/3 * (0.8, 0.2, 1) / 2 + 1/3 * (0.4, 0.1, 1) / 1.5 (hit r (T - d), collapsed r d, miss 1)
    got = expected_outcomes_for_workload(load_trace(trace), 5.0, 1.0, "coalesce")
    assert got == pytest.approx(
        {"hit": 0.8 / 3 + 0.4 / 4.5, "collapsed": 0.2 / 3 + 0.1 / 4.5, "miss": 1 / 3 + 1 / 4.5},
        abs=1e-15,
    )
    same_instant = tmp_path / "s.csv"
    same_instant.write_text(f"timestamp,pair,horizon\n{START},ETH/EUR,1m\n{START},BTC/USD,1m\n")
    assert expected_outcomes_for_workload(load_trace(same_instant), 5.0, 1.0, "coalesce") is None
    half_second = tmp_path / "h.csv"  # a span under a second still has a rate: 2 / 0.5 s
    half_second.write_text(
        f"timestamp,pair,horizon\n{START},ETH/EUR,1m\n{START + 0.5},ETH/EUR,1m\n"
    )
    # rate 4, T = 1, d = 0.5: cycle 1 + 4 = 5, hit 4 * 0.5 / 5, collapsed 4 * 0.5 / 5, miss 1/5
    assert expected_outcomes_for_workload(
        load_trace(half_second), 1.0, 0.5, "coalesce"
    ) == pytest.approx({"hit": 0.4, "collapsed": 0.4, "miss": 0.2}, abs=1e-15)


def test_criteria_marks_and_unmet() -> None:
    from predcache.report.recommend import marks, unmet

    budget = within_error_budget(ROWS, 0.5)
    target = reaching_hit_ratio(ROWS, 0.75)
    assert {r.criterion for r in budget} == {"--error-budget 0.5"}
    assert {r.criterion for r in target} == {"--target-hit-ratio 0.75"}
    assert marks(budget + target) == {
        "A": [(30.0, "largest within 0.5 bps"), (90.0, "smallest reaching 0.75")],
        "B": [(20.0, "largest within 0.5 bps")],
    }
    assert unmet(budget + target) is None
    none = reaching_hit_ratio(ROWS, 0.96)
    assert unmet(budget + none) == (
        "no TTL to recommend for --target-hit-ratio 0.96: no measured TTL reaches a hit ratio "
        "of 0.96 (the best is 0.950); try a longer TTL"
    )
    empty = ROWS[ROWS["ttl_s"] > 1000]
    (e,) = within_error_budget(empty, 1.0)
    assert (e.run_id, e.ttl_s, e.line()) == (
        "-",
        None,
        "-: no simulated run with an added error to compare",
    )
    (h,) = reaching_hit_ratio(empty.drop(columns=["hit_ratio"]), 0.5)
    assert h.line() == "-: no simulated run with a hit ratio per TTL"
    (nan_row,) = within_error_budget(
        pd.DataFrame(
            [("C", 60.0, 0.5, 0.1)], columns=["run_id", "ttl_s", "hit_ratio", "added_error_bps"]
        ),
        1.0,
    )
    assert (
        nan_row.line()
        == "C: TTL 1m (largest within 1 bps): hit ratio 0.500, speedup -x, added error +0.10 bps"
    )


def test_picks_on_partial_tables() -> None:
    """A column missing, TTLs below a second, criteria carried by every answer."""
    no_error = ROWS.drop(columns=["added_error_bps"])
    (a, _) = reaching_hit_ratio(no_error, 0.5)
    assert (a.ttl_s, a.line()) == (
        30.0, "A: TTL 30s (smallest reaching 0.5): hit ratio 0.600, speedup 2.5x, added error - bps"
    )  # fmt: skip
    empty = ROWS[ROWS["ttl_s"] > 1000]
    (e,) = reaching_hit_ratio(empty, 0.5)
    assert (e.line(), e.criterion) == (
        "-: no simulated run with a hit ratio per TTL", "--target-hit-ratio 0.5"
    )  # fmt: skip
    assert within_error_budget(empty, 1.0)[0].criterion == "--error-budget 1"
    assert {r.criterion for r in within_error_budget(ROWS, -1.0)} == {"--error-budget -1"}
    sub_second = pd.DataFrame(
        [("D", 0.5, 0.4, 0.0), ("D", 0.0, 0.0, 0.0)],
        columns=["run_id", "ttl_s", "hit_ratio", "added_error_bps"],
    )
    assert [r.ttl_s for r in within_error_budget(sub_second, 1.0)] == [0.5]
