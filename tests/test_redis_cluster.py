"""Redis Cluster and Sentinel with real local topologies: slots, replicas, the CLI, bad input.

The store contract runs on both in ``test_store_contract.py``; failover under load is in
``test_redis_failover.py``. Here: what only a multi-host backend has, and the issue's bad-input
rules (malformed URL exit 2; unreachable or unknown service: predict bypasses with one redacted
warning, ``cache stats`` fails with one line).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
from pathlib import Path

import pytest

from predcache.clock import ManualClock
from predcache.keys import lock_key, prediction_key
from predcache.predictor import Predictor
from predcache.store import open_store
from predcache.store.breaker import CircuitBreakerStore
from predcache.store.redis import RedisStore
from tests.conftest import FakeModels
from tests.fixtures.redis import free_port
from tests.fixtures.redis_cluster import LocalCluster, LocalSentinel, command
from tests.test_cli import cli
from tests.test_redis_processes import PROCESSES, stampede_worker
from tests.test_store_contract import entry

pytestmark = pytest.mark.redis


def inner(store: object) -> RedisStore:
    assert isinstance(store, CircuitBreakerStore) and isinstance(store.inner, RedisStore)
    return store.inner


def test_an_entry_and_its_lock_live_on_one_slot_of_one_primary(
    cluster_url: str, redis_cluster: LocalCluster
) -> None:
    store = open_store(cluster_url)
    key = prediction_key("v9", "ETH/EUR", 300)
    store.set(key, entry())
    token = store.acquire_lock(lock_key(key), 30)
    assert token is not None
    entry_key, lock = inner(store).key(key), inner(store).key(lock_key(key))
    slots = {
        command(redis_cluster.nodes[0].port, "CLUSTER", "KEYSLOT", k) for k in (entry_key, lock)
    }
    assert len(slots) == 1
    owner = redis_cluster.owner_of(entry_key)
    # both answered by the owner itself: no MOVED, so a script over both keys is legal there
    assert command(owner.port, "EXISTS", entry_key, lock) == b":2\r\n"
    store.release_lock(lock_key(key), token)
    assert command(owner.port, "EXISTS", lock) == b":0\r\n"
    store.close()


def test_entries_spread_over_all_three_primaries(
    cluster_url: str, redis_cluster: LocalCluster
) -> None:
    store = open_store(cluster_url)
    for i in range(30):
        store.set(prediction_key("v9", "ETH/EUR", i), entry())
    per_node = [int(command(n.port, "DBSIZE").strip(b":\r\n")) for n in redis_cluster.primaries()]
    assert len(per_node) == 3 and sum(per_node) == 30 and min(per_node) > 0
    assert store.stats().entries == 30  # SCAN and MGET on every primary
    assert store.clear() == 30
    store.close()


def test_cross_process_stampede_on_the_cluster_makes_one_model_call(cluster_url: str) -> None:
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=stampede_worker, args=(cluster_url, start, out))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    reports = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert sum(r[0] for r in reports) == 1  # model calls over 4 processes x 6 threads
    caches = [cache for r in reports for cache, _, _ in r[1]]
    # one miss; the rest waited for it (collapsed) or came after it landed (hit)
    assert caches.count("miss") == 1 and set(caches) <= {"miss", "collapsed", "hit"}


def test_sentinel_replica_reads_go_to_the_replica(
    sentinel_url: str, redis_sentinel: LocalSentinel
) -> None:
    def gets_on_replica() -> int:
        stats = command(redis_sentinel.replica.port, "INFO", "commandstats").decode()
        line = next((x for x in stats.splitlines() if x.startswith("cmdstat_get:")), "")
        return int(line.split("calls=")[1].split(",")[0]) if line else 0

    store = open_store(sentinel_url + "?read=replica")
    store.set("k", entry())
    command(redis_sentinel.primary.port, "WAIT", "1", "2000")  # let the replica catch up
    before = gets_on_replica()
    got = [store.get("k") for _ in range(5)]
    assert gets_on_replica() - before == 5
    assert all(g is not None for g in got)
    store.close()


def test_unreachable_cluster_is_bypass_with_one_redacted_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis+cluster://:s3cret@127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    store = open_store(url)
    p = Predictor(store, FakeModels(), clock=ManualClock())
    with caplog.at_level(logging.WARNING, logger="predcache"):
        served = [p.get_or_compute("ETH/EUR", 300) for _ in range(5)]
    assert {(s.cache, s.detail) for s in served} == {("bypass", "backend-unavailable")}
    warnings = [r.getMessage() for r in caplog.records if r.name == "predcache"]
    assert len(warnings) == 1
    assert "redis+cluster://:***@127.0.0.1:" in warnings[0] and "cannot be connected" in warnings[0]
    assert "s3cret" not in caplog.text
    store.close()


def test_a_cluster_password_is_used_and_never_shown(
    cluster_url: str, redis_cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    import redis

    nodes = [n for n in redis_cluster.nodes if n.running()]
    for node in nodes:  # every node asks for it (replication links are up already)
        command(node.port, "CONFIG", "SET", "requirepass", "s3cret")
    try:
        wrong = open_store(cluster_url.replace("://", "://:wr0ng@"))
        p = Predictor(wrong, FakeModels(), clock=ManualClock())
        with caplog.at_level(logging.WARNING, logger="predcache"):
            assert [p.get_or_compute("ETH/EUR", 300).cache for _ in range(3)] == ["bypass"] * 3
        warnings = [r.getMessage() for r in caplog.records if r.name == "predcache"]
        assert len(warnings) == 1 and "redis+cluster://:***@127.0.0.1:" in warnings[0]
        assert "wr0ng" not in caplog.text
        wrong.close()

        right = open_store(cluster_url.replace("://", "://:s3cret@"))
        p = Predictor(right, FakeModels(), clock=ManualClock())
        assert [p.get_or_compute("ETH/EUR", 300).cache for _ in range(2)] == ["miss", "hit"]
        assert "s3cret" not in right.stats().location
        right.close()
    finally:
        for node in nodes:
            with redis.Redis(port=node.port, password="s3cret") as client:
                client.config_set("requirepass", "")


def test_cli_predict_miss_then_hit_and_stats_on_the_cluster(
    cluster_url: str, models_dir: Path
) -> None:
    first = cli("predict", "ETH/EUR", "--backend", cluster_url, "--json")
    assert first.returncode == 0, first.stderr
    second = cli("predict", "ETH/EUR", "--backend", cluster_url, "--json")
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert (a["cache"], b["cache"]) == ("miss", "hit")
    assert a["predicted_price"] == b["predicted_price"]
    stats = json.loads(cli("cache", "stats", "--backend", cluster_url, "--json").stdout)
    assert (stats["location"], stats["entries"]) == (f"{cluster_url} prefix predcache", 1)


def test_cli_predict_miss_then_hit_on_sentinel(sentinel_url: str, models_dir: Path) -> None:
    first = cli("predict", "ETH/EUR", "--backend", sentinel_url, "--json")
    second = cli("predict", "ETH/EUR", "--backend", sentinel_url, "--json")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert (json.loads(first.stdout)["cache"], json.loads(second.stdout)["cache"]) == (
        "miss",
        "hit",
    )


def unknown_service(sentinel_url: str) -> str:
    return sentinel_url.replace("redis+sentinel://", "redis+sentinel://:s3cret@").replace(
        LocalSentinel.SERVICE, "no-such-service"
    )


def unreachable_cluster() -> str:
    return f"redis+cluster://:s3cret@127.0.0.1:{free_port()}?connect_timeout=200ms"


@pytest.mark.parametrize("which", ["unreachable cluster", "unknown service"])
def test_cli_predict_bypasses_with_one_redacted_line(
    which: str, request: pytest.FixtureRequest, models_dir: Path
) -> None:
    if which == "unknown service":
        url = unknown_service(request.getfixturevalue("sentinel_url"))
    else:
        url = unreachable_cluster()
    out = cli("predict", "ETH/EUR", "--backend", url, "--json")
    assert out.returncode == 0, out.stderr
    served = json.loads(out.stdout)
    assert (served["cache"], served["detail"]) == ("bypass", "backend-unavailable")
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unavailable" in lines[0] and "Traceback" not in out.stderr
    assert "s3cret" not in out.stderr and ":***@127.0.0.1" in out.stderr
    if which == "unknown service":
        assert "No master found for 'no-such-service'" in lines[0]
        assert "<redis." not in lines[0]  # no client repr in the message


@pytest.mark.parametrize("which", ["unreachable cluster", "unknown service"])
def test_cli_cache_stats_fails_with_one_line(
    which: str, request: pytest.FixtureRequest, models_dir: Path
) -> None:
    if which == "unknown service":
        url = unknown_service(request.getfixturevalue("sentinel_url"))
    else:
        url = unreachable_cluster()
    out = cli("cache", "stats", "--backend", url)
    assert out.returncode == 1
    assert out.stderr.startswith("predcache: error: ") and "s3cret" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://:s3cret@",
        "redis+cluster://:s3cret@127.0.0.1:notaport",
        "redis+sentinel://:s3cret@127.0.0.1:26379",
    ],
)
def test_cli_malformed_url_is_exit_2(url: str, models_dir: Path) -> None:
    out = cli("predict", "ETH/EUR", "--backend", url)
    assert out.returncode == 2
    assert "bad backend" in out.stderr and "s3cret" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cli_bench_on_the_cluster(cluster_url: str, models_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "results"
    out = cli(
        "bench", "--backend", cluster_url, "--ttl", "90", "--requests", "300",
        "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows[0]["hit_ratio"] > 0.5
    written = "".join(p.read_text() for p in out_dir.rglob("*.json"))
    assert cluster_url in written
