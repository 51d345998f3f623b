"""``predcache bench --model``: any model's staleness cost, and ``drift_bps`` (served vs fresh)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from predcache.bench.accuracy import Counterfactuals
from predcache.cli import run

MODELS = """
from predcache import market


def constant(pair, horizon_s, as_of):
    return 123.25


def last(pair, horizon_s, as_of):
    return market.history(pair, as_of, 1)[-1]


def two(pair, horizon_s):
    return 1.0
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.py"
    path.write_text(MODELS)
    return path


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    code = run(["bench", "--backend", "memory", "--json", "--requests", "2000", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list)
    return rows


def test_drift_is_the_mean_relative_gap_between_served_and_fresh_in_bps() -> None:
    fresh = np.array([100.0, 100.0, 200.0, 50.0])
    zeros = np.zeros(4, int)
    cf = Counterfactuals(fresh, fresh, zeros, np.zeros(1), zeros, zeros, ())
    # |101-100|/100 = 1%, 0, |190-200|/200 = 5%, |50-50| = 0 -> mean 1.5% = 150 bps
    assert cf.drift_bps(np.array([101.0, 100.0, 190.0, 50.0])) == pytest.approx(150.0)


def test_a_constant_model_loses_nothing_to_staleness(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = bench(capsys, "--model", f"{model_file}:constant", "--ttl", "30,90",
                 "--out", str(tmp_path / "r"))  # fmt: skip
    assert [r["ttl_s"] for r in rows] == [30, 90]
    assert [r["drift_bps"] for r in rows] == [0.0, 0.0]
    assert [r["added_error_bps"] for r in rows] == [0.0, 0.0]
    assert [r["market_paths"] for r in rows] == [1, 1]


def test_plugged_model_rows_drift_and_params(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    spec = f"{model_file}:last"
    rows = bench(capsys, "--model", spec, "--model-version", "last1", "--ttl", "0,30,90",
                 "--out", str(out), "--save-requests")  # fmt: skip
    assert [r["ttl_s"] for r in rows] == [0, 30, 90]
    drift = [r["drift_bps"] for r in rows]
    assert drift[0] == 0.0 and 0 < drift[1] < drift[2]  # longer TTL, older answers
    (run_dir,) = list(out.iterdir())
    params = json.loads((run_dir / "params.json").read_text())
    assert (params["options"]["model"], params["options"]["model_version"]) == (spec, "last1")
    assert f"--model {spec} --model-version last1" in params["command"]
    assert set(params["models"].values()) == {"last1"}
    with (run_dir / "requests.csv").open() as fh:
        per_request = [r for r in csv.DictReader(fh) if r["ttl_s"] == "90"]
    served = np.array([float(r["served_price"]) for r in per_request])
    fresh = np.array([float(r["fresh_price"]) for r in per_request])
    assert rows[2]["drift_bps"] == round(float((1e4 * abs(served - fresh) / fresh).mean()), 4)
    # the fresh price is the function itself at the request's time: the last minute's price
    from predcache import market

    first = per_request[0]
    assert float(first["fresh_price"]) == market.price(first["pair"], float(first["timestamp"]))


def test_report_shows_drift(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    bench(capsys, "--model", f"{model_file}:last", "--ttl", "90", "--out", str(out))
    assert run(["report", str(out)]) == 0
    assert "drift" in capsys.readouterr().out


def test_bad_spec_on_bench_is_exit_2_and_writes_nothing(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r"
    code = run(["bench", "--model", f"{model_file}:two", "--ttl", "30", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be called as function(pair, horizon_s, as_of)" in err
    assert not out.exists()
    assert run(["bench", "--target", "http://127.0.0.1:9/predict", "--model", "m:f"]) == 2
    assert "--model only apply to the simulated mode" in capsys.readouterr().err
