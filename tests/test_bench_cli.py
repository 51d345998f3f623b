"""``predcache bench`` end to end: JSON rows, the results folder, trace replay, bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from predcache.bench.results import REQUIRED_COLUMNS, SUMMARY_COLUMNS
from predcache.bench.runner import BenchOptions
from predcache.cli import run

SCRIPT = Path(sysconfig.get_path("scripts")) / "predcache"


def bench_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    code = run(["bench", "--backend", "memory", "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)  # nothing else on stdout
    assert isinstance(rows, list)
    return rows


def only_run(out: Path) -> Path:
    (run_dir,) = list(out.iterdir())
    return run_dir


def test_json_rows_and_results_folder(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    rows = bench_json(
        capsys, "--ttl", "0,90s,5m", "--requests", "3000", "--seed", "2", "--out", str(out)
    )
    assert [r["ttl_s"] for r in rows] == [0, 90, 300]
    run_dir = only_run(out)
    with (run_dir / "summary.csv").open() as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        table = list(reader)
    assert header is not None and tuple(header[: len(REQUIRED_COLUMNS)]) == REQUIRED_COLUMNS
    assert tuple(header) == SUMMARY_COLUMNS
    assert all(set(r) == set(header) for r in rows)  # --json has the same fields as the CSV
    assert [float(r["hit_ratio"]) for r in table] == [r["hit_ratio"] for r in rows]
    assert {r["run_id"] for r in table} == {run_dir.name}
    assert not (run_dir / "requests.csv").exists()
    params = json.loads((run_dir / "params.json").read_text())
    assert params["options"]["requests"] == 3000 and params["options"]["ttl_s"] == [0, 90, 300]
    assert set(params["versions"]) == {"predcache", "python", "numpy", "diskcache"}
    assert params["machine"]["cpu_count"] >= 1 and params["machine"]["platform"]
    assert params["simulated"]["model_delay_s"] == 1.0
    assert params["command"].startswith("predcache bench --ttl 0,90,300 --requests 3000")
    # the models dir came from the environment, not from the user: it is not written down
    assert str(models_dir) not in (run_dir / "params.json").read_text()


def test_command_and_params_redact_passwords() -> None:
    opts = BenchOptions(
        ttls_s=[90.0], requests=10, rate=5.0, pairs=["ETH/EUR"], horizons_s=[300], zipf=1.0,
        seed=0, start="2025-06-02", start_s=1_748_822_400.0, model_delay_s=1.0,
        backend="redis://:hunter2@127.0.0.1:6379/0", out="results",
    )  # fmt: skip
    assert "hunter2" not in opts.command() and "***" in opts.command()
    assert "hunter2" not in opts.default_label()


def test_saved_requests_replay_as_a_trace(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = bench_json(
        capsys, "--ttl", "60", "--requests", "2000", "--rate", "2", "--zipf", "0.5",
        "--seed", "9", "--out", str(tmp_path / "a"), "--save-requests",
    )  # fmt: skip
    requests_csv = only_run(tmp_path / "a") / "requests.csv"
    with requests_csv.open() as fh:
        log = list(csv.DictReader(fh))
    assert len(log) == 2000 and sum(r["cache"] == "hit" for r in log) == first[0]["hits"]
    assert all(float(r["age_s"]) < 60 for r in log)
    again = bench_json(
        capsys, "--ttl", "60", "--trace", str(requests_csv), "--out", str(tmp_path / "b")
    )
    for field in ("hits", "misses", "model_calls", "mae_served_bps", "mae_fresh_bps"):
        assert again[0][field] == first[0][field], field
    assert again[0]["zipf"] is None and again[0]["seed"] is None
    # the trace's own rates give the TTL model's prediction; it stays close to the measurement
    assert abs(again[0]["hit_ratio"] - again[0]["expected_hit_ratio"]) < 0.02  # type: ignore[operator]


def test_human_output_says_what_is_simulated(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["bench", "--ttl", "0,30", "--requests", "1000", "--backend", "memory",
                "--out", str(tmp_path)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "simulated" in out and "measured" in out
    assert "30s" in out and "results:" in out and "requests/s" in out
    assert err == ""  # no progress bar when stderr is not a terminal


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ttl", "soon"], "bad ttl"),
        (["--pairs", "DOGE/EUR"], "unknown pair DOGE/EUR"),
        (["--horizons", "2h"], "horizon 2h was not trained"),
        (["--horizons", "90s"], "whole minutes"),
        (["--rate", "0"], "bad rate"),
        (["--requests", "0"], "bad requests"),
        (["--model-delay", "-1"], "bad model-delay"),
        (["--trace", "t.csv", "--requests", "5"], "--trace replaces the synthetic workload"),
        (["--trace", "missing.csv"], "cannot read the trace"),
        (["--concurrency", "4"], "only apply to the live mode"),
        (["--start", "someday"], "bad start"),
        (["--backend", "floppy"], "unknown backend"),
        (["--rate", "0"], "bad rate 0.0"),
        (["--rate", "-5"], "bad rate -5.0"),
        (["--stampede", "bogus"], "bad --stampede 'bogus': expected one of coalesce, none,"),
        (["--stale-grace", "5s"], "--stale-grace only applies to --stampede stale-while"),
        (["--stampede", "stale-while-revalidate"], "needs --stale-grace"),
        (["--stampede", "stale-while-revalidate", "--stale-grace", "0"], "bad --stale-grace"),
        (["--model-concurrency", "0"], "bad --model-concurrency 0: must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    models_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    small = [] if {"--requests", "--trace"} & set(args) else ["--requests", "100"]
    code = run(["bench", "--out", str(tmp_path / "r"), *small, *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_quick_start_on_a_fresh_home(tmp_path: Path) -> None:
    """`predcache bench --ttl 90` with no trained model: trains once (one notice), then runs."""
    exe = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "predcache"]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [*exe, "bench", "--ttl", "90", "--out", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notices = proc.stderr.strip().splitlines()
    assert len(notices) == 3 and all("training the default model" in n for n in notices)
    assert "90s" in proc.stdout and "0.97" in proc.stdout


def test_size_limit_caps_the_disk_store_and_is_recorded(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["bench", "--ttl", "90", "--requests", "2000", "--backend", "disk", "--json"]
    assert run([*args, "--size-limit", "256KB", "--out", str(out)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["hit_ratio"] > 0.5
    params = json.loads(next(out.glob("*/params.json")).read_text())
    assert params["options"]["size_limit"] == 256_000
    assert "--size-limit 256000" in params["command"]
    assert run([*args, "--size-limit", "12 parsecs"]) == 2
    assert "size-limit" in capsys.readouterr().err
    assert run(["bench", "--target", "http://127.0.0.1:9/predict", "--size-limit", "1MB"]) == 2
