"""``predcache cache purge``: targeted invalidation from the command line, on a real disk store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from predcache.cli import run


def cached(capsys: pytest.CaptureFixture[str], pair: str) -> str:
    assert run(["predict", pair, "--json"]) == 0
    return str(json.loads(capsys.readouterr().out)["cache"])


def purge(capsys: pytest.CaptureFixture[str], *args: str) -> int:
    assert run(["cache", "purge", *args, "--json"]) == 0
    return int(json.loads(capsys.readouterr().out)["removed"])


def test_stale_versions_then_a_pair(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cached(capsys, "ETH/EUR") == "miss" and cached(capsys, "BTC/USD") == "miss"
    assert run(["train", "--pairs", "ETH/EUR", "--days", "1", "--horizons", "5m"]) == 0
    capsys.readouterr()
    assert cached(capsys, "ETH/EUR") == "miss"  # the new version's entry, next to the old one
    assert purge(capsys, "--stale-versions") == 1
    assert cached(capsys, "ETH/EUR") == "hit" and cached(capsys, "BTC/USD") == "hit"
    assert purge(capsys, "--pair", "btc/usd", "--horizon", "1m") == 0
    assert purge(capsys, "--pair", "btc/usd") == 1
    assert cached(capsys, "BTC/USD") == "miss" and cached(capsys, "ETH/EUR") == "hit"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--model-version", "abc", "--stale-versions"],
        ["--pair", "DOGE/EUR"],
        ["--pair", "ETH/EUR", "--horizon", "-5m"],
    ],
)
def test_bad_purges_are_exit_2_and_remove_nothing(
    args: list[str], models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cached(capsys, "ETH/EUR") == "miss"
    assert run(["cache", "purge", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("predcache: error:")
    assert cached(capsys, "ETH/EUR") == "hit"
