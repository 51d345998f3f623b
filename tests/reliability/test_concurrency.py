"""Concurrency: 4 processes x 2,000 mixed predict operations on one disk store and one Redis.

Mixed means plain requests, forced refreshes and tight max-ages over 9 keys, on a 0.3 s TTL on
the real clock, so the processes race on misses, locks, expiries and overwrites. Demanded: zero
errors, zero bypasses and corrupt reads, every value served from the store is one some process
wrote for that key, and every entry left in the store decodes to such a value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from predcache.keys import prediction_key
from predcache.store import open_store
from tests.reliability import figures
from tests.reliability.helpers import REPO
from tests.reliability.worker import HORIZONS, PAIRS

PROCESSES = 4
OPS = 2_000


def run_workers(backend: str, tmp_path: Path) -> list[dict[str, object]]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cache_dir = tmp_path / "shared"
    procs = []
    for i in range(PROCESSES):
        out = tmp_path / f"worker-{i}.json"
        cmd = [
            sys.executable, "-m", "tests.reliability.worker",
            backend, str(cache_dir), str(i), str(OPS), str(out),
        ]  # fmt: skip
        procs.append((subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE), out))
    reports = []
    for proc, out in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        reports.append(json.loads(out.read_text()))
    return reports


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["disk", "redis"])
def test_four_processes_mixed_operations(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spec = request.getfixturevalue("redis_url") if backend == "redis" else "disk"
    reports = run_workers(spec, tmp_path)
    written: dict[str, set[float]] = defaultdict(set)
    for r in reports:
        for key, price in r["wrote"]:  # type: ignore[attr-defined]
            written[key].add(price)
    served = [tuple(item) for r in reports for item in r["served"]]  # type: ignore[attr-defined]
    errors = [e for r in reports for e in r["errors"]]  # type: ignore[attr-defined]
    assert errors == []
    assert sum(int(r["backend_errors"]) for r in reports) == 0  # type: ignore[call-overload]
    assert sum(int(r["corrupt_reads"]) for r in reports) == 0  # type: ignore[call-overload]
    inconsistent = [(k, p) for k, p in served if p not in written[k]]
    assert inconsistent == []
    assert served, "no request was served from the store: the mix did not race"
    left = 0
    with open_store(spec, cache_dir=tmp_path / "shared") as store:
        for pair in PAIRS:
            for horizon in HORIZONS:
                key = prediction_key("conc1", pair, horizon)
                entry = store.get(key)
                if entry is not None:
                    left += 1
                    assert float(entry["predicted_price"]) in written[key]
        assert store.corrupt_reads == 0
    assert left > 0
    writes = sum(len(v) for v in written.values())
    figures.add(
        f"concurrency ({backend})",
        processes=PROCESSES,
        operations=PROCESSES * OPS,
        writes=writes,
        served_from_store=len(served),
        errors=len(errors),
        inconsistent_values=len(inconsistent),
    )
