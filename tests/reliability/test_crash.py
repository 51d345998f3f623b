"""Crash safety: writers into a shared disk store are killed with SIGKILL at random moments.

After every kill the store must open (no quarantine: SQLite's journal makes a killed writer
harmless), every entry read must be a valid prediction or a miss, every write the child had
finished must still be there (entries lost: zero), and ``predcache predict`` must answer from
the same store. Two kinds of writer: a small script on the real predictor (many kills, cheap),
and the real ``predcache bench --backend disk`` (a few kills, slow to start).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from predcache.keys import LOCK_SUFFIX
from predcache.store.disk import DiskStore
from tests.reliability import figures
from tests.reliability.helpers import REPO, cli

WRITER_KILLS = 24
BENCH_KILLS = 3


@dataclass
class Survey:
    """What one post-kill inspection of the store found."""

    valid: int = 0
    misses: int = 0
    lost: int = 0


def survey(cache_dir: Path, log: Path | None) -> Survey:
    """Open the store, read every entry, and check the writes the child logged are there."""
    found = Survey()
    with DiskStore(cache_dir) as store:
        for key in list(store.cache.iterkeys()):
            if not isinstance(key, str) or key.endswith(LOCK_SUFFIX):
                continue
            entry = store.get(key)  # a valid entry, or None (a miss): never an exception
            if entry is None:
                found.misses += 1
            else:
                found.valid += 1
        if log is not None and log.exists():
            latest: dict[str, float] = {}
            for line in log.read_text().splitlines():
                key, created = line.split("\t")
                latest[key] = max(latest.get(key, 0.0), float(created))
            for key, created_at in latest.items():
                entry = store.get(key)
                if entry is None or float(entry["created_at"]) < created_at:
                    found.lost += 1
    assert not list(cache_dir.glob("cache.db.corrupt-*")), "a killed writer corrupted the store"
    return found


def kill_at_random(proc: subprocess.Popen[str], rng: random.Random, lo: float, hi: float) -> None:
    time.sleep(rng.uniform(lo, hi))  # the random moment of the kill, not a wait for a TTL
    assert proc.poll() is None, "the writer finished before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def entries(cache_dir: Path) -> int:
    if not (cache_dir / "cache.db").exists():
        return 0
    with DiskStore(cache_dir) as store:
        return store.stats().entries


def wait_until_writing(proc: subprocess.Popen[str], cache_dir: Path, before: int) -> None:
    """Poll (bounded) until the bench has added entries, so the kill lands mid-run."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if entries(cache_dir) > before:
            return
        time.sleep(0.05)
    raise AssertionError("the bench never started writing")


def predict_answers(cache_dir: Path) -> None:
    out = cli("predict", "ETH/EUR", "--horizon", "5m", "--cache-dir", str(cache_dir), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["cache"] == "hit"  # the warmed entry survived every kill


@pytest.mark.slow
def test_writer_killed_mid_write(tmp_path: Path, models_dir: Path) -> None:
    cache_dir, log = tmp_path / "shared", tmp_path / "writes.log"
    rng = random.Random(7)
    totals = Survey()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for i in range(WRITER_KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.writer", str(cache_dir), str(log), str(i)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        kill_at_random(proc, rng, 0.0, 0.25)
        proc.stdout.close()
        found = survey(cache_dir, log)
        assert found.lost == 0, f"kill {i + 1}: {found.lost} finished writes are gone"
        assert found.misses == 0, f"kill {i + 1}: {found.misses} entries read back corrupt"
        predict_answers(cache_dir)
        totals.valid += found.valid
        totals.misses += found.misses
        totals.lost += found.lost
    writes = len(log.read_text().splitlines())
    assert totals.misses == 0 and totals.valid > 0  # recorded below as corrupt_entries
    assert writes > WRITER_KILLS * 12  # the children really were writing when killed
    figures.add(
        "crash (writer script)",
        kills_survived=WRITER_KILLS,
        finished_writes_checked=writes,
        entries_read=totals.valid + totals.misses,
        corrupt_entries=totals.misses,
        entries_lost=totals.lost,
    )


@pytest.mark.slow
def test_bench_killed_mid_run(tmp_path: Path, models_dir: Path) -> None:
    cache_dir = tmp_path / "shared"
    rng = random.Random(11)
    read = 0
    for i in range(BENCH_KILLS):
        before = entries(cache_dir)
        proc = subprocess.Popen(
            [
                *cli.command, "bench", "--backend", "disk", "--cache-dir", str(cache_dir),
                "--requests", "200000", "--rate", "50", "--ttl", "1", "--model-delay", "0",
                "--seed", str(i), "--out", str(tmp_path / "results"), "--json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        wait_until_writing(proc, cache_dir, before)
        kill_at_random(proc, rng, 0.0, 1.0)
        found = survey(cache_dir, None)
        assert found.misses == 0
        read += found.valid
        predict = cli("predict", "ETH/EUR", "--cache-dir", str(cache_dir), "--json")
        assert predict.returncode == 0, predict.stderr
    assert read > 0, "no bench was killed while it had entries in the store"
    figures.add("crash (predcache bench)", kills_survived=BENCH_KILLS, entries_read=read)


def children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_bench_workers_end_with_a_killed_bench(tmp_path: Path, models_dir: Path) -> None:
    """``bench --jobs 2`` killed with SIGKILL: its row processes do not replay on for nobody."""
    proc = subprocess.Popen(
        [
            *cli.command, "bench", "--backend", "memory", "--requests", "3000000",
            "--rate", "50", "--ttl", "1,2,3", "--jobs", "2", "--out", str(tmp_path), "--json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)  # polling for the pool to start, not waiting out a TTL
            workers = children(proc.pid)
        assert len(workers) >= 2, "the bench's row processes never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(workers) == set()
