"""The Python API: ``@cached`` and :class:`Cache`, a thin layer over the one predictor.

Everything a cached call goes through is the CLI's and the server's policy code: the
:class:`~predcache.predictor.Predictor` (freshness from ``created_at``, ``max_age``, single-flight
within the process and, through the store's lease lock, across processes, the stampede strategy,
counters, the injectable clock) over a :mod:`predcache.store` backend. This module only turns
a call into a key (:func:`predcache.keys.call_key`) and a result into an entry
(:func:`predcache.entry.value_entry`), and back.

- **Keys**: the function's module and qualified name, a version (``version=``, default a hash
  of its source) and the canonical JSON of its arguments, bound to its signature (``f(1)`` and
  ``f(x=1)`` are one key). Arguments that are not JSON raise :class:`TypeError`; ``key=`` maps
  the arguments to something that is.
- **Values** must be JSON (dicts, lists, strings, finite numbers, booleans, ``None``): anything
  else is a :class:`TypeError` and nothing is stored. Never pickle. A miss returns the value as
  a hit would (the JSON round trip: a tuple comes back a list), so both look the same.
- **Errors**: what the function raises reaches the caller unchanged, and nothing is stored.
- **Stampedes** (``stampede=``, the names of :mod:`predcache.stampede`): ``coalesce`` (the
  default) makes concurrent misses on one key one call (threads and tasks in this process, and
  processes sharing a disk or Redis store); ``none`` lets each compute (the seed's cache);
  ``stale-while-revalidate`` answers from an entry up to ``stale_grace`` past its expiry while
  one background call refreshes it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import inspect
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, NamedTuple, TypeVar, cast

from predcache.clock import Clock
from predcache.config import DEFAULT_TTL_S
from predcache.durations import parse_duration
from predcache.entry import Entry, entry_value, value_entry
from predcache.errors import BadInputError, ComputeError
from predcache.keys import call_key
from predcache.predictor import Predictor, Served
from predcache.registry import Computed
from predcache.stampede import DEFAULT_STRATEGY, STALE_WHILE_REVALIDATE, Strategy, parse_strategy
from predcache.store import Store, open_store

__all__ = ["Cache", "CacheInfo", "CachedFunction", "CachedResult", "cached"]

R = TypeVar("R")
#: the stampede strategies a call can use (refresh-ahead needs a server's background loop)
API_STRATEGIES: tuple[Strategy, ...] = ("coalesce", "none", "stale-while-revalidate")
#: durations as the CLI takes them: ``"90s"``, ``"5m"``, or seconds
Duration = str | float | int
#: threads for async callers' misses: a waiter blocks one while another computes, and a
#: dedicated pool keeps them from starving the event loop's default executor (which the
#: cached coroutine itself may use)
_ASYNC_THREADS = 64
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class CacheInfo(NamedTuple):
    """Counts since the cache was made: the predictor's own counters.

    A caller that waited for another's computation (single-flight) is ``collapsed``, not a
    hit; ``stale`` counts answers served within stale-while-revalidate's grace.
    """

    hits: int
    misses: int
    bypasses: int
    model_calls: int
    errors: int
    collapsed: int = 0
    stale: int = 0


class CachedResult(Generic[R]):
    """A value and how it was served: for response headers (:mod:`predcache.headers`)."""

    __slots__ = ("limit_s", "served", "value")

    def __init__(self, value: R, served: Served, limit_s: float) -> None:
        self.value = value
        #: the predictor's answer: outcome, age, entry
        self.served = served
        #: the freshness bound the call was served under (the TTL, or its max-age)
        self.limit_s = limit_s

    @property
    def outcome(self) -> str:
        """``hit``, ``collapsed``, ``stale``, ``miss`` or ``bypass`` (the product brief's)."""
        return self.served.cache

    @property
    def age_s(self) -> float:
        return self.served.age_s

    def __repr__(self) -> str:
        return f"CachedResult({self.outcome}, age {self.age_s:.3f}s, {self.value!r})"


class _Unused:
    """The predictor's model source, which the API never asks for a prediction."""

    def __init__(self, version: str) -> None:
        self._version = version

    def version(self, pair: str) -> str:
        return self._version

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        """Nothing to check: the API has no horizons."""

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        raise TypeError("the Python API computes through Cache.get_or_compute, not predictions")


class Cache:
    """A cache of JSON results: ``cache.get_or_compute(key, fn)`` (or ``await aget_or_compute``).

    ``backend`` is ``"memory"``, ``"disk"``, ``"disk:///path"``, ``"redis://..."`` (the CLI's
    strings) or a :class:`~predcache.store.Store`. ``ttl`` is how long a value stays fresh;
    ``stampede`` is ``coalesce`` (single-flight), ``none`` or ``stale-while-revalidate`` (with
    ``stale_grace``). ``name`` and ``version`` go into every key.
    """

    def __init__(
        self,
        backend: str | Store = "disk",
        *,
        ttl: Duration = DEFAULT_TTL_S,
        stampede: Strategy | str = DEFAULT_STRATEGY,
        stale_grace: Duration | None = None,
        name: str = "cache",
        version: str = "0",
        clock: Clock | None = None,
    ) -> None:
        strategy = parse_strategy(str(stampede), allowed=API_STRATEGIES)
        grace = 0.0 if stale_grace is None else parse_duration(stale_grace, name="stale_grace")
        if (strategy == STALE_WHILE_REVALIDATE) != (grace > 0):
            raise BadInputError(
                "stale_grace (> 0) goes with stampede='stale-while-revalidate', and only with it"
            )
        self.name = name
        self.version = version
        store = backend if isinstance(backend, Store) else open_store(backend)
        self.predictor = Predictor(
            store,
            _Unused(version),
            clock=clock,
            ttl_s=parse_duration(ttl, name="ttl"),
            stampede=strategy,
            stale_grace_s=grace,
        )
        self._refreshing: set[asyncio.Future[Any]] = set()

    @property
    def store(self) -> Store:
        assert self.predictor.store is not None
        return self.predictor.store

    def key_for(self, key: object) -> str:
        """The store key of ``key`` (any JSON value), through the one key function."""
        return call_key(self.version, self.name, canonical_json(key, what="key"))

    def get_or_compute(
        self, key: object, fn: Callable[[], R], *, max_age: Duration | None = None
    ) -> R:
        """``key``'s fresh value, else ``fn()``'s (stored; one call for concurrent misses)."""
        return self.lookup(key, fn, max_age=max_age).value

    def lookup(
        self, key: object, fn: Callable[[], R], *, max_age: Duration | None = None
    ) -> CachedResult[R]:
        """:meth:`get_or_compute` with how the value was served (outcome, age, bound)."""
        store_key = self.key_for(key)
        max_age_s = _seconds(max_age)
        served = _unwrapped(
            lambda: self.predictor.serve(store_key, self._compute(fn), max_age_s=max_age_s)
        )
        if served.cache == "stale":  # one background refresh, in a thread of its own
            refresh = self._refresher(store_key, self._compute(fn), served)
            threading.Thread(target=refresh, name="predcache-revalidate", daemon=True).start()
        return self._result(served, max_age_s)

    async def aget_or_compute(
        self, key: object, fn: Callable[[], Awaitable[R]], *, max_age: Duration | None = None
    ) -> R:
        """:meth:`get_or_compute` for a coroutine function."""
        return (await self.alookup(key, fn, max_age=max_age)).value

    async def alookup(
        self, key: object, fn: Callable[[], Awaitable[R]], *, max_age: Duration | None = None
    ) -> CachedResult[R]:
        """:meth:`lookup` for a coroutine function; a hit is served without leaving the loop.

        A miss runs the predictor in a worker thread (its single-flight waits block a thread,
        never the loop); the computing thread runs ``fn()`` back on this loop and waits for it.
        """
        store_key = self.key_for(key)
        max_age_s = _seconds(max_age)
        loop = asyncio.get_running_loop()
        inline = self.store.name in ("memory", "disk")  # a local read costs less than a hop
        served = self.predictor.serve_fresh(store_key, max_age_s=max_age_s) if inline else None
        if served is None:

            def blocking() -> R:
                return asyncio.run_coroutine_threadsafe(_awaited(fn), loop).result()

            served = await loop.run_in_executor(
                _async_pool(),
                lambda: _unwrapped(
                    lambda: self.predictor.serve(
                        store_key, self._compute(blocking), max_age_s=max_age_s
                    )
                ),
            )
        if served.cache == "stale":

            def fresh_value() -> R:
                return asyncio.run_coroutine_threadsafe(_awaited(fn), loop).result()

            refresh = self._refresher(store_key, self._compute(fresh_value), served)
            task = loop.run_in_executor(_async_pool(), refresh)
            self._refreshing.add(task)  # keep a reference until it is done
            task.add_done_callback(self._refreshing.discard)
        return self._result(served, max_age_s)

    def _refresher(
        self, key: str, compute: Callable[[], Entry], served: Served
    ) -> Callable[[], None]:
        """Stale-while-revalidate's refresh: once per expired entry, however many callers saw
        it stale (the predictor skips it when another refresh holds the key or is done)."""
        seen = float(served.entry["created_at"])

        def refresh() -> None:
            # a failure is counted in errors; the next caller computes or tries again
            with contextlib.suppress(Exception):
                self.predictor.refresh_key_if_idle(key, compute, seen)

        return refresh

    def invalidate(self, key: object) -> bool:
        """Drop ``key``'s entry; True when there was one."""
        return self.store.delete(self.key_for(key))

    def cache_info(self) -> CacheInfo:
        s = self.predictor.stats
        return CacheInfo(
            s.hits, s.misses, s.bypasses, s.model_calls, s.errors, s.collapsed, s.stale
        )

    def close(self) -> None:
        self.store.close()

    def _compute(self, fn: Callable[[], Any]) -> Callable[[], Entry]:
        """``fn`` as the predictor's compute: its result checked as JSON into a value entry."""

        def make(created_at: float) -> Entry:
            value = json.loads(canonical_json(fn(), what="value", sort_keys=False))
            return value_entry(value, created_at, self.version, 0.0)

        return lambda: self.predictor.call(make, self.name)

    def _result(self, served: Served, max_age_s: float | None) -> CachedResult[Any]:
        limit = self.predictor.freshness_limit(max_age_s)
        return CachedResult(entry_value(served.entry), served, limit)


class CachedFunction(Generic[R]):
    """What ``@cached`` returns: call it as the function (plus an optional ``max_age=``)."""

    def __init__(self, fn: Callable[..., R], cache: Cache, key: Callable[..., object] | None):
        self.__wrapped__ = fn
        self.cache = cache
        self._key = key
        self._signature = inspect.signature(fn)
        self._is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, max_age: Duration | None = None, **kwargs: Any) -> R:
        fn = functools.partial(self.__wrapped__, *args, **kwargs)
        if self._is_async:
            afn = cast(Callable[[], Awaitable[Any]], fn)
            return cast(
                R, self.cache.aget_or_compute(self.key(*args, **kwargs), afn, max_age=max_age)
            )
        return self.cache.get_or_compute(self.key(*args, **kwargs), fn, max_age=max_age)

    def lookup(self, *args: Any, max_age: Duration | None = None, **kwargs: Any) -> Any:
        """The call's :class:`CachedResult` (value, outcome, age): for response headers.
        A coroutine for an async function."""
        fn = functools.partial(self.__wrapped__, *args, **kwargs)
        if self._is_async:
            afn = cast(Callable[[], Awaitable[Any]], fn)
            return self.cache.alookup(self.key(*args, **kwargs), afn, max_age=max_age)
        return self.cache.lookup(self.key(*args, **kwargs), fn, max_age=max_age)

    def key(self, *args: Any, **kwargs: Any) -> object:
        """The JSON value a call's key is made of: ``key=``'s answer, else the bound arguments."""
        if self._key is not None:
            return self._key(*args, **kwargs)
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.__wrapped__.__qualname__}(): {exc}") from None
        bound.apply_defaults()
        return bound.arguments

    def invalidate(self, *args: Any, **kwargs: Any) -> bool:
        """Drop the entry of this call's arguments; True when there was one."""
        return self.cache.invalidate(self.key(*args, **kwargs))

    def cache_info(self) -> CacheInfo:
        return self.cache.cache_info()


def cached(
    *,
    ttl: Duration = DEFAULT_TTL_S,
    backend: str | Store = "disk",
    key: Callable[..., object] | None = None,
    version: str | None = None,
    stampede: Strategy | str = DEFAULT_STRATEGY,
    stale_grace: Duration | None = None,
    clock: Clock | None = None,
) -> Callable[[Callable[..., R]], CachedFunction[R]]:
    """Cache a function's JSON results by its arguments: ``@cached(ttl="90s", backend="disk")``.

    Works on plain and ``async def`` functions. ``version`` (default: a hash of the function's
    source, so an edit invalidates) and the function's qualified name go into every key.
    """

    def decorate(fn: Callable[..., R]) -> CachedFunction[R]:
        name = f"{fn.__module__}.{fn.__qualname__}"
        cache = Cache(
            backend,
            ttl=ttl,
            stampede=stampede,
            stale_grace=stale_grace,
            name=name,
            version=version if version is not None else source_version(fn),
            clock=clock,
        )
        return CachedFunction(fn, cache, key)

    return decorate


def source_version(fn: Callable[..., Any]) -> str:
    """``fn-`` and 12 hex digits of a SHA-256 of the function's source (its name without one)."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        text = f"{fn.__module__}.{fn.__qualname__}"
    return "fn-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def canonical_json(value: object, *, what: str, sort_keys: bool = True) -> str:
    """Compact JSON of ``value`` (keys sorted for a key, in order for a value); a
    :class:`TypeError` naming ``what`` when it is not JSON."""
    try:
        return json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"predcache caches JSON only: the {what} is not JSON-encodable ({exc})"
        ) from None


def _seconds(max_age: Duration | None) -> float | None:
    return None if max_age is None else parse_duration(max_age, name="max_age")


def _unwrapped(call: Callable[[], R]) -> R:
    """``call()``, re-raising what the cached function raised, not the predictor's wrapper."""
    try:
        return call()
    except ComputeError as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise


async def _awaited(fn: Callable[[], Awaitable[R]]) -> R:
    return await fn()


def _async_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                _ASYNC_THREADS, thread_name_prefix="predcache-api"
            )
        return _pool
