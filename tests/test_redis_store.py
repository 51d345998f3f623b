"""The Redis backend against a real redis-server: URL options, key layout, expiry, JSON only.

The shared store contract runs against Redis too (``conftest.BACKENDS``); these tests cover
what only Redis has. Outages and the circuit breaker are in ``test_redis_outage.py``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from predcache.errors import BackendUnavailableError, BadBackendError
from predcache.keys import lock_key, prediction_key
from predcache.store import open_store, redact_url
from predcache.store.breaker import CircuitBreakerStore
from predcache.store.redis import RedisStore, open_redis_store, parse_redis_url
from tests.fixtures.redis import free_port
from tests.test_store_contract import entry

pytestmark = pytest.mark.redis


def inner(store: object) -> RedisStore:
    assert isinstance(store, CircuitBreakerStore) and isinstance(store.inner, RedisStore)
    return store.inner


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis[bytes]]:
    """A plain client, to look at what the store wrote."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_url_options_parsed() -> None:
    s = parse_redis_url(
        "redis://:pw@127.0.0.1:7000/3?socket_timeout=100ms&connect_timeout=0.3"
        "&max_connections=8&prefix=app&retry_after=2s"
    )
    assert (s.socket_timeout_s, s.connect_timeout_s, s.max_connections) == (0.1, 0.3, 8)
    assert (s.prefix, s.retry_after_s) == ("app", 2.0)
    assert s.url == "redis://:pw@127.0.0.1:7000/3"  # redis-py gets no predcache options
    assert s.shown == "redis://:***@127.0.0.1:7000/3"


def test_url_defaults() -> None:
    s = parse_redis_url("redis://localhost")
    assert s.url == "redis://localhost:6379/0"
    assert (s.socket_timeout_s, s.connect_timeout_s, s.prefix) == (0.25, 0.25, "predcache")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("redis://:s3cret@host:99999/0", "port"),
        ("redis://:s3cret@host:6379/x", "database must be a number"),
        ("redis://:s3cret@:6379/0", "no host"),
        ("redis://:s3cret@host/0?socket_timeout=fast", "socket_timeout"),
        ("redis://:s3cret@host/0?socket_timeout=0", "socket_timeout"),
        ("redis://:s3cret@host/0?max_connections=0", "max_connections"),
        ("redis://:s3cret@host/0?prefix=a*", "prefix"),
        ("redis://host/0?password=s3cret", "unknown option 'password'"),
    ],
)
def test_bad_urls_are_bad_input_without_the_password(spec: str, says: str) -> None:
    with pytest.raises(BadBackendError) as err:
        open_store(spec)
    assert says in str(err.value)
    assert "s3cret" not in str(err.value)


def test_redact_url() -> None:
    assert redact_url("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://user:s3cret@h:1/0") == "redis://user:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_keys_are_prefixed_and_hash_tagged(redis_url: str, raw: redis.Redis[bytes]) -> None:
    store = open_redis_store(redis_url + "?prefix=pc", namespace="bench1")
    key = prediction_key("abc123", "ETH/EUR", 300)
    store.set(key, entry(), retain_s=90)
    token = store.acquire_lock(lock_key(key), 30)
    assert token is not None
    stored = sorted(k.decode() for k in raw.keys("*"))
    assert stored == [
        "pc:bench1:{v1:abc123:ETH/EUR:300}",
        "pc:bench1:{v1:abc123:ETH/EUR:300}:lock",
    ]
    # Redis Cluster: a prediction and its lock hash to the same slot
    assert key_slot(stored[0].encode()) == key_slot(stored[1].encode())
    store.close()


def test_values_are_json_with_server_side_expiry(redis_url: str, raw: redis.Redis[bytes]) -> None:
    store = open_redis_store(redis_url)
    store.set("k", entry(), retain_s=150)
    full = inner(store).key("k")
    value = raw.get(full)
    assert value is not None and value.startswith(b'{"pair":"ETH/EUR"')
    assert 149_000 < raw.pttl(full) <= 150_000
    store.set("forever", entry())  # no retain given: still expires (a day), never immortal
    assert 0 < raw.pttl(inner(store).key("forever")) <= 86_400_000
    store.close()


def test_lock_lease_is_a_server_side_expiry(redis_url: str, raw: redis.Redis[bytes]) -> None:
    """A holder that crashes never releases: the PX lease is what frees the key for others."""
    store = open_redis_store(redis_url)
    assert store.acquire_lock("k:lock", 2.5) is not None
    assert 0 < raw.pttl(inner(store).key("k:lock")) <= 2500
    store.close()


def test_a_planted_pickle_is_a_corrupt_miss_and_never_unpickled(
    redis_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))

    store = open_redis_store(redis_url)
    inner(store).set_raw("k", pickle.dumps(Exploit()))
    inner(store).set_raw("j", b'{"pair": "ETH/EUR"}')  # JSON, but not an entry
    assert store.get("k") is None
    assert store.get("j") is None
    assert store.corrupt_reads == 2
    store.set("good", entry(created_at=1000.0))
    st = store.stats()  # reads every value: the pickle is looked at, never unpickled
    assert (st.entries, st.oldest_created_at, st.newest_created_at) == (3, 1000.0, 1000.0)
    assert not marker.exists()
    store.close()


def test_two_stores_share_entries(redis_url: str) -> None:
    """Two clients (as two processes would be) on one Redis: a write by one is read by all."""
    a, b = open_redis_store(redis_url), open_redis_store(redis_url)
    a.set("k", entry(7.0))
    got = b.get("k")
    assert got is not None and got["predicted_price"] == 7.0
    token = a.acquire_lock("k:lock", 30)
    assert token is not None
    assert b.acquire_lock("k:lock", 30) is None
    b.release_lock("k:lock", "not-the-token")  # only the holder's token releases it
    assert b.acquire_lock("k:lock", 30) is None
    a.release_lock("k:lock", token)
    assert b.acquire_lock("k:lock", 30) is not None
    a.close()
    b.close()


def test_namespaces_are_separate(redis_url: str) -> None:
    plain, ns, nested = (
        open_redis_store(redis_url),
        open_redis_store(redis_url, namespace="a"),
        open_redis_store(redis_url, namespace="a:b"),
    )
    plain.set("k", entry(1.0))
    ns.set("k", entry(2.0))
    nested.set("k", entry(3.0))
    prices = [s.get("k") for s in (plain, ns, nested)]
    assert [p["predicted_price"] if p else None for p in prices] == [1.0, 2.0, 3.0]
    assert ns.stats().entries == 1
    assert ns.clear() == 1
    assert nested.get("k") is not None and plain.get("k") is not None
    # without a namespace, stats and clear cover every entry under the prefix (as disk does)
    assert plain.stats().entries == 2
    assert plain.clear() == 2
    for s in (plain, ns, nested):
        s.close()


def test_clear_leaves_other_prefixes_alone(redis_url: str, raw: redis.Redis[bytes]) -> None:
    raw.set("someone-else", "x")
    store = open_redis_store(redis_url)
    store.set("k", entry())
    assert store.clear() == 1
    assert raw.get("someone-else") == b"x"
    store.close()


def test_stats_location_hides_the_password(redis_url: str, raw: redis.Redis[bytes]) -> None:
    raw.config_set("requirepass", "s3cret")
    try:
        url = redis_url.replace("redis://", "redis://:s3cret@")
        store = open_redis_store(url)
        store.set("k", entry())
        st = store.stats()
        assert st.entries == 1 and st.bytes is not None and st.bytes > 50
        assert "s3cret" not in st.location and ":***@" in st.location
        store.close()
    finally:
        authed = redis.Redis.from_url(redis_url, password="s3cret")
        authed.config_set("requirepass", "")
        authed.close()


def test_unreachable_redis_is_backend_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    store = open_redis_store(url)
    with pytest.raises(BackendUnavailableError) as err:
        store.get("k")
    assert "s3cret" not in str(err.value) and "127.0.0.1" in str(err.value)
    assert "s3cret" not in caplog.text
    store.close()
