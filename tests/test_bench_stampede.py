"""The discrete-event engine's stampede strategies, on hand-computed event sequences.

Every trace below runs at TTL 10 s with a simulated 1 s model on the real memory store; the
measured inference (well under a millisecond) is the only time added to the simulated
delay, so latencies are pinned to within EPS_MS and outcomes exactly. Events are
never placed within a millisecond of an expiry or of a computation's end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from predcache.bench.engine import OUTCOMES, Replay, replay
from predcache.bench.ttl_model import expected_outcomes, expected_outcomes_for_workload
from predcache.bench.workload import load_trace, synthetic
from predcache.registry import ModelRegistry
from predcache.stampede import Strategy

START = 1_748_822_400.0  # 2025-06-02T00:00:00Z
KEYS9 = [(p, h) for p in ("ETH/EUR", "BTC/USD", "SOL/USD") for h in (60, 300, 900)]
#: compute_ms is kept to the microsecond and times are epoch floats (0.24 us apart at 2025)
ROUNDING_MS = 0.01
EPS_MS = 50.0  # measured inference (a new market block: ~10 ms) and store work, under load
#: refresh-ahead test: requests after an expiry whose refresh started late (seeded die, seed 0)
COLLAPSED_AFTER_LATE_REFRESH = 2  # measured inference and store work, on a loaded machine


def run_trace(
    models_dir: Path,
    tmp_path: Path,
    rows: list[tuple[float, str]],
    stampede: Strategy,
    *,
    grace: float = 0.0,
    model_concurrency: int | None = None,
) -> Replay:
    trace = tmp_path / f"trace-{stampede}.csv"
    trace.write_text("timestamp,pair,horizon\n" + "".join(f"{START + o},{p},5m\n" for o, p in rows))
    registry = ModelRegistry(models_dir, auto_train=False)
    for pair in ("ETH/EUR", "BTC/USD"):  # load the models first, as the bench does
        registry.compute(pair, 300, START)
    return replay(
        load_trace(trace), registry, ttl_s=10.0,
        model_delay_s=1.0, backend="memory", cache_dir=None, namespace=f"t-{stampede}",
        stampede=stampede, stale_grace_s=grace, model_concurrency=model_concurrency,
    )  # fmt: skip


def waited(rep: Replay, i: int, *computations: int) -> float:
    """Request ``i``'s latency less its store read and the measured inference of the
    computations it waited for: the simulated part, which the event sequence fixes."""
    simulated = rep.latency_ms[i] - rep.lookup_ms[i] - sum(rep.model_ms[c] for c in computations)
    return float(simulated) + ROUNDING_MS


def outcomes(rep: Replay) -> list[str]:
    return [OUTCOMES[o] for o in rep.outcome.tolist()]


ETH = [(0.0, "ETH/EUR"), (0.5, "ETH/EUR"), (0.9, "ETH/EUR"), (2.0, "ETH/EUR"),
       (10.5, "ETH/EUR"), (11.0, "ETH/EUR"), (12.0, "ETH/EUR")]  # fmt: skip


def test_coalesce_waits_for_the_computation_in_flight(models_dir: Path, tmp_path: Path) -> None:
    rep = run_trace(models_dir, tmp_path, ETH, "coalesce")
    # 0 misses (computes 0 -> 1), 0.5 and 0.9 wait for it, 2.0 hits (age 2), 10.5 finds it
    # expired (age 10.5): misses (10.5 -> 11.5), 11.0 waits, 12.0 hits (age 1.5)
    assert outcomes(rep) == ["miss", "collapsed", "collapsed", "hit", "miss", "collapsed", "hit"]
    assert (rep.model_calls, rep.duplicate_calls, rep.max_inflight) == (2, 0, 1)
    for i, by, want in [(0, 0, 1000), (1, 0, 500), (2, 0, 100), (4, 4, 1000), (5, 4, 500)]:
        assert want <= waited(rep, i, by) < want + EPS_MS
    assert rep.latency_ms[3] < EPS_MS and rep.latency_ms[6] < EPS_MS
    inference = rep.model_ms / 1000  # a collapsed request is served the entry at its age then
    ages = rep.age_s - [0, inference[0], inference[0], 0, 0, inference[4], 0]
    assert ages.tolist() == pytest.approx([0, 1, 1, 2, 0, 1, 1.5], abs=1e-5)
    # the collapsed requests are served the entry the miss computed
    assert rep.served_price[1] == rep.served_price[2] == rep.served_price[0]


def test_none_lets_every_request_compute(models_dir: Path, tmp_path: Path) -> None:
    rep = run_trace(models_dir, tmp_path, ETH, "none")
    # 0, 0.5 and 0.9 all compute (their entries land at 1, 1.5, 1.9); at 2.0 the store holds
    # the one made at 0.9 (age 1.1), still fresh at 10.5 (age 9.6); at 11.0 it is 10.1 old:
    # miss (11 -> 12); at 12.0 that computation has just ended on the simulated clock (its
    # measured inference does not move events) and is written first: a hit, age 1
    assert outcomes(rep) == ["miss", "miss", "miss", "hit", "hit", "miss", "hit"]
    assert (rep.model_calls, rep.duplicate_calls, rep.max_inflight) == (4, 2, 3)
    assert rep.age_s.tolist() == pytest.approx([0, 0, 0, 1.1, 9.6, 0, 1.0], abs=1e-5)
    assert all(1000 <= waited(rep, i, i) < 1000 + EPS_MS for i in (0, 1, 2, 5))


def test_stale_while_revalidate_serves_the_expired_entry_at_once(
    models_dir: Path, tmp_path: Path
) -> None:
    rows = [(0.0, "ETH/EUR"), (0.5, "ETH/EUR"), (2.0, "ETH/EUR"), (12.0, "ETH/EUR"),
            (12.5, "ETH/EUR"), (13.5, "ETH/EUR"), (30.0, "ETH/EUR")]  # fmt: skip
    rep = run_trace(models_dir, tmp_path, rows, "stale-while-revalidate", grace=5.0)
    # 12.0: age 12, within 10 + 5: stale at once, one refresh 12 -> 13; 12.5: stale again
    # (the refresh runs); 13.5: the refreshed entry (age 1.5); 30.0: age 18, past the grace
    assert outcomes(rep) == ["miss", "collapsed", "hit", "stale", "stale", "hit", "miss"]
    assert (rep.model_calls, rep.duplicate_calls) == (3, 0)
    inference = rep.model_ms / 1000
    ages = rep.age_s - [0, inference[0], 0, 0, 0, 0, 0]
    assert ages.tolist() == pytest.approx([0, 1, 2, 12, 12.5, 1.5, 0], abs=1e-5)
    assert rep.latency_ms[3] < EPS_MS and rep.latency_ms[4] < EPS_MS


def test_refresh_ahead_keeps_a_steady_key_hot(models_dir: Path, tmp_path: Path) -> None:
    rows = [(0.05 + 0.3 * i, "ETH/EUR") for i in range(200)]  # every 0.3 s for a minute
    coalesce = run_trace(models_dir, tmp_path, rows, "coalesce")
    # coalesce: at 0.05 and at each expiry (10.25, 20.45, 30.65, 40.85, 51.05) one miss and
    # the three requests of the next second wait for it
    assert (coalesce.count("miss"), coalesce.count("collapsed")) == (6, 18)
    rep = run_trace(models_dir, tmp_path, rows, "refresh-ahead")
    # refresh-ahead: only the cold start misses; each expiry was refreshed in the background
    # (XFetch's seeded die: a refresh that starts less than 1 s before expiry still makes the
    # requests after the expiry wait for it)
    assert (rep.count("miss"), rep.count("collapsed")) == (1, 3 + COLLAPSED_AFTER_LATE_REFRESH)
    # early refreshes come a little before each expiry, so they cost more calls than coalesce
    assert rep.model_calls == 8 > coalesce.model_calls and rep.duplicate_calls == 0


def test_model_concurrency_queues_computations(models_dir: Path, tmp_path: Path) -> None:
    rows = [(0.0, "ETH/EUR"), (0.1, "BTC/USD"), (0.2, "ETH/EUR"), (3.0, "BTC/USD")]
    rep = run_trace(models_dir, tmp_path, rows, "coalesce", model_concurrency=1)
    # BTC waits for the one model worker (free at ~1.0), computes 1.0 -> 2.0: 1.9 s
    assert outcomes(rep) == ["miss", "miss", "collapsed", "hit"]
    assert 1000 <= waited(rep, 0, 0) < 1000 + EPS_MS
    assert 1900 <= waited(rep, 1, 0, 1) < 1900 + EPS_MS  # behind ETH's whole computation
    assert 800 <= waited(rep, 2, 0) < 800 + EPS_MS
    assert rep.latency_ms[3] < EPS_MS
    # stamped when it started, once the worker was free (1 s plus ETH's inference)
    assert rep.age_s[3] + rep.model_ms[0] / 1000 == pytest.approx(2.0, abs=1e-5)
    assert rep.max_inflight == 2  # one running, one queued


def test_closed_form_by_hand() -> None:
    """One key at 2/s, T = 5 s, d = 1 s."""
    rates = [2.0]
    c = expected_outcomes(rates, 5.0, 1.0, "coalesce")  # type: ignore[arg-type]
    assert c == pytest.approx({"hit": 8 / 11, "collapsed": 2 / 11, "miss": 1 / 11})
    # none: E[L] = 1 - (1 - e^-2)/2 = 0.567668; cycle 1 + 2 (E[L] + 5) = 12.135335
    n = expected_outcomes(rates, 5.0, 1.0, "none")  # type: ignore[arg-type]
    assert n == pytest.approx({"hit": 0.752788, "collapsed": 0.0, "miss": 0.247212}, abs=1e-5)
    # a model slower than the TTL: nothing hits, every request during a computation waits
    slow = expected_outcomes(rates, 1.0, 2.0, "coalesce")  # type: ignore[arg-type]
    assert slow == pytest.approx({"hit": 0.0, "collapsed": 4 / 5, "miss": 1 / 5})
    assert expected_outcomes(rates, 5.0, 1.0, "refresh-ahead") is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stampede", "rate", "ttl", "delay"),
    [("coalesce", 50.0, 5.0, 1.0), ("coalesce", 20.0, 2.0, 0.5), ("none", 50.0, 5.0, 1.0)],
)
def test_simulation_agrees_with_the_closed_form(
    models_dir: Path, stampede: Strategy, rate: float, ttl: float, delay: float
) -> None:
    """The issue's check: hits and collapsed within 0.01 of the request count (fixed seed)."""
    n = 20_000
    w = synthetic(KEYS9, requests=n, rate=rate, zipf=1.0, seed=7, start=START)
    rep = replay(
        w, ModelRegistry(models_dir, auto_train=False), ttl_s=ttl, model_delay_s=delay,
        backend="memory", cache_dir=None, namespace="cf", stampede=stampede,
    )  # fmt: skip
    expected = expected_outcomes_for_workload(w, ttl, delay, stampede)
    assert expected is not None
    for outcome in ("hit", "collapsed", "miss"):
        assert abs(rep.count(outcome) - expected[outcome] * n) <= 0.01 * n, outcome
    assert rep.model_calls == rep.count("miss")
