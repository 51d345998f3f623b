"""``predcache train``: reproducible on any day, and a partial retrain keeps what was trained."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from predcache import config
from predcache.artifact import artifact_path, load_artifact, read_header
from predcache.cli import run
from predcache.timestamps import parse_timestamp


def _train(capsys: pytest.CaptureFixture[str], *args: str) -> dict[tuple[str, int], str]:
    """Run ``train --json`` in-process; (pair, horizon_s) -> model version."""
    assert run(["train", "--json", *args]) == 0
    return {(r["pair"], r["horizon_s"]): r["version"] for r in json.loads(capsys.readouterr().out)}


def test_same_versions_on_another_day(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    today = _train(capsys)
    other_day = time.time() + 86400 * 123.5
    monkeypatch.setattr(time, "time", lambda: other_day)
    assert _train(capsys) == today
    assert len(set(today.values())) == 3  # one model per default pair, four horizons each
    assert sorted({h for _, h in today}) == list(config.DEFAULT_HORIZONS_S)


def test_default_window_ends_at_the_bench_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from predcache.bench.workload import DEFAULT_START

    assert parse_timestamp(DEFAULT_START) == config.DEFAULT_MARKET_TIME_S
    default = _train(capsys, "--pairs", "SOL/USD", "--days", "2")
    art = load_artifact(artifact_path(tmp_path / "models", "SOL/USD"))
    assert art.training["end"] == config.DEFAULT_MARKET_TIME_S
    assert art.training["start"] == config.DEFAULT_MARKET_TIME_S - 2 * 86400
    explicit = _train(capsys, "--pairs", "SOL/USD", "--days", "2", "--end", "1748822400")
    assert explicit == default
    moved = _train(capsys, "--pairs", "SOL/USD", "--days", "2", "--end", "2025-01-01")
    assert set(moved.values()) != set(default.values())
    art = load_artifact(artifact_path(tmp_path / "models", "SOL/USD"))
    assert art.training["end"] == parse_timestamp("2025-01-01")


def test_the_auto_trained_model_is_the_default_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(["predict", "BTC/USD", "--json", "--no-cache"]) == 0
    auto = json.loads(capsys.readouterr().out)["model_version"]
    assert set(_train(capsys, "--pairs", "BTC/USD").values()) == {auto}


def test_partial_retrain_keeps_the_other_horizons(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = artifact_path(tmp_path / "models", "ETH/EUR")
    full = _train(capsys, "--pairs", "ETH/EUR", "--days", "2")
    partial = _train(capsys, "--pairs", "ETH/EUR", "--days", "2", "--horizons", "5m")
    assert list(partial) == [("ETH/EUR", 60), ("ETH/EUR", 300), ("ETH/EUR", 900), ("ETH/EUR", 3600)]
    assert partial == full  # the same window: the same model, nothing lost
    assert run(["predict", "ETH/EUR", "--horizon", "1m", "--json"]) == 0
    capsys.readouterr()

    assert run(["train", "--pairs", "ETH/EUR", "--days", "2", "--horizons", "5m", "--replace"]) == 0
    assert read_header(path, "ETH/EUR").horizons_s == (300,)
    capsys.readouterr()
    assert run(["predict", "ETH/EUR", "--horizon", "1m"]) == 2
    assert capsys.readouterr().err == (
        "predcache: error: horizon 1m was not trained for ETH/EUR: trained horizons are 5m; "
        "`predcache train --pairs ETH/EUR --horizons 1m` adds it\n"
    )

    assert run(["train", "--pairs", "ETH/EUR", "--days", "2", "--horizons", "1m"]) == 0
    out = capsys.readouterr().out
    assert "kept its other trained horizons 5m (--replace drops them)" in out
    assert read_header(path, "ETH/EUR").horizons_s == (60, 300)


def test_fresh_partial_train_has_the_default_horizons_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _train(capsys, "--pairs", "ETH/EUR", "--days", "2", "--horizons", "5m,2h")
    header = read_header(artifact_path(tmp_path / "models", "ETH/EUR"), "ETH/EUR")
    assert header.horizons_s == (60, 300, 900, 3600, 7200)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--end", "yesterday"], "bad --end: timestamp 'yesterday' is neither"),
        (["--data", "x.csv", "--pair", "ETH/EUR", "--end", "2025-01-01"], "--end sets the"),
    ],
)
def test_bad_end(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"predcache: error: {message}") and err.count("\n") == 1
