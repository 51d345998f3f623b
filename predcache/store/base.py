"""The store interface: a small key/value contract that every backend implements.

Storage is kept apart from policy (as dogpile.cache splits regions from backends): a store
only gets, sets, deletes and counts JSON entries. TTL, freshness, single-flight and hit/miss
accounting live once, in :mod:`predcache.predictor`, above every backend.

Contract (tested once for all backends in ``tests/test_store_contract.py``):

- ``get(key)`` returns the stored entry, or ``None`` for a missing key *or* a value that is not
  a valid entry (that case also bumps ``stats().corrupt``); it raises :class:`StoreError` only
  when the backend itself fails.
- ``set(key, entry, retain_s)`` stores JSON text; ``retain_s`` is how long the backend keeps the
  entry before garbage-collecting it (TTL plus a margin), not the freshness rule.
- ``delete``, ``clear`` (returns how many entries it removed), ``stats``, ``close``.
- ``acquire_lock`` / ``release_lock``: a lease lock shared by every process on the backend,
  the mechanism under the predictor's cross-process single-flight.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import NamedTuple

from predcache.entry import Entry, decode_entry


class StoreStats(NamedTuple):
    """What ``predcache cache stats`` shows."""

    backend: str
    location: str
    entries: int
    bytes: int | None = None
    oldest_created_at: float | None = None
    newest_created_at: float | None = None
    corrupt: int = 0
    #: backend-specific figures (e.g. the circuit breaker's state)
    extra: dict[str, object] | None = None


class Store(ABC):
    """A namespace of JSON entries in one backend."""

    #: short backend name, e.g. ``memory``, ``disk``, ``redis``
    name: str = "abstract"

    def __init__(self, namespace: str = "") -> None:
        self.namespace = namespace
        self._corrupt_reads = 0

    @property
    def corrupt_reads(self) -> int:
        """Reads that found something other than a valid entry (each answered as a miss)."""
        return self._corrupt_reads

    def _note_corrupt(self) -> None:
        self._corrupt_reads += 1

    def _decode(self, raw: object) -> Entry | None:
        """The one gate from stored bytes to an entry: not our JSON counts as corrupt (a miss)."""
        entry = decode_entry(raw)
        if entry is None:
            self._corrupt_reads += 1
        return entry

    @abstractmethod
    def get(self, key: str) -> Entry | None: ...

    @abstractmethod
    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> bool: ...

    @abstractmethod
    def clear(self) -> int: ...

    @abstractmethod
    def stats(self) -> StoreStats: ...

    @abstractmethod
    def entry_keys(self) -> list[str]:
        """This namespace's entry keys as the caller named them (no locks, no namespace prefix)."""

    def purge(self, match: Callable[[str], bool]) -> int:
        """Delete the entries whose key ``match`` accepts; how many went (targeted invalidation)."""
        return sum(1 for key in self.entry_keys() if match(key) and self.delete(key))

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        """Try to take a cross-process lock with a lease; a token, or ``None`` if it is held.

        The lease bounds how long a crashed holder can block others. Backends that only live in
        one process need no cross-process lock: the default always grants it.
        """
        return "local"

    def release_lock(self, name: str, token: str) -> None:  # noqa: B027 - see acquire_lock
        """Release a lock taken with :meth:`acquire_lock`, only if ``token`` still holds it."""

    def renew_lock(self, name: str, token: str, lease_s: float) -> bool:
        """Extend a held lock's lease to ``lease_s`` from now; False when ``token`` lost it.

        A holder renews while it computes, so the lease can be short (a crashed holder blocks
        its key only that long) however slow the model is.
        """
        return True

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections and handles."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProxyStore(Store):
    """A store that passes every call to ``inner``: wrappers subclass it and override only what
    they change (as dogpile.cache's ``ProxyBackend``), e.g. the circuit breaker and the bench's
    lookup timer. ``name``, ``namespace`` and the corrupt-read count are the inner store's."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.namespace)
        self.inner = inner
        self.name = inner.name

    @property
    def corrupt_reads(self) -> int:
        return self.inner.corrupt_reads

    def get(self, key: str) -> Entry | None:
        return self.inner.get(key)

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        self.inner.set(key, entry, retain_s)

    def delete(self, key: str) -> bool:
        return self.inner.delete(key)

    def clear(self) -> int:
        return self.inner.clear()

    def entry_keys(self) -> list[str]:
        return self.inner.entry_keys()

    def stats(self) -> StoreStats:
        return self.inner.stats()

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        return self.inner.acquire_lock(name, lease_s)

    def release_lock(self, name: str, token: str) -> None:
        self.inner.release_lock(name, token)

    def renew_lock(self, name: str, token: str, lease_s: float) -> bool:
        return self.inner.renew_lock(name, token, lease_s)

    def close(self) -> None:
        self.inner.close()
