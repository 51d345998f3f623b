"""Resource limits and unreachable backends, from the command line.

- ``--size-limit``: a store already far over the limit keeps serving, and each write evicts the
  oldest entries (diskcache culls on write) rather than failing.
- ``predict --backend redis://...`` with nothing listening: the circuit breaker makes it a
  **bypass with one warning line** (exit 0, the prediction computed without the cache); the
  admin command ``cache stats`` fails with one line and exit 1 instead, because it is asked
  about the cache itself.
"""

from __future__ import annotations

import json
from pathlib import Path

from predcache.store.disk import DiskStore
from tests.fixtures.redis import free_port
from tests.reliability import figures
from tests.reliability.helpers import cli

ENTRY = {"pair": "ETH/EUR", "horizon_s": 300, "predicted_price": 1.0, "as_of": 1.0,
         "created_at": 1.0, "model_version": "filler", "compute_ms": 1.0}  # fmt: skip


def test_size_limit_evicts_and_a_full_store_keeps_serving(models_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with DiskStore(cache) as store:  # fill it with the default (large) limit
        for i in range(600):
            store.set(f"filler:{i}", dict(ENTRY, pad="x" * 2000))
        full = store.stats().entries
    answers = []
    for pair, horizon in [("ETH/EUR", "5m"), ("BTC/USD", "1m"), ("SOL/USD", "15m")] * 2:
        out = cli("predict", pair, "--horizon", horizon, "--size-limit", "256KB", "--json")
        assert out.returncode == 0 and out.stderr == "", out.stderr
        answers.append(json.loads(out.stdout)["cache"])
    assert answers == ["miss"] * 3 + ["hit"] * 3  # the new entries were kept
    with DiskStore(cache, size_limit=256_000) as store:
        left = store.stats().entries
    assert left < full  # older entries were evicted to make room
    bad = cli("predict", "ETH/EUR", "--size-limit", "10")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1
    figures.add("resource limits", entries_over_limit=full, evicted=full - left, served=6)


def test_unreachable_redis_is_a_bypass_with_one_warning(models_dir: Path) -> None:
    url = f"redis://:topsecret@127.0.0.1:{free_port()}/0"  # nothing listens there
    out = cli("predict", "ETH/EUR", "--backend", url, "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["cache"] == "bypass" and body["detail"] == "backend-unavailable"
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "unavailable" in lines[0] and ":***@127.0.0.1" in lines[0]
    assert "topsecret" not in out.stderr + out.stdout
    stats = cli("cache", "stats", "--backend", url)
    assert stats.returncode == 1 and len(stats.stderr.splitlines()) == 1, stats.stderr
    assert "Traceback" not in stats.stderr and "topsecret" not in stats.stderr
    figures.add("unreachable backend", predict_bypassed=1, admin_failed_one_line=1)
