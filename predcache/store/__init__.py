"""Cache backends behind one interface, selected by one string.

``memory`` | ``disk`` | ``disk:///path`` | ``redis://[:password@]host:port/db`` |
``redis+cluster://host:port[,host:port...]`` | ``redis+sentinel://host:port[,...]/service``
(``rediss...`` for TLS; see :mod:`predcache.store.redis_url`).
Backend modules are imported only when selected, so a disk hit never imports redis.
"""

from __future__ import annotations

from pathlib import Path

from predcache.errors import BadBackendError
from predcache.store.base import Store, StoreStats

__all__ = ["Store", "StoreStats", "open_store", "redact_url"]


def redact_url(spec: str) -> str:
    """The spec with any password replaced by ``***``, safe for logs, errors and params.json."""
    if "://" not in spec or "@" not in spec:
        return spec
    scheme, rest = spec.split("://", 1)
    creds, _, host = rest.rpartition("@")
    if not creds:
        return spec
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}"


def open_store(
    spec: str,
    *,
    cache_dir: str | Path | None = None,
    namespace: str = "",
    size_limit: int | None = None,
) -> Store:
    """Open the backend named by ``spec``; raises :class:`BadBackendError` for an unknown spec."""
    from predcache import config

    if spec == "memory":
        from predcache.store.memory import MemoryStore

        return MemoryStore(namespace=namespace)
    if spec == "disk" or spec.startswith("disk://"):
        from predcache.store.disk import DEFAULT_SIZE_LIMIT, DiskStore

        path: str | Path | None = cache_dir
        if spec.startswith("disk://"):
            path = spec[len("disk://") :]
            if not path:
                raise BadBackendError(
                    f"bad backend {spec!r}: disk:// needs a path, e.g. disk:///tmp/c"
                )
        return DiskStore(
            config.cache_dir(path),
            namespace=namespace,
            size_limit=size_limit or DEFAULT_SIZE_LIMIT,
        )
    from predcache.store.redis_url import SCHEMES  # URL syntax only: imports no redis

    if spec.split("://", 1)[0] in SCHEMES:
        import importlib

        try:  # imported only when selected: a disk hit never imports redis
            redis_backend = importlib.import_module("predcache.store.redis")
        except ModuleNotFoundError as exc:
            raise BadBackendError(f"the redis backend is not available: {exc}") from exc
        store: Store = redis_backend.open_redis_store(spec, namespace=namespace)
        return store
    shown = redact_url(spec) if len(spec) <= 200 else spec[:200] + "..."
    raise BadBackendError(
        f"unknown backend {shown!r}: use memory, disk, disk:///path, redis://host:port/db, "
        "redis+cluster://host:port[,host:port] or redis+sentinel://host:port[,host:port]/service"
    )
