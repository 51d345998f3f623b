"""The CLI end to end: in-process through Typer's runner, and as the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from typer.testing import CliRunner

from predcache.cli import app, run

SCRIPT = Path(sysconfig.get_path("scripts")) / "predcache"
JSON_FIELDS = {
    "pair", "horizon_s", "predicted_price", "as_of", "cache", "age_s", "model_version",
    "latency_ms",
}  # fmt: skip


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``predcache`` as a real process."""
    exe = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "predcache"]
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, timeout=120, env=env or dict(os.environ)
    )


def test_predict_miss_then_hit_json(models_dir: Path) -> None:
    first = cli("predict", "ETH/EUR", "--horizon", "5m", "--json")
    assert first.returncode == 0, first.stderr
    a = json.loads(first.stdout)
    assert set(a) >= JSON_FIELDS
    assert a["cache"] == "miss" and a["horizon_s"] == 300
    b = json.loads(cli("predict", "ETH/EUR", "--horizon", "5m", "--json").stdout)
    assert b["cache"] == "hit"
    assert b["predicted_price"] == a["predicted_price"]
    assert b["as_of"].endswith("Z")
    c = json.loads(cli("predict", "ETH/EUR", "--horizon", "5m", "--json", "--max-age", "0").stdout)
    assert c["cache"] != "hit"


def test_fresh_install_trains_with_notice(tmp_path: Path) -> None:
    out = cli("predict", "SOL/USD", "--json")
    assert out.returncode == 0, out.stderr
    assert "training the default model" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert json.loads(out.stdout)["cache"] == "miss"
    assert (tmp_path / "models" / "SOL-USD.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "DOGE/EUR"],
        ["predict", "ETH"],
        ["predict", "../../etc/passwd"],
        ["predict", "ETH/EUR", "--horizon", "-5m"],
        ["predict", "ETH/EUR", "--horizon", "0"],
        ["predict", "ETH/EUR", "--horizon", "abc"],
        ["predict", "ETH/EUR", "--horizon", "2m"],
        ["predict", "ETH/EUR", "--ttl", "-1"],
        ["predict", "ETH/EUR", "--ttl", "nan"],
        ["predict", "ETH/EUR", "--max-age", "soon"],
        ["predict", "ETH/EUR", "--backend", "mongo://x"],
        ["predict", "ETH/EUR", "--no-such-flag"],
        ["predict"],
        ["nosuchcommand"],
        ["train", "--horizons", "90s"],
        ["train", "--pairs", "ETH/EUR,NOPE/X"],
        ["train", "--data", "missing.csv"],
        ["train", "--days", "0"],
    ],
)
def test_bad_input_exit_2_one_line(args: list[str], models_dir: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in models_dir.iterdir())
    out = cli(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert lines[0].startswith("predcache: error:")
    assert sorted(p.name for p in models_dir.iterdir()) == before
    assert not (tmp_path / "cache").exists() or args[0] != "predict"


def test_human_output_and_cache_commands(models_dir: Path) -> None:
    runner = CliRunner()
    miss = runner.invoke(app, ["predict", "BTC/USD", "--horizon", "15m"])
    assert miss.exit_code == 0
    assert "MISS" in miss.output and "BTC/USD in 15m" in miss.output
    hit = runner.invoke(app, ["predict", "BTC/USD", "--horizon", "15m"])
    assert "HIT" in hit.output
    stats = runner.invoke(app, ["cache", "stats", "--json"])
    assert json.loads(stats.output)["entries"] == 1
    cleared = runner.invoke(app, ["cache", "clear"])
    assert "removed 1 entry from" in cleared.output
    assert "MISS" in runner.invoke(app, ["predict", "BTC/USD", "--horizon", "15m"]).output


def test_no_cache_and_refresh(models_dir: Path) -> None:
    assert json.loads(cli("predict", "ETH/EUR", "--no-cache", "--json").stdout)["cache"] == "bypass"
    assert json.loads(cli("predict", "ETH/EUR", "--json").stdout)["cache"] == "miss"
    assert json.loads(cli("predict", "ETH/EUR", "--refresh", "--json").stdout)["cache"] == "miss"
    assert json.loads(cli("predict", "ETH/EUR", "--ttl", "0", "--json").stdout)["cache"] == "bypass"


def test_store_dir_is_private(models_dir: Path, tmp_path: Path) -> None:
    assert run(["predict", "ETH/EUR"]) == 0
    cache = tmp_path / "cache"
    assert cache.stat().st_mode & 0o777 == 0o700
    for f in cache.iterdir():
        assert f.stat().st_mode & 0o077 == 0, f


def test_model_retrain_invalidates(models_dir: Path) -> None:
    assert json.loads(cli("predict", "ETH/EUR", "--json").stdout)["cache"] == "miss"
    assert cli("train", "--pairs", "ETH/EUR", "--days", "1", "--horizons", "5m").returncode == 0
    after = json.loads(cli("predict", "ETH/EUR", "--json").stdout)
    assert after["cache"] == "miss"


def test_train_table_and_json(tmp_path: Path) -> None:
    out = cli("train", "--pairs", "ETH/EUR", "--days", "2", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["horizon"] for r in rows] == ["1m", "5m", "15m", "1h"]
    assert all(r["mae_model_bps"] > 0 and r["mae_naive_bps"] > 0 for r in rows)
    human = cli("train", "--pairs", "BTC/USD", "--days", "1")
    assert "naive" in human.stdout and "saved BTC/USD model" in human.stdout


def test_corrupt_model_is_one_line_error(models_dir: Path) -> None:
    (models_dir / "ETH-EUR.json").write_text("{not json")
    out = cli("predict", "ETH/EUR")
    assert out.returncode == 1
    assert "predcache train" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_train_on_csv_then_predict(tmp_path: Path) -> None:
    import csv
    import math
    import random

    rng = random.Random(1)
    path, price = tmp_path / "candles.csv", 2000.0
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "open", "high", "low", "close"])
        for i in range(1500):
            o = price
            price *= math.exp(rng.gauss(0, 0.001))
            hi, lo = max(o, price) * 1.0005, min(o, price) * 0.9995
            w.writerow(
                [1_700_000_040 + 60 * i, f"{o:.4f}", f"{hi:.4f}", f"{lo:.4f}", f"{price:.4f}"]
            )
    out = cli("train", "--data", str(path), "--pair", "ETH/EUR", "--horizons", "1m,5m", "--json")
    assert out.returncode == 0, out.stderr
    assert {r["source"] for r in json.loads(out.stdout)} == {"csv"}
    served = json.loads(cli("predict", "ETH/EUR", "--horizon", "5m", "--json").stdout)
    assert served["cache"] == "miss" and served["predicted_price"] > 0
