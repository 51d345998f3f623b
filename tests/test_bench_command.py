"""params.json's ``command``: one rebuilder (``results.command_line``) for both bench modes.

Pinned exactly, through the real CLI run in process (where ``sys.argv`` is pytest's, so a
command taken from it would be wrong), for a simulated run and a live run against a real
``predcache serve``; the simulated line is run again and must repeat the run.
"""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import pytest

from predcache.bench.live_options import Comparison, LiveOptions
from predcache.bench.results import command_line
from predcache.cli import run
from tests.fixtures.server import ServerFactory

BODY = shlex.quote('{"product_id": "{pair}", "horizon": "{horizon}"}')


def run_dir(out: Path) -> Path:
    (only,) = list(out.iterdir())
    return only


def recorded(out: Path) -> str:
    command = json.loads((run_dir(out) / "params.json").read_text())["command"]
    assert isinstance(command, str)
    return command


def test_command_line_writes_values_one_way() -> None:
    line = command_line(
        [
            ("--ttl", [0.0, 90.0, 300.5]),
            ("--target", "http://a/predict"),
            ("--target", "http://user:hunter2@b/predict"),
            ("--rate", 40.0),
            ("--seed", 0),
            ("--trace", None),
            ("--save-requests", False),
            ("--compare-simulated", True),
            ("--out", "my results"),
        ]
    )
    assert line == (
        "predcache bench --ttl 0,90,300.5 --target http://a/predict "
        "--target 'http://user:***@b/predict' --rate 40 --seed 0 --compare-simulated "
        "--out 'my results'"
    )


def test_live_options_write_the_comparison_they_used() -> None:
    opts = LiveOptions(
        ["http://:hunter2@127.0.0.1:8000/predict"], ["ETH/EUR"], [300, 900], requests=None,
        duration_s=90.0, rate=12.5, start="2025-06-02T00:00:00Z", label="x",
        compare=Comparison(ttl_s=10.0, model_delay_s=0.3, stampede="stale-while-revalidate",
                           stale_grace_s=5.0),
    )  # fmt: skip
    assert opts.command() == (
        "predcache bench --target 'http://:***@127.0.0.1:8000/predict' --rate 12.5 "
        "--duration 90s --pairs ETH/EUR --horizons 5m,15m --zipf 1 --seed 0 "
        f"--start 2025-06-02T00:00:00Z --body-template {BODY} --compare-simulated --ttl 10s "
        "--model-delay 300ms --stampede stale-while-revalidate --stale-grace 5s --out results "
        "--label x"
    )


def test_a_simulated_run_records_the_line_that_repeats_it(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "first"
    args = ["bench", "--ttl", "0,90s", "--requests", "400", "--pairs", "ETH/EUR,BTC/USD",
            "--horizons", "5m", "--seed", "2", "--stampede", "coalesce,none",
            "--backend", "memory", "--market-paths", "1", "--out", str(out)]  # fmt: skip
    assert run([*args, "--json"]) == 0
    first_rows = json.loads(capsys.readouterr().out)
    command = recorded(out)
    assert command == (
        "predcache bench --ttl 0,90 --requests 400 --rate 5 --pairs ETH/EUR,BTC/USD "
        "--horizons 5m --zipf 1 --seed 2 --start 2025-06-02T00:00:00Z --model-delay 1s "
        f"--stampede coalesce,none --backend memory --market-paths 1 --out {shlex.quote(str(out))}"
    )

    again = tmp_path / "again"
    argv = shlex.split(command)
    assert argv[:2] == ["predcache", "bench"]
    rerun = [*argv[1:-1], str(again)]  # the same line, another --out
    assert run([*rerun, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert recorded(again) == command.replace(str(out), str(again))
    same = ("ttl_s", "stampede", "requests", "hits", "collapsed", "misses", "model_calls")
    assert [[r[c] for c in same] for r in rows] == [[r[c] for c in same] for r in first_rows]


def test_a_live_run_records_the_line_that_repeats_it(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve()
    out = tmp_path / "live"
    argv = ["bench", "--target", server.predict_url, "--requests", "30", "--concurrency", "2",
            "--pairs", "ETH/EUR", "--horizons", "5m", "--json", "--out", str(out)]  # fmt: skip
    assert run(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["requests"] == 30
    assert recorded(out) == (
        f"predcache bench --target {server.predict_url} --concurrency 2 --requests 30 "
        "--pairs ETH/EUR --horizons 5m --zipf 1 --seed 0 --start 2025-06-02T00:00:00Z "
        f"--body-template {BODY} --out {shlex.quote(str(out))}"
    )
    with open(run_dir(out) / "summary.csv", newline="") as fh:
        assert [r["target"] for r in csv.DictReader(fh)] == [server.predict_url]

    again = tmp_path / "again"  # the recorded line parses and runs the same workload again
    rerun = [*shlex.split(recorded(out))[1:-1], str(again), "--json"]
    assert run(rerun) == 0
    assert json.loads(capsys.readouterr().out)[0]["requests"] == 30
    assert recorded(again) == recorded(out).replace(str(out), str(again))
