"""A live bench's results folder (issue #17, item 9): ``--out`` is taken before anything is
sent, and answers are streamed into it, so a crash or Ctrl-C keeps what was measured.

Real ``predcache serve`` and real ``predcache bench`` processes on loopback; the server's own
``/metrics`` says whether anything was sent.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from predcache.bench.live_open import REQUEST_COLUMNS
from predcache.bench.results import PARAMS_FILE, PARTIAL_FILE, SUMMARY_FILE
from predcache.cli import run
from tests.fixtures.server import RunningServer, ServerFactory

CLI = [sys.executable, "-m", "predcache"]


@pytest.mark.parametrize("loop", [["--concurrency", "2"], ["--rate", "50"]])
def test_a_bad_or_unwritable_out_fails_in_one_line_and_sends_nothing(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str], loop: list[str]
) -> None:
    server = serve()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases = [
        (
            a_file,
            2,
            f"predcache: error: bad --out {a_file}: it is a file, not a folder for results",
        ),
        (
            Path("/dev/null/results"),
            1,
            "predcache: error: cannot create the results folder in /dev/null/results: "
            "[Errno 20] Not a directory: '/dev/null/results'",
        ),
    ]
    for out, code, line in cases:
        argv = ["bench", "--target", server.predict_url, "--requests", "40", *loop]
        assert run([*argv, "--out", str(out)]) == code
        stdout, err = capsys.readouterr()
        assert (stdout, err) == ("", line + "\n")
    assert a_file.read_text() == "not a folder"
    assert server.metric("predcache_requests_total") == 0  # nothing was sent


def _start_bench(server: RunningServer, out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "bench", "--target", server.predict_url, *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _partial_rows(out: Path, at_least: int) -> tuple[Path, list[list[str]]]:
    """The run folder and the complete rows of its partial file, once it has ``at_least``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for partial in out.glob(f"*/{PARTIAL_FILE}"):
            lines = partial.read_text().splitlines()
            if len(lines) > at_least:
                return partial.parent, [r for r in csv.reader(lines) if r]
        time.sleep(0.05)
    raise AssertionError(f"no {PARTIAL_FILE} with {at_least} rows under {out}")


def test_ctrl_c_keeps_every_answer_and_says_where(serve: ServerFactory, tmp_path: Path) -> None:
    server = serve("--model-delay", "50ms")
    out = tmp_path / "results"
    bench = _start_bench(server, out, "--rate", "40", "--requests", "2000")  # 50 s if let run
    run_dir, _ = _partial_rows(out, 20)
    bench.send_signal(signal.SIGINT)
    stdout, err = bench.communicate(timeout=60)
    assert bench.returncode == 130
    rows = list(csv.reader((run_dir / PARTIAL_FILE).read_text().splitlines()))
    assert rows[0] == list(REQUEST_COLUMNS)
    answered = len(rows) - 1
    params = json.loads((run_dir / PARAMS_FILE).read_text())
    assert (params["status"], params["answered"]) == ("interrupted", answered)
    assert err == (
        f"predcache: interrupted: the {answered:,} requests answered so far are in "
        f"{run_dir / PARTIAL_FILE}\n"
    )
    assert stdout == ""
    assert {r[3] for r in rows[1:]} == {"200"}
    assert 20 <= answered <= server.metric("predcache_requests_total") < 2000
    assert not (run_dir / SUMMARY_FILE).exists()


def test_kill_9_keeps_what_was_flushed(serve: ServerFactory, tmp_path: Path) -> None:
    server = serve()
    out = tmp_path / "results"
    bench = _start_bench(server, out, "--concurrency", "2", "--duration", "60s")
    run_dir, rows = _partial_rows(out, 50)
    bench.kill()
    bench.communicate(timeout=30)
    assert json.loads((run_dir / PARAMS_FILE).read_text())["status"] == "running"
    rows = [r for r in csv.reader((run_dir / PARTIAL_FILE).read_text().splitlines())]
    assert rows[0] == ["target", "seq", "pair", "horizon_s", "status", "latency_ms", "cache", "t_s"]
    whole = [r for r in rows[1:] if len(r) == 8]
    assert len(whole) >= 50 and all(r[4] == "200" for r in whole)
    assert len(rows) - 1 - len(whole) <= 1  # at most the last line was cut by the kill


def test_a_run_that_ends_well_leaves_no_partial_file(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve()
    for loop in (["--concurrency", "2"], ["--rate", "100"]):
        out = tmp_path / loop[0].strip("-")
        argv = ["bench", "--target", server.predict_url, "--requests", "30", *loop]
        assert run([*argv, "--json", "--out", str(out)]) == 0
        capsys.readouterr()
        (run_dir,) = out.iterdir()
        assert sorted(p.name for p in run_dir.iterdir()) == [PARAMS_FILE, SUMMARY_FILE]
        assert json.loads((run_dir / PARAMS_FILE).read_text())["status"] == "done"
