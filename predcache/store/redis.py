"""Redis backend: one cache shared by every process and host that points at the same Redis.

URLs and options are parsed by :mod:`predcache.store.redis_url`; Cluster and Sentinel clients
come from :mod:`predcache.store.redis_cluster`. This module holds what all three share.

- ``socket_timeout`` / ``connect_timeout`` bound what a slow or dead Redis costs one request
  before it is answered without the cache; after that the circuit breaker
  (:mod:`predcache.store.breaker`) answers at once until ``retry_after`` has passed.
- Values are JSON text (``encode_entry``), never pickles. Every write carries a server-side
  expiry (``SET ... PX retain``), so Redis garbage-collects what the predictor's TTL has already
  made stale; freshness itself is still judged by the predictor's clock.
- Keys are hash-tagged by :func:`predcache.keys.slot_tagged`, so on Redis Cluster a prediction
  and its lock share a slot.
- The URL's password never appears in messages: they show :func:`predcache.store.redact_url`.
"""

from __future__ import annotations

import math
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from predcache.entry import Entry, decode_entry, encode_entry
from predcache.errors import BackendUnavailableError, StoreError
from predcache.keys import LOCK_SUFFIX, namespaced, slot_tagged
from predcache.store.base import Store, StoreStats
from predcache.store.redis_url import SINGLE, RedisSettings, parse_redis_url

__all__ = ["RedisSettings", "RedisStore", "open_redis_store", "parse_redis_url"]

#: a write without a retain time still expires: a forgotten namespace must not fill Redis
DEFAULT_RETAIN_S = 86400.0
SCAN_BATCH = 500

# Delete the lock only if it still holds the caller's token (a late holder whose lease ran out
# must not delete the lock a newer holder took).
_RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# Extend the lock's expiry only while it still holds the caller's token.
_RENEW_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

T = TypeVar("T")


class RedisStore(Store):
    """Entries in one Redis database, under ``<prefix>[:<namespace>]:{<key>}``.

    The topology (one server here; Cluster and Sentinel in :mod:`predcache.store.redis_cluster`)
    only changes how clients are made and which errors mean "unreachable": the commands, keys,
    lock and error mapping below are shared by all three.
    """

    #: redis-py errors that mean the data cannot be reached now (they open the circuit breaker)
    unreachable: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)

    def __init__(self, settings: RedisSettings, namespace: str = "") -> None:
        super().__init__(namespace)
        self.settings = settings
        self.name = settings.topology
        self._prefix = namespaced(settings.prefix, namespace) if namespace else settings.prefix
        # redis-py's clients share one command surface but no static type: hence Any.
        self._writer: Any = None
        self._reader: Any = None
        self._release: Any = None
        self._renew: Any = None
        self._opening = threading.Lock()

    def _connect(self) -> tuple[Any, Any]:
        """The (writer, reader) clients; called once, on first use, inside the error mapping.

        No retries on timeouts: a slow Redis must cost one timeout, not up to ten plus backoff
        sleeps (redis-py 8's default). One immediate retry on a connection error, for a pooled
        connection that the server or a proxy closed while it sat idle.
        """
        pool = redis.ConnectionPool.from_url(
            self.settings.url,
            socket_timeout=self.settings.socket_timeout_s,
            socket_connect_timeout=self.settings.connect_timeout_s,
            max_connections=self.settings.max_connections,
            retry=connection_retry(),
        )
        client = redis.Redis(connection_pool=pool)
        return client, client

    def _client(self, *, read: bool = False) -> Any:
        """The writer (or reader) client, made on first use (a cluster is contacted then)."""
        if self._writer is None:
            with self._opening:
                if self._writer is None:
                    writer, reader = self._connect()
                    self._release = writer.register_script(_RELEASE_LUA)
                    self._renew = writer.register_script(_RENEW_LUA)
                    self._reader = reader
                    self._writer = writer  # last: other threads test it without the lock
        return self._reader if read else self._writer

    def _release_script(self) -> Any:
        self._client()  # registers the script with the client
        return self._release

    def _drop_idle(self) -> None:
        """After an outage pooled connections are dead: drop the idle ones, reconnect lazily."""
        for client in self._clients():
            client.connection_pool.disconnect(inuse_connections=False)

    def _clients(self) -> list[Any]:
        """The clients made so far (one when reader and writer are the same)."""
        made = [c for c in (self._writer, self._reader) if c is not None]
        return [c for i, c in enumerate(made) if all(c is not m for m in made[:i])]

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        return list(self._client().mget(keys))

    def key(self, key: str) -> str:
        """The Redis key for a store key (through the one key module)."""
        return slot_tagged(self._prefix, key)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn redis-py's exceptions into predcache's, with the password-free URL."""
        try:
            yield
        except self.unreachable as exc:
            self._drop_idle()
            raise BackendUnavailableError(
                f"redis at {self.settings.shown} is unavailable ({what}: {self._scrub(exc)})"
            ) from exc
        except (redis.RedisError, RedisClusterException) as exc:
            raise StoreError(
                f"redis at {self.settings.shown} failed ({what}: {self._scrub(exc)})"
            ) from exc

    def _scrub(self, exc: Exception) -> str:
        """redis-py's message, with the password cut out should a message ever carry it."""
        text = str(exc) or exc.__class__.__name__
        # redis-py's Sentinel errors embed a client's whole repr: keep the sentence, not that
        text = re.sub(r" : <redis\..*>", "", text)
        password = self.settings.password
        return text.replace(password, "***") if password else text

    def _run(self, what: str, call: Callable[[], T]) -> T:
        with self._errors(what):
            return call()

    def get(self, key: str) -> Entry | None:
        # the one read that may go to a replica (Sentinel ?read=replica); admin reads do not
        try:
            raw = self._run("get", lambda: self._client(read=True).get(self.key(key)))
        except StoreError as exc:
            if not _wrong_type(exc):
                raise
            # Something else (a list, a hash...) sits at the entry's key: a corrupt entry, a
            # miss; the next SET replaces it whatever its type. Not a backend failure, so it
            # must not make the key a bypass forever.
            self._note_corrupt()
            return None
        if raw is None:
            return None
        return self._decode(raw)

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        text = encode_entry(entry)  # ValueError for a non-JSON value, before any I/O
        retain = DEFAULT_RETAIN_S if retain_s is None else retain_s
        full = self.key(key)
        if retain <= 0:  # kept for no time at all: the key must not hold an older value either
            self._run("set", lambda: self._client().delete(full))
            return
        self._run("set", lambda: self._client().set(full, text, px=_ms(retain)))

    def set_raw(self, key: str, value: bytes | str, retain_s: float = DEFAULT_RETAIN_S) -> None:
        """Store bytes as-is (tests plant corrupt and foreign values with this)."""
        self._run("set", lambda: self._client().set(self.key(key), value, px=_ms(retain_s)))

    def delete(self, key: str) -> bool:
        return bool(self._run("delete", lambda: self._client().delete(self.key(key))))

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        """``SET lock token NX PX lease``: atomic across every client of this Redis."""
        token = uuid.uuid4().hex
        if lease_s <= 0:  # a lease of no time is over as soon as it starts
            return token
        full = self.key(name)
        took = self._run("lock", lambda: self._client().set(full, token, nx=True, px=_ms(lease_s)))
        return token if took else None

    def release_lock(self, name: str, token: str) -> None:
        """Compare-and-delete in one Lua call, so only the holder's token releases the lock."""
        full = self.key(name)
        self._run("unlock", lambda: self._release_script()(keys=[full], args=[token]))

    def renew_lock(self, name: str, token: str, lease_s: float) -> bool:
        """Compare-and-pexpire in one Lua call: only the holder's token extends the lease."""
        full = self.key(name)
        ms = _ms(lease_s)

        def renew() -> Any:
            self._client()  # registers the scripts with the client
            return self._renew(keys=[full], args=[token, ms])

        return bool(self._run("renew", renew))

    def _entry_keys(self) -> Iterator[bytes]:
        """This store's entry keys (not locks), by SCAN: never blocks Redis like KEYS would.

        Without a namespace that is every entry under the prefix, namespaced ones included
        (as the disk store's ``clear`` and ``stats``); with one, only that namespace's.
        """
        pattern = f"{self._prefix}:*" if not self.namespace else f"{self._prefix}:{{*"
        suffix = LOCK_SUFFIX.encode()
        for k in self._client().scan_iter(match=pattern, count=SCAN_BATCH):
            if not k.endswith(suffix):
                yield k

    def entry_keys(self) -> list[str]:
        own = f"{self._prefix}:{{".encode()  # namespaced children (prefix:ns:{...}) are not own
        with self._errors("scan"):
            found = list(self._entry_keys())
        return [k[len(own) : -1].decode() for k in found if k.startswith(own) and k.endswith(b"}")]

    def clear(self) -> int:
        removed = 0
        with self._errors("clear"):
            batch: list[bytes] = []
            for k in self._entry_keys():
                batch.append(k)
                if len(batch) >= SCAN_BATCH:
                    removed += int(self._client().unlink(*batch))
                    batch = []
            if batch:
                removed += int(self._client().unlink(*batch))
        return removed

    def stats(self) -> StoreStats:
        created: list[float] = []
        entries = size = 0
        with self._errors("stats"):
            keys = list(self._entry_keys())
            for i in range(0, len(keys), SCAN_BATCH):
                for raw in self._mget(keys[i : i + SCAN_BATCH]):
                    if raw is None:  # expired between SCAN and MGET
                        continue
                    entries += 1
                    size += len(raw)
                    entry = decode_entry(raw)
                    if entry is not None:
                        created.append(float(entry["created_at"]))
        return StoreStats(
            backend=self.name,
            location=f"{self.settings.shown} prefix {self._prefix}",
            entries=entries,
            bytes=size,
            oldest_created_at=min(created, default=None),
            newest_created_at=max(created, default=None),
            corrupt=self.corrupt_reads,
        )

    def close(self) -> None:
        for client in self._clients():
            client.connection_pool.disconnect()


def _wrong_type(exc: StoreError) -> bool:
    """True for Redis's WRONGTYPE reply (a value of another type at the key)."""
    cause = exc.__cause__
    return isinstance(cause, redis.ResponseError) and str(cause).startswith("WRONGTYPE")


def _ms(seconds: float) -> int:
    """Milliseconds for PX, at least 1 (Redis rejects 0)."""
    return max(1, math.ceil(seconds * 1000))


def open_redis_store(spec: str, namespace: str = "") -> Store:
    """A Redis store (one server, Cluster or Sentinel) behind a circuit breaker.

    Connects lazily, so an unreachable Redis fails nothing here. Called by
    :func:`predcache.store.open_store` for every ``redis*://`` spec.
    """
    from predcache.store.breaker import CircuitBreakerStore

    settings = parse_redis_url(spec)
    store: RedisStore
    if settings.topology == SINGLE:
        store = RedisStore(settings, namespace=namespace)
    else:
        from predcache.store.redis_cluster import open_topology

        store = open_topology(settings, namespace=namespace)
    return CircuitBreakerStore(store, retry_after_s=settings.retry_after_s, shown=settings.shown)


def connection_retry() -> Retry:
    """One immediate retry on a connection error, none on a timeout (see ``_connect``)."""
    return Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
