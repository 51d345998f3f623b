"""Several real processes on one real Redis: shared hits, one model call per stampede, the CLI.

Processes are started with the ``spawn`` method (a fresh interpreter each, nothing inherited
but the arguments), so nothing is shared between them except the Redis server.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
from pathlib import Path
from typing import Any

import pytest

from predcache.predictor import Predictor
from predcache.store.redis import open_redis_store
from tests.conftest import FakeModels
from tests.fixtures.redis import RedisServer, free_port
from tests.test_cli import cli

pytestmark = pytest.mark.redis

PROCESSES = 4
THREADS = 6  # 4 x 6 = 24 concurrent requests on one cold key
MODEL_DELAY_S = 0.3  # simulated model time, long enough for every request to overlap


def stampede_worker(url: str, start: Any, out: Any) -> None:
    """One process: THREADS concurrent requests for one cold key; reports model calls."""
    models = FakeModels()
    predictor = Predictor(open_redis_store(url), models, model_delay_s=MODEL_DELAY_S)
    gate = threading.Barrier(THREADS)
    results: list[tuple[str, str | None, float]] = []

    def one() -> None:
        gate.wait()
        served = predictor.get_or_compute("ETH/EUR", 300)
        results.append((served.cache, served.detail, served.entry["predicted_price"]))

    start.wait()  # every process is up before any thread asks
    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((models.calls, results))


def test_cross_process_stampede_makes_one_model_call(redis_url: str) -> None:
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=stampede_worker, args=(redis_url, start, out)) for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    reports = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    calls = sum(r[0] for r in reports)
    served = [s for r in reports for s in r[1]]
    assert len(served) == PROCESSES * THREADS
    assert calls == 1
    assert len({price for _, _, price in served}) == 1
    caches = [cache for cache, _, _ in served]
    assert caches.count("miss") == 1
    assert set(caches) <= {"miss", "collapsed", "hit"}  # hit: arrived after the entry landed
    # the other processes waited on the Redis lock, not just on an in-process one, and say so
    waited = [cache for cache, detail, _ in served if detail == "coalesced"]
    assert len(waited) >= PROCESSES - 1 and set(waited) == {"collapsed"}


def test_cli_predict_miss_then_hit_across_processes(redis_url: str, models_dir: Path) -> None:
    first = cli("predict", "ETH/EUR", "--backend", redis_url, "--json")
    assert first.returncode == 0, first.stderr
    second = cli("predict", "ETH/EUR", "--backend", redis_url, "--json")
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert (a["cache"], b["cache"]) == ("miss", "hit")
    assert a["predicted_price"] == b["predicted_price"]
    stats = cli("cache", "stats", "--backend", redis_url, "--json")
    assert json.loads(stats.stdout)["entries"] == 1
    cleared = cli("cache", "clear", "--backend", redis_url)
    assert cleared.returncode == 0 and "removed 1 entry from" in cleared.stdout


def test_cli_predict_without_redis_answers_and_says_so_once(
    redis_server: RedisServer, models_dir: Path
) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0?connect_timeout=200ms"
    out = cli("predict", "ETH/EUR", "--backend", url, "--json")
    assert out.returncode == 0, out.stderr
    served = json.loads(out.stdout)
    assert (served["cache"], served["detail"]) == ("bypass", "backend-unavailable")
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unavailable" in lines[0] and "Traceback" not in out.stderr
    assert "s3cret" not in out.stderr and ":***@127.0.0.1" in out.stderr


def test_cli_cache_stats_without_redis_is_one_line_exit_1(models_dir: Path) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    out = cli("cache", "stats", "--backend", url)
    assert out.returncode == 1
    assert out.stderr.startswith("predcache: error: ") and "s3cret" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # the error, no outage warning on top


def test_cli_bad_redis_url_is_exit_2(models_dir: Path) -> None:
    out = cli("predict", "ETH/EUR", "--backend", "redis://:s3cret@host:notaport/0")
    assert out.returncode == 2
    assert "s3cret" not in out.stderr and "bad backend" in out.stderr


def test_cli_bench_on_redis_keeps_the_password_out_of_results(
    redis_url: str, models_dir: Path, tmp_path: Path
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.config_set("requirepass", "s3cret")  # so the password in the URL is really used
    try:
        url = redis_url.replace("redis://", "redis://:s3cret@")
        out_dir = tmp_path / "results"
        out = cli(
            "bench", "--backend", url, "--ttl", "90", "--requests", "300",
            "--out", str(out_dir), "--json",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        assert rows[0]["hit_ratio"] > 0.5
        written = "".join(p.read_text() for p in out_dir.rglob("*") if p.is_file())
        assert "redis://:***@127.0.0.1" in written
        assert "s3cret" not in written + out.stdout + out.stderr
    finally:
        authed = redis.Redis.from_url(redis_url, password="s3cret")
        authed.config_set("requirepass", "")
        authed.close()
        client.close()
