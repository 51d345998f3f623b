"""The Redis store's exact figures and paths, against a real redis-server (issue 19's mutants).

What ``test_redis_store.py`` and the store contract leave open, pinned to exact values: the
expiry each write asks for (``PTTL`` read back), lock renewal, the zero and sub-second edges of
retain times and leases, ``stats()`` figures over several entries (and over the SCAN/MGET
batches), ``clear()``'s batches, each operation's words in its error message, the client
settings handed to redis-py, and a topology whose reader is not its writer (as Sentinel's
``read=replica``), made here from two databases of one real server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff

from predcache.entry import encode_entry
from predcache.errors import BackendUnavailableError, StoreError
from predcache.store.breaker import CircuitBreakerStore
from predcache.store.redis import (
    DEFAULT_RETAIN_S,
    SCAN_BATCH,
    RedisStore,
    _ms,
    connection_retry,
    open_redis_store,
    parse_redis_url,
)
from tests.fixtures.redis import free_port
from tests.test_store_contract import entry

pytestmark = pytest.mark.redis

DAY_MS = int(DEFAULT_RETAIN_S * 1000)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis[bytes]]:
    """A plain client, to look at what the store wrote."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    """The bare store (no circuit breaker), so every error reaches the test as raised."""
    s = RedisStore(parse_redis_url(redis_url))
    yield s
    s.close()


def calls(raw: redis.Redis[bytes], command: str) -> int:
    """How many times Redis ran ``command`` since the last CONFIG RESETSTAT."""
    stats: dict[str, Any] = raw.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_ms_rounds_up_to_whole_milliseconds_of_at_least_one() -> None:
    assert [_ms(s) for s in (1.5, 0.0015, 0.0001, 0.0, -3.0, 90.0)] == [1500, 2, 1, 1, 1, 90_000]


def test_each_write_asks_for_its_retain_time(store: RedisStore, raw: redis.Redis[bytes]) -> None:
    store.set("k", entry(), retain_s=150)
    assert 149_000 < raw.pttl(store.key("k")) <= 150_000
    store.set("default", entry())  # no retain: a day, exactly
    assert DAY_MS - 2_000 < raw.pttl(store.key("default")) <= DAY_MS
    store.set("short", entry(), retain_s=0.5)  # under a second is still a write
    assert 0 < raw.pttl(store.key("short")) <= 500
    assert raw.get(store.key("short")) == encode_entry(entry()).encode()
    store.set_raw("planted", b"\x80not json")  # the tests' planting helper: as-is, a day
    assert raw.get(store.key("planted")) == b"\x80not json"
    assert DAY_MS - 2_000 < raw.pttl(store.key("planted")) <= DAY_MS
    store.set_raw("brief", "x", retain_s=2.5)
    assert 0 < raw.pttl(store.key("brief")) <= 2_500


def test_retain_zero_deletes_and_writes_nothing(store: RedisStore, raw: redis.Redis[bytes]) -> None:
    store.set("k", entry(1.0), retain_s=60)
    raw.config_resetstat()
    store.set("k", entry(2.0), retain_s=0)
    assert raw.exists(store.key("k")) == 0  # the older value is gone too
    assert (calls(raw, "del"), calls(raw, "set")) == (1, 0)


def test_lock_leases_at_and_under_a_second(store: RedisStore, raw: redis.Redis[bytes]) -> None:
    holder = store.acquire_lock("k:lock", 30)
    assert holder is not None
    # a lease of no time is over as it starts: granted at once, even over a held lock, and
    # nothing is written
    free = store.acquire_lock("k:lock", 0)
    assert free is not None and free != holder
    assert raw.get(store.key("k:lock")) == holder.encode()
    # half a second is a real lease, held in Redis
    short = store.acquire_lock("j:lock", 0.5)
    assert short is not None
    assert raw.get(store.key("j:lock")) == short.encode()
    assert 0 < raw.pttl(store.key("j:lock")) <= 500
    assert store.acquire_lock("j:lock", 30) is None


def test_renew_extends_only_the_holders_lease(store: RedisStore, raw: redis.Redis[bytes]) -> None:
    token = store.acquire_lock("k:lock", 2)
    other = store.acquire_lock("j:lock", 2)
    assert token is not None and other is not None
    full = store.key("k:lock")
    assert store.renew_lock("k:lock", token, 30) is True
    assert 29_000 < raw.pttl(full) <= 30_000
    assert 0 < raw.pttl(store.key("j:lock")) <= 2_000  # another lock is left alone
    assert store.renew_lock("k:lock", "not-the-token", 600) is False
    assert 29_000 < raw.pttl(full) <= 30_000
    assert raw.get(full) == token.encode()
    assert store.renew_lock("never:lock", token, 30) is False
    assert raw.exists(store.key("never:lock")) == 0
    store.release_lock("k:lock", token)
    assert store.renew_lock("k:lock", token, 30) is False  # released: nothing to renew


def test_stats_figures_over_several_entries(store: RedisStore, raw: redis.Redis[bytes]) -> None:
    empty = store.stats()
    assert (empty.entries, empty.bytes, empty.oldest_created_at, empty.newest_created_at) == (
        0,
        0,
        None,
        None,
    )
    values = [entry(1.0, created_at=2000.0), entry(2.0, created_at=1000.0), entry(3.0, 3000.0)]
    for i, value in enumerate(values):
        store.set(f"k{i}", value)
    store.set_raw("bad", b"not an entry")
    assert store.get("bad") is None
    store.acquire_lock("k0:lock", 30)  # a lock is neither an entry nor bytes
    st = store.stats()
    expected_bytes = sum(len(encode_entry(v).encode()) for v in values) + len(b"not an entry")
    assert (st.backend, st.entries, st.bytes, st.corrupt) == ("redis", 4, expected_bytes, 1)
    assert (st.oldest_created_at, st.newest_created_at) == (1000.0, 3000.0)
    assert st.location == "redis://127.0.0.1:{}/0 prefix predcache".format(
        raw.connection_pool.connection_kwargs["port"]
    )


def fill(raw: redis.Redis[bytes], store: RedisStore, n: int) -> None:
    """``n`` entries written straight into Redis under the store's keys (one pipeline)."""
    text = encode_entry(entry())
    with raw.pipeline(transaction=False) as pipe:
        for i in range(n):
            pipe.set(store.key(f"k{i}"), text, px=60_000)
        pipe.execute()


def test_clear_unlinks_in_batches_of_scan_batch(store: RedisStore, raw: redis.Redis[bytes]) -> None:
    n = 2 * SCAN_BATCH + 1
    fill(raw, store, n)
    store.acquire_lock("k0:lock", 30)
    assert store.stats().entries == n  # MGET batches: every entry counted once
    raw.config_resetstat()
    assert store.clear() == n
    assert calls(raw, "unlink") == 3  # 500, 500, 1: no command holds Redis for long
    assert raw.dbsize() == 1  # only the lock is left
    assert store.clear() == 0


class Expiring(RedisStore):
    """Deletes the first key of each MGET batch just before the MGET: an entry that expires
    between the SCAN and the MGET, as a real one can."""

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        self._client().delete(keys[0])
        return super()._mget(keys)


def test_stats_skips_an_entry_that_expired_after_the_scan(
    redis_url: str, raw: redis.Redis[bytes]
) -> None:
    store = Expiring(parse_redis_url(redis_url))
    store.set("a", entry(created_at=1000.0))
    store.set("b", entry(created_at=2000.0))
    store.set("c", entry(created_at=3000.0))
    st = store.stats()
    values = [raw.get(k) or b"" for k in raw.keys("*")]
    left = sorted(float(json.loads(v)["created_at"]) for v in values)
    assert len(left) == 2  # one was deleted between the SCAN and the MGET
    assert (st.entries, st.bytes) == (2, sum(len(v) for v in values))
    assert (st.oldest_created_at, st.newest_created_at) == (left[0], left[1])
    store.close()


def test_a_value_of_another_type_is_a_corrupt_miss(
    store: RedisStore, raw: redis.Redis[bytes]
) -> None:
    raw.lpush(store.key("k"), "x")
    assert store.get("k") is None
    assert store.corrupt_reads == 1
    store.set("k", entry())  # SET replaces it whatever its type
    assert store.get("k") == entry()


def test_a_refused_read_is_a_store_error_not_a_miss(
    redis_url: str, raw: redis.Redis[bytes]
) -> None:
    """Redis refuses GET to this user (NOPERM, a reply error that is not WRONGTYPE): that is
    a failing backend, raised, never a quiet corrupt miss."""
    raw.acl_setuser(
        "limited", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-get"]
    )
    try:
        url = redis_url.replace("redis://", "redis://limited:pw@")
        store = RedisStore(parse_redis_url(url))
        store.set("k", entry())
        with pytest.raises(StoreError) as err:
            store.get("k")
        assert not isinstance(err.value, BackendUnavailableError)
        assert str(err.value).startswith(f"redis at {store.settings.shown} failed (get: ")
        message = str(err.value)
        assert "no permissions to run the 'get' command" in message and ":pw@" not in message
        assert store.corrupt_reads == 0
        store.close()
    finally:
        raw.acl_deluser("limited")


def test_every_operation_names_itself_when_redis_is_unreachable() -> None:
    settings = parse_redis_url(f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    store = RedisStore(settings)
    operations = {
        "get": lambda: store.get("k"),
        "set": lambda: store.set("k", entry(), retain_s=60),
        "delete": lambda: store.delete("k"),
        "lock": lambda: store.acquire_lock("k:lock", 30),
        "unlock": lambda: store.release_lock("k:lock", "t"),
        "renew": lambda: store.renew_lock("k:lock", "t", 30),
        "scan": store.entry_keys,
        "clear": store.clear,
        "stats": store.stats,
    }
    extra = {"set": [lambda: store.set("k", entry(), retain_s=0), lambda: store.set_raw("k", "x")]}
    for what, call in operations.items():
        for attempt in [call, *extra.get(what, [])]:
            with pytest.raises(BackendUnavailableError) as err:
                attempt()
            message = str(err.value)
            assert message.startswith(
                f"redis at redis://:***@127.0.0.1:{settings.hosts[0][1]}/0 is unavailable "
                f"({what}: Error 111 connecting to 127.0.0.1:{settings.hosts[0][1]}."
            ), message
            assert "s3cret" not in message
    store.close()


def test_scrub_keeps_the_sentence_and_cuts_the_password() -> None:
    store = RedisStore(parse_redis_url("redis://:s3cret@127.0.0.1:1/0"))
    plain = RedisStore(parse_redis_url("redis://127.0.0.1:1/0"))
    assert store._scrub(redis.TimeoutError()) == "TimeoutError"  # no message: the class
    assert store._scrub(redis.ConnectionError("auth s3cret refused")) == "auth *** refused"
    sentinel = "No master found for 'svc' : <redis.sentinel.Sentinel<sentinels=[a:1]>>"
    assert store._scrub(redis.ConnectionError(sentinel)) == "No master found for 'svc'"
    assert plain._scrub(redis.ConnectionError("s3cret : <Redis x>")) == "s3cret : <Redis x>"


def test_clients_get_the_urls_settings(redis_url: str) -> None:
    url = redis_url + "?socket_timeout=1500ms&connect_timeout=500ms&max_connections=7"
    store = RedisStore(parse_redis_url(url))
    client = store._client()
    assert store._client(read=True) is client  # one server: one client for both
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", port, 0)
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.5, 0.5)
    assert pool.max_connections == 7
    retry = kwargs["retry"]
    assert isinstance(retry._backoff, NoBackoff) and retry.get_retries() == 1
    assert retry._supported_errors == (redis.ConnectionError,)  # a timeout is not retried
    assert client.ping() is True
    store.close()


def test_connection_retry_is_one_immediate_retry_on_connection_errors_only() -> None:
    retry = connection_retry()
    assert isinstance(retry._backoff, NoBackoff)
    assert (retry.get_retries(), retry._supported_errors) == (1, (redis.ConnectionError,))


def test_open_redis_store_puts_the_store_behind_a_breaker_with_the_urls_pause(
    redis_url: str, raw: redis.Redis[bytes]
) -> None:
    breaker = open_redis_store(redis_url + "?retry_after=3s")
    assert isinstance(breaker, CircuitBreakerStore) and isinstance(breaker.inner, RedisStore)
    assert breaker.retry_after_s == 3.0
    assert breaker.shown == breaker.inner.settings.shown == redis_url
    breaker.set("k", entry())  # no namespace given: the plain prefix
    assert raw.keys("*") == [b"predcache:{k}"]
    assert RedisStore(parse_redis_url(redis_url)).key("k") == "predcache:{k}"
    breaker.close()


class SplitTopology(RedisStore):
    """A reader that is not the writer, as Sentinel's ``read=replica`` makes: here the writer
    is database 0 and the reader database 1 of one real server, so each read shows which
    client it went to."""

    def _connect(self) -> tuple[Any, Any]:
        writer, _ = super()._connect()
        reader = redis.Redis.from_url(self.settings.url.rsplit("/", 1)[0] + "/1")
        return writer, reader


def test_only_get_reads_from_the_reader(redis_url: str, raw: redis.Redis[bytes]) -> None:
    store = SplitTopology(parse_redis_url(redis_url))
    replica = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/1")
    store.set("k", entry(1.0))  # written to the writer (db 0)
    assert raw.get(store.key("k")) is not None
    assert store.get("k") is None  # not yet on the "replica"
    replica.set(store.key("k"), encode_entry(entry(2.0)))
    got = store.get("k")
    assert got is not None and got["predicted_price"] == 2.0
    # everything else goes to the writer: locks, listings, stats, clear
    token = store.acquire_lock("k:lock", 30)
    assert token is not None and raw.exists(store.key("k:lock")) == 1
    assert store.entry_keys() == ["k"] and store.stats().entries == 1
    assert store.clear() == 1 and raw.dbsize() == 1 and replica.dbsize() == 1
    # both clients are closed, each once
    pools = [store._writer.connection_pool, store._reader.connection_pool]
    assert all(p._available_connections for p in pools)
    store.close()
    assert all(c._sock is None for p in pools for c in p._available_connections)
    replica.close()


def test_drop_idle_keeps_connections_in_use(redis_url: str) -> None:
    """After an outage the idle pooled connections are dropped; one a thread is using stays."""
    store = RedisStore(parse_redis_url(redis_url))
    pool = store._client().connection_pool
    busy = pool.get_connection()
    idle = pool.get_connection()
    pool.release(idle)
    assert busy._sock is not None and idle._sock is not None
    store._drop_idle()
    assert idle._sock is None and busy._sock is not None
    pool.release(busy)
    store.close()


def test_an_unused_store_closes_without_connecting() -> None:
    store = RedisStore(parse_redis_url(f"redis://127.0.0.1:{free_port()}/0"))
    store.close()
    assert store._clients() == []


def test_entry_keys_are_exactly_the_stores_own(redis_url: str, raw: redis.Redis[bytes]) -> None:
    """Without a namespace the SCAN sees every namespace's keys too; only the store's own
    ``prefix:{key}`` ones are its entry keys, never a namespaced child's, never a lock."""
    plain = RedisStore(parse_redis_url(redis_url))
    child = RedisStore(parse_redis_url(redis_url), namespace="bench")
    plain.set("v1:a:ETH/EUR:300", entry())
    child.set("v1:a:ETH/EUR:60", entry())
    plain.acquire_lock("v1:a:ETH/EUR:300:lock", 30)
    raw.set("predcache:stray}", "x")  # under the prefix, not a store key
    assert plain.entry_keys() == ["v1:a:ETH/EUR:300"]
    assert child.entry_keys() == ["v1:a:ETH/EUR:60"]
    plain.close()
    child.close()
