"""Cluster and Sentinel URLs: what each part becomes, and every malformed one is exit-2 input.

No server is needed: parsing is pure. Single-node URLs are covered in ``test_redis_store.py``.
"""

from __future__ import annotations

import pytest

from predcache.errors import BadBackendError
from predcache.store import open_store, redact_url
from predcache.store.redis_url import CLUSTER, SENTINEL, SINGLE, parse_redis_url


def test_cluster_url_hosts_credentials_and_tls() -> None:
    s = parse_redis_url(
        "rediss+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002?prefix=pc&retry_after=2s"
    )
    assert s.topology == CLUSTER and s.ssl is True
    assert s.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (s.username, s.password) == ("app", "p@ss")
    assert (s.prefix, s.retry_after_s, s.db) == ("pc", 2.0, 0)
    assert s.shown == "rediss+cluster://app:***@10.0.0.1:7000,10.0.0.2:6379,[::1]:7002"


def test_sentinel_url_service_db_and_replica_reads() -> None:
    s = parse_redis_url("redis+sentinel://:pw@h1:5000,h2/mymaster/2?read=replica")
    assert s.topology == SENTINEL and s.ssl is False
    assert s.hosts == (("h1", 5000), ("h2", 26379))  # sentinels' default port
    assert (s.service, s.db, s.read_replica) == ("mymaster", 2, True)
    assert (s.username, s.password) == (None, "pw")
    assert s.shown == "redis+sentinel://:***@h1:5000,h2:26379/mymaster/2"


def test_sentinel_reads_from_the_primary_by_default() -> None:
    s = parse_redis_url("redis+sentinel://h1:5000/svc")
    assert (s.service, s.db, s.read_replica) == ("svc", 0, False)


def test_single_node_url_is_unchanged_by_the_new_shapes() -> None:
    s = parse_redis_url("redis://:pw@127.0.0.1:7000/3?max_connections=8")
    assert (s.topology, s.hosts, s.db, s.max_connections) == (
        SINGLE,
        (("127.0.0.1", 7000),),
        3,
        8,
    )
    assert s.url == "redis://:pw@127.0.0.1:7000/3"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("redis+cluster://", "no host"),
        ("redis+cluster://:s3cret@", "no host"),
        ("redis+cluster://h1:7000,,h2:7001", "no host"),
        ("redis+cluster://:s3cret@h1:notaport", "bad port 'notaport'"),
        ("redis+cluster://h1:70000", "bad port '70000'"),
        ("redis+cluster://h1:0", "bad port '0'"),
        ("redis+cluster://h1:7000/1", "database 0 only"),
        ("redis+sentinel://:s3cret@h1:26379", "name the sentinel service"),
        ("redis+sentinel://h1:26379/bad{name}", "name the sentinel service"),
        ("redis+sentinel://h1:26379/svc/x", "must be a number"),
        ("redis+sentinel://h1:26379/svc?read=any", "read must be primary or replica"),
        ("redis+cluster://h1:7000?read=replica", "unknown option 'read'"),
        ("redis+cluster://h1:7000?password=s3cret", "unknown option 'password'"),
        ("redis://:s3cret@h1:7000,h2:7001/0", "takes one host"),
        ("redis+cluster://h1:7000?socket_timeout=forever", "bad backend"),
        ("redis+clustr://:s3cret@h1:7000", "unknown backend"),
    ],
)
def test_malformed_urls_are_bad_input_without_the_password(spec: str, says: str) -> None:
    with pytest.raises(BadBackendError) as err:
        open_store(spec)  # the factory: the one door every command goes through
    assert says in str(err.value)
    assert "s3cret" not in str(err.value)


def test_redact_url_covers_several_hosts() -> None:
    assert redact_url("redis+cluster://u:p@ss@h1:1,h2:2") == "redis+cluster://u:***@h1:1,h2:2"
    assert redact_url("redis+sentinel://:pw@h1:1/svc") == "redis+sentinel://:***@h1:1/svc"


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("redis+cluster://127.0.0.1:1", "redis+cluster"),
        ("rediss+sentinel://127.0.0.1:1/svc", "redis+sentinel"),
        ("redis://127.0.0.1:1/0", "redis"),
    ],
)
def test_the_factory_picks_the_topology_without_connecting(spec: str, name: str) -> None:
    store = open_store(spec)  # nothing listens on port 1: opening must not connect
    assert store.name == name
    store.close()
