"""Redis backend: one cache shared by every process and host that points at the same server.

``redis://[[user]:password@]host:port/db[?option=value&...]`` (``rediss://`` for TLS). Options,
all optional:

- ``socket_timeout`` (default 250ms) and ``connect_timeout`` (default 250ms): a slow or dead
  Redis costs a request at most this long before the request is answered without the cache.
- ``max_connections`` (default 128): the size of the connection pool.
- ``prefix`` (default ``predcache``): every key lives under it, so predcache can share a Redis.
- ``retry_after`` (default 1s): how long the circuit breaker stays open after a failure before
  one request probes Redis again (see :mod:`predcache.store.breaker`).

Values are JSON text (``encode_entry``), never pickles. Every write carries a server-side
expiry (``SET ... PX retain``), so Redis garbage-collects what the predictor's TTL has already
made stale; freshness itself is still judged by the predictor's clock. Keys are hash-tagged by
:func:`predcache.keys.slot_tagged`, so on Redis Cluster a prediction and its lock share a slot.
The URL's password never appears in messages: they show :func:`predcache.store.redact_url`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from predcache.durations import parse_duration
from predcache.entry import Entry, decode_entry, encode_entry
from predcache.errors import BackendUnavailableError, BadBackendError, BadDurationError, StoreError
from predcache.keys import LOCK_SUFFIX, namespaced, slot_tagged
from predcache.store.base import Store, StoreStats

DEFAULT_PREFIX = "predcache"
DEFAULT_SOCKET_TIMEOUT_S = 0.25
DEFAULT_CONNECT_TIMEOUT_S = 0.25
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_RETRY_AFTER_S = 1.0
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

T = TypeVar("T")


@dataclass(frozen=True)
class RedisSettings:
    """A parsed backend URL: what to connect to, and how patiently."""

    url: str  # the URL redis-py gets: with the password, without predcache's options
    shown: str  # the same URL with the password redacted: the only form that is printed
    prefix: str = DEFAULT_PREFIX
    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    retry_after_s: float = DEFAULT_RETRY_AFTER_S


def parse_redis_url(spec: str) -> RedisSettings:
    """Validate ``spec`` and split off predcache's options; :class:`BadBackendError` if wrong."""
    from predcache.store import redact_url

    shown = redact_url(spec)
    try:
        parts = urlsplit(spec)
        port = parts.port
    except ValueError as exc:
        raise BadBackendError(f"bad backend {shown!r}: bad host or port ({exc})") from exc
    if parts.scheme not in ("redis", "rediss"):
        raise BadBackendError(f"bad backend {shown!r}: use redis://host:port/db")
    if not parts.hostname:
        raise BadBackendError(f"bad backend {shown!r}: no host (e.g. redis://127.0.0.1:6379/0)")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise BadBackendError(f"bad backend {shown!r}: the database must be a number, e.g. /0")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    known = {"socket_timeout", "connect_timeout", "max_connections", "prefix", "retry_after"}
    unknown = sorted(set(options) - known)
    if unknown:
        # only the option's name is shown: its value could be a secret (?password=...)
        raise BadBackendError(
            f"bad backend {shown.split('?', 1)[0]!r}: unknown option {unknown[0]!r} "
            f"(known: {', '.join(sorted(known))}; put a password in the URL as :PASSWORD@host)"
        )
    try:
        socket_timeout = _timeout(options, "socket_timeout", DEFAULT_SOCKET_TIMEOUT_S)
        connect_timeout = _timeout(options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_S)
        retry_after = parse_duration(
            options.get("retry_after", DEFAULT_RETRY_AFTER_S), name="retry_after"
        )
    except BadDurationError as exc:
        raise BadBackendError(f"bad backend {shown.split('?', 1)[0]!r}: {exc}") from exc
    max_conn = options.get("max_connections", str(DEFAULT_MAX_CONNECTIONS))
    if not max_conn.isdigit() or not 1 <= int(max_conn) <= 10_000:
        raise BadBackendError(f"bad backend {shown!r}: max_connections must be 1..10000")
    prefix = options.get("prefix", DEFAULT_PREFIX)
    if not prefix or any(c in prefix for c in "{}*?[]\\ "):
        raise BadBackendError(f"bad backend {shown!r}: prefix must be non-empty, no {{}}*?[]\\")
    netloc = parts.netloc if port is not None else f"{parts.netloc}:6379"
    return RedisSettings(
        url=urlunsplit((parts.scheme, netloc, "/" + (db or "0"), "", "")),
        shown=redact_url(urlunsplit((parts.scheme, netloc, "/" + (db or "0"), "", ""))),
        prefix=prefix,
        socket_timeout_s=socket_timeout,
        connect_timeout_s=connect_timeout,
        max_connections=int(max_conn),
        retry_after_s=retry_after,
    )


def _timeout(options: dict[str, str], name: str, default: float) -> float:
    value = parse_duration(options.get(name, default), name=name)
    if not 0 < value <= 60:
        raise BadDurationError(f"bad {name}: {options.get(name)!r} (must be > 0 and <= 60s)")
    return value


class RedisStore(Store):
    """Entries in one Redis database, under ``<prefix>[:<namespace>]:{<key>}``."""

    name = "redis"

    def __init__(self, settings: RedisSettings, namespace: str = "") -> None:
        super().__init__(namespace)
        self.settings = settings
        self._prefix = namespaced(settings.prefix, namespace) if namespace else settings.prefix
        # No retries on timeouts: a slow Redis must cost one timeout, not up to ten plus
        # backoff sleeps (redis-py 8's default). One immediate retry on a connection error,
        # for a pooled connection that the server or a proxy closed while it sat idle.
        self._pool = redis.ConnectionPool.from_url(
            settings.url,
            socket_timeout=settings.socket_timeout_s,
            socket_connect_timeout=settings.connect_timeout_s,
            max_connections=settings.max_connections,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        self._redis = redis.Redis(connection_pool=self._pool)
        self._release = self._redis.register_script(_RELEASE_LUA)

    def key(self, key: str) -> str:
        """The Redis key for a store key (through the one key module)."""
        return slot_tagged(self._prefix, key)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn redis-py's exceptions into predcache's, with the password-free URL."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # drop idle connections too: after an outage they are dead, and reconnect lazily
            self._pool.disconnect(inuse_connections=False)
            raise BackendUnavailableError(
                f"redis at {self.settings.shown} is unavailable ({what}: {self._scrub(exc)})"
            ) from exc
        except redis.RedisError as exc:
            raise StoreError(
                f"redis at {self.settings.shown} failed ({what}: {self._scrub(exc)})"
            ) from exc

    def _scrub(self, exc: Exception) -> str:
        """redis-py's message, with the password cut out should a message ever carry it."""
        text = str(exc) or exc.__class__.__name__
        password = urlsplit(self.settings.url).password
        return text.replace(password, "***") if password else text

    def _run(self, what: str, call: Callable[[], T]) -> T:
        with self._errors(what):
            return call()

    def get(self, key: str) -> Entry | None:
        raw = self._run("get", lambda: self._redis.get(self.key(key)))
        if raw is None:
            return None
        return self._decode(raw)

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        text = encode_entry(entry)  # ValueError for a non-JSON value, before any I/O
        retain = DEFAULT_RETAIN_S if retain_s is None else retain_s
        full = self.key(key)
        if retain <= 0:  # kept for no time at all: the key must not hold an older value either
            self._run("set", lambda: self._redis.delete(full))
            return
        self._run("set", lambda: self._redis.set(full, text, px=_ms(retain)))

    def set_raw(self, key: str, value: bytes | str, retain_s: float = DEFAULT_RETAIN_S) -> None:
        """Store bytes as-is (tests plant corrupt and foreign values with this)."""
        self._run("set", lambda: self._redis.set(self.key(key), value, px=_ms(retain_s)))

    def delete(self, key: str) -> bool:
        return bool(self._run("delete", lambda: self._redis.delete(self.key(key))))

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        """``SET lock token NX PX lease``: atomic across every client of this Redis."""
        token = uuid.uuid4().hex
        if lease_s <= 0:  # a lease of no time is over as soon as it starts
            return token
        full = self.key(name)
        took = self._run("lock", lambda: self._redis.set(full, token, nx=True, px=_ms(lease_s)))
        return token if took else None

    def release_lock(self, name: str, token: str) -> None:
        """Compare-and-delete in one Lua call, so only the holder's token releases the lock."""
        self._run("unlock", lambda: self._release(keys=[self.key(name)], args=[token]))

    def _entry_keys(self) -> Iterator[bytes]:
        """This store's entry keys (not locks), by SCAN: never blocks Redis like KEYS would.

        Without a namespace that is every entry under the prefix, namespaced ones included
        (as the disk store's ``clear`` and ``stats``); with one, only that namespace's.
        """
        pattern = f"{self._prefix}:*" if not self.namespace else f"{self._prefix}:{{*"
        suffix = LOCK_SUFFIX.encode()
        for k in self._redis.scan_iter(match=pattern, count=SCAN_BATCH):
            if not k.endswith(suffix):
                yield k

    def clear(self) -> int:
        removed = 0
        with self._errors("clear"):
            batch: list[bytes] = []
            for k in self._entry_keys():
                batch.append(k)
                if len(batch) >= SCAN_BATCH:
                    removed += int(self._redis.unlink(*batch))
                    batch = []
            if batch:
                removed += int(self._redis.unlink(*batch))
        return removed

    def stats(self) -> StoreStats:
        created: list[float] = []
        entries = size = 0
        with self._errors("stats"):
            keys = list(self._entry_keys())
            for i in range(0, len(keys), SCAN_BATCH):
                for raw in self._redis.mget(keys[i : i + SCAN_BATCH]):
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
        self._pool.disconnect()


def _ms(seconds: float) -> int:
    """Milliseconds for PX, at least 1 (Redis rejects 0)."""
    return max(1, math.ceil(seconds * 1000))


def open_redis_store(spec: str, namespace: str = "") -> Store:
    """A Redis store behind a circuit breaker; connects lazily, so a down Redis fails nothing.

    Called by :func:`predcache.store.open_store` for ``redis://`` and ``rediss://`` specs.
    """
    from predcache.store.breaker import CircuitBreakerStore

    settings = parse_redis_url(spec)
    return CircuitBreakerStore(
        RedisStore(settings, namespace=namespace),
        retry_after_s=settings.retry_after_s,
        shown=settings.shown,
    )
