"""The CLI as a user's shell runs it: a real process, real pipes, exit codes as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "predcache"]


def run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env=os.environ.copy(), **kw
    )  # type: ignore[call-overload, no-any-return]


def test_no_arguments_prints_help_and_exits_0() -> None:
    res = run([])
    assert res.returncode == 0
    assert "Usage: predcache" in res.stdout and "predict" in res.stdout
    assert res.stderr == ""


def test_help_exits_0_and_lists_every_command() -> None:
    res = run(["--help"])
    assert res.returncode == 0, res.stderr
    for command in ("bench", "cache", "predict", "report", "serve", "train"):
        assert command in res.stdout
    assert "Traceback" not in res.stdout + res.stderr


def test_unknown_command_is_one_line_exit_2() -> None:
    res = run(["predcit"])
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("predcache: error: ")


@pytest.mark.usefixtures("models_dir")
def test_closed_stdout_ends_quietly_with_exit_1() -> None:
    """``predcache predict ETH/EUR | head -c0``: the reader is gone before the answer is written.

    The command has nothing left to do but say its answer, which nobody reads: it stops with
    exit 1 (a failure, as with any unwritable output) and no traceback on stderr."""
    with subprocess.Popen(
        [*CLI, "predict", "ETH/EUR"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # as `head -c0` does
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err
    assert err == ""


def test_cache_stats_runs_as_a_process() -> None:
    res = run(["cache", "stats", "--json"])  # the disk store, in the test's private cache dir
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["entries"] == 0 and json.loads(res.stdout)["bytes"] == 0
    # a memory store lives inside one process: another process cannot report on it
    res = run(["cache", "stats", "--backend", "memory", "--json"])
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("predcache: error: cache stats --backend memory: a memory store")
