"""Simulated model failures in the bench (``--model-fail-rate``, ``--stale-if-error``), on a
hand-computed event sequence.

One key (ETH/EUR 5m), TTL 10 s, a simulated 1 s model, coalesce, rate 0.5. A trace has no seed,
so the failure die is ``random.Random("0:model-fail")``; its first draws are pinned below, and
a call fails when its draw is under the rate: calls 1-3 fail, 4 and 5 succeed, 6 and 7 fail, 8
succeeds. With ``--stale-if-error 2.5s`` the sequence is (offsets in s, "ends" in simulated s,
the measured inference aside):

====  =====================================================================  ===============
  i   what happens                                                           answer
====  =====================================================================  ===============
  0   0.0: miss, call 1 (0 -> 1) fails; nothing stored                       failed, 1000 ms
  1   0.5: waits for call 1, then computes: call 2 (1 -> 2) fails            failed, 1500 ms
  2   0.8: waits for call 2, then computes: call 3 (2 -> 3) fails            failed, 2200 ms
  3   5.0: miss, call 4 (5 -> 6) succeeds                                    miss, 1000 ms
  4   5.5: waits for call 4                                                  collapsed, 500 ms
  5   7.0: fresh (age 2)                                                     hit
  6   16.0: expired (age 11): call 5 (16 -> 17) succeeds                     miss
  7   27.0: expired (age 11): call 6 (27 -> 28) fails; the entry is 12 s     stale, age 12
      old then, under 10 + 2.5: served (stale-if-error)
  8   27.5: waits for call 6, then call 7 (28 -> 29) fails; the entry is     failed, 1500 ms
      13 s old then, past the window
  9   29.5: expired (age 13.5): call 8 (29.5 -> 30.5) succeeds               miss
====  =====================================================================  ===============
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from predcache.bench.engine import OUTCOMES, Replay, replay
from predcache.bench.workload import load_trace
from predcache.cli import run
from predcache.registry import ModelRegistry
from tests.fixtures.server import ServerFactory
from tests.test_http_cache import TTL_S, age_entry, get

START = 1_748_822_400.0  # 2025-06-02T00:00:00Z
OFFSETS = [0.0, 0.5, 0.8, 5.0, 5.5, 7.0, 16.0, 27.0, 27.5, 29.5]
EPS_MS = 50.0  # measured inference and store work, under load
ROUNDING_MS = 0.01


def write_trace(tmp_path: Path) -> Path:
    trace = tmp_path / "fail-trace.csv"
    trace.write_text(
        "timestamp,pair,horizon\n" + "".join(f"{START + o},ETH/EUR,5m\n" for o in OFFSETS)
    )
    return trace


def run_failing(models_dir: Path, tmp_path: Path, stale_if_error_s: float) -> Replay:
    registry = ModelRegistry(models_dir, auto_train=False)
    registry.compute("ETH/EUR", 300, START)  # load the model first, as the bench does
    return replay(
        load_trace(write_trace(tmp_path)), registry, ttl_s=10.0, model_delay_s=1.0,
        backend="memory", cache_dir=None, namespace=f"fail-{stale_if_error_s}",
        model_fail_rate=0.5, stale_if_error_s=stale_if_error_s,
    )  # fmt: skip


def test_the_failure_die_is_the_one_the_sequence_was_computed_with() -> None:
    die = random.Random("0:model-fail")
    draws = [die.random() for _ in range(8)]
    assert [d < 0.5 for d in draws] == [True, True, True, False, False, True, True, False]


def test_failures_retries_and_stale_if_error_on_a_hand_computed_sequence(
    models_dir: Path, tmp_path: Path
) -> None:
    rep = run_failing(models_dir, tmp_path, stale_if_error_s=2.5)
    assert [OUTCOMES[o] for o in rep.outcome.tolist()] == [
        "miss", "miss", "miss", "miss", "collapsed", "hit", "miss", "stale", "miss", "miss",
    ]  # fmt: skip
    assert np.flatnonzero(rep.failed).tolist() == [0, 1, 2, 8]
    assert np.flatnonzero(rep.stale_if_error).tolist() == [7]
    assert (rep.model_calls, rep.duplicate_calls) == (8, 0)  # failed calls count; retries
    # are no duplicates (each starts when the one before it failed)
    model = rep.model_ms.tolist()
    # the simulated part of each latency: less the inference of every computation it waited for
    for i, waited_for, want in [
        (0, [0], 1000), (1, [0, 1], 1500), (2, [0, 1, 2], 2200), (3, [3], 1000),
        (4, [3], 500), (7, [7], 1000), (8, [7, 8], 1500), (9, [9], 1000),
    ]:  # fmt: skip
        simulated = rep.latency_ms[i] - rep.lookup_ms[i] - sum(model[c] for c in waited_for)
        assert want <= simulated + ROUNDING_MS < want + EPS_MS, i
    # the stale-if-error answer is the entry of call 5 (made at 16), 12 s old when call 6 failed
    assert rep.age_s[7] - model[7] / 1000 == pytest.approx(12.0, abs=1e-5)
    assert rep.served_price[7] == rep.served_price[6]
    # a failed request served nothing
    assert np.isnan(rep.served_price[[0, 1, 2, 8]]).all()
    assert not np.isnan(rep.served_price[[3, 4, 5, 6, 7, 9]]).any()


def test_without_stale_if_error_the_expired_entry_is_not_served(
    models_dir: Path, tmp_path: Path
) -> None:
    rep = run_failing(models_dir, tmp_path, stale_if_error_s=0.0)
    assert np.flatnonzero(rep.failed).tolist() == [0, 1, 2, 7, 8]
    assert not rep.stale_if_error.any()
    assert rep.count("stale") == 0


def test_bench_cli_counts_failed_and_stale_if_error_per_row(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    args = ["bench", "--backend", "memory", "--json", "--trace", str(write_trace(tmp_path))]
    args += ["--ttl", "10", "--model-delay", "1s", "--model-fail-rate", "0.5"]
    args += ["--stale-if-error", "2.5s", "--out", str(out), "--market-paths", "2"]
    assert run(args) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["failed"], row["stale_if_error"], row["stale"]) == (4, 1, 1)
    assert (row["requests"], row["hits"], row["misses"], row["collapsed"]) == (10, 1, 7, 1)
    assert (row["model_calls"], row["model_fail_rate"], row["stale_if_error_s"]) == (8, 0.5, 2.5)
    # ages count the 6 answered requests: 0 (miss) x3, ~1 (collapsed), 2 (hit), ~12 (stale)
    assert row["max_age_s"] == pytest.approx(12.0, abs=0.05)
    assert row["mean_age_s"] == pytest.approx(15.0 / 6, abs=0.05)
    (run_dir,) = list(out.iterdir())
    header = (run_dir / "summary.csv").read_text().splitlines()[0].split(",")
    at = header.index("model_fail_rate")  # appended after the columns before them
    assert header[at : at + 4] == [
        "model_fail_rate",
        "stale_if_error_s",
        "failed",
        "stale_if_error",
    ]
    params = json.loads((run_dir / "params.json").read_text())
    assert params["options"]["model_fail_rate"] == 0.5
    assert "--model-fail-rate 0.5 --stale-if-error 2.5s" in params["command"]


def test_every_request_failing_leaves_ages_and_accuracy_empty(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench", "--backend", "memory", "--json", "--trace", str(write_trace(tmp_path))]
    args += ["--ttl", "0,10", "--model-fail-rate", "1", "--out", str(tmp_path / "r")]
    assert run(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["failed"], r["stale_if_error"], r["model_calls"]) for r in rows] == [
        (10, 0, 10),  # no cache: every request calls the model
        (10, 0, 10),  # nothing is ever stored, so every request calls it too
    ]
    assert all(r["mean_age_s"] is None and r["mae_served_bps"] is None for r in rows)


def test_a_seed_fixes_the_failures_and_another_seed_changes_them(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def counts(seed: int) -> list[tuple[int, int]]:
        args = ["bench", "--backend", "memory", "--json", "--requests", "1500", "--seed"]
        args += [str(seed), "--ttl", "30", "--model-fail-rate", "0.3", "--stale-if-error", "1m"]
        assert run([*args, "--out", str(tmp_path / "r"), "--market-paths", "1"]) == 0
        rows = json.loads(capsys.readouterr().out)
        return [(r["failed"], r["stale_if_error"]) for r in rows]

    first = counts(1)
    assert first == counts(1)
    assert first != counts(2)
    assert first[0][0] + first[0][1] > 0


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--model-fail-rate", "1.5"), ("--model-fail-rate", "-0.1"), ("--model-fail-rate", "nan"),
     ("--stale-if-error", "soon")],
)  # fmt: skip
def test_bad_failure_options_exit_2_with_one_line(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    assert run(["bench", "--backend", "memory", flag, value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("predcache: error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_failure_options_are_simulated_only(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["bench", "--target", "http://127.0.0.1:9/predict", "--model-fail-rate", "0.1"])
    assert code == 2
    assert "--model-fail-rate only apply to the simulated mode" in capsys.readouterr().err


def test_live_rows_count_failed_and_stale_if_error_answers(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against real servers: the client tells both from the status and Cache-Status."""
    cache_dir = tmp_path / "shared"
    stored = get(serve("--cache-dir", str(cache_dir)))
    age_entry(cache_dir, stored, TTL_S + 30.2)  # expired 30 s ago
    failing = serve("--cache-dir", str(cache_dir), "--model-fail-rate", "1")
    rescued = serve(
        "--cache-dir", str(cache_dir), "--model-fail-rate", "1", "--stale-if-error", "1h"
    )
    rows = []
    for server in (failing, rescued):
        argv = ["bench", "--target", server.predict_url, "--requests", "6", "--concurrency"]
        argv += ["1", "--pairs", "ETH/EUR", "--horizons", "5m", "--json"]
        argv += ["--out", str(tmp_path / "r")]
        assert run(argv) == 0
        rows += json.loads(capsys.readouterr().out)
    assert [(r["failed"], r["stale_if_error"], r["stale"], r["errors"]) for r in rows] == [
        (6, 0, 0, 6),  # 503 problem+json for every request
        (0, 6, 6, 0),  # the expired entry, every time
    ]
