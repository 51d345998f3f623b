"""Filling a key once: the single-flight machinery under the predictor's misses.

:class:`~predcache.predictor.Predictor` decides *what* a request is served (hit, stale, miss,
collapsed, bypass) and counts it; this module makes sure that, when a key must be computed,
one computation fills it, however many threads and processes miss it together:

- **in this process**, a per-key lock (:class:`KeyLocks`): the first thread computes, the
  others wait on its lock and then re-read the store (the predictor serves them ``collapsed``);
- **across processes**, the store's lease lock on the key: the holder renews its short lease
  while it computes (:mod:`predcache.leases`), so a crashed holder blocks its key only a few
  seconds; the others poll the store for its entry and take the lock over if it dies.

Writes go through :meth:`Filler.put`, which keeps an entry for the predictor's retain time and
turns a failed write into :class:`Unstored` (the computed entry is still served).

Apart from the predictor so the policy reads in one sitting; none of this is on the hit path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from predcache.entry import Entry
from predcache.errors import StoreError
from predcache.keys import lock_key
from predcache.leases import DEFAULT_LEASE_S, LeaseKeeper, wait_for_holder
from predcache.served import Served
from predcache.store.base import Store

#: how long a cross-process single-flight lock is held without renewal (a crashed holder's
#: lease ends this long after its last renewal; a live holder renews while it computes)
DEFAULT_LOCK_LEASE_S = DEFAULT_LEASE_S


class KeyLocks:
    """One lock per key, created on demand (in-process single-flight)."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        lock = self.locks.get(key)
        if lock is None:
            with self.guard:
                lock = self.locks.setdefault(key, threading.Lock())
        return lock


class Unstored(StoreError):
    """The store failed after the model answered: the computed entry is still served."""

    def __init__(self, entry: Entry) -> None:
        super().__init__("the computed entry could not be stored")
        self.entry = entry


class Filler:
    """Computes and stores one predictor's keys, one computation per key at a time."""

    def __init__(
        self,
        store: Store | None,
        *,
        retain_s: float,
        lock_lease_s: float = DEFAULT_LOCK_LEASE_S,
        max_wait_s: float = 30.0,
        cross_process_lock: bool = True,
    ) -> None:
        self.store = store
        #: how long the backend keeps an entry (the predictor's TTL, grace and a margin)
        self.retain_s = retain_s
        self.lock_lease_s = lock_lease_s
        #: the longest a request waits for another process's computation of its key (a holder
        #: that renews its lease but never finishes) before it computes the key itself
        self.max_wait_s = max_wait_s
        #: take the store's lease lock on a miss (single-flight across processes). Only a caller
        #: that is the store's one user may turn it off: the simulated bench engine replays
        #: requests one at a time in one process, where the lock add/release are two extra
        #: store writes per miss that can never find a competitor.
        self.cross_process_lock = cross_process_lock
        self.locks = KeyLocks()
        self.leases = LeaseKeeper(store, lock_lease_s) if store is not None else None

    def put(self, key: str, entry: Entry) -> Entry:
        """Store ``entry`` for the retain time; a failed write raises :class:`Unstored`."""
        assert self.store is not None
        try:
            self.store.set(key, entry, self.retain_s)
        except StoreError as exc:
            raise Unstored(entry) from exc
        return entry

    def once(
        self, key: str, compute: Callable[[], Entry], reread: Callable[[], Served | None]
    ) -> Entry | Served:
        """A missed key: computed and stored by this call, or another's answer from ``reread``.

        ``reread`` is the predictor's read of the key after waiting (for this process's lock
        holder, or for another process's): the entry that computation stored, served as it sees
        fit, or ``None`` to compute here after all.
        """
        with self.locks.get(key):
            # Another thread may have filled the key while this one waited for the lock.
            served = reread()
            if served is not None:
                return served
            return self.fill(key, compute, reread)

    def fill(
        self, key: str, compute: Callable[[], Entry], wait: Callable[[], Served | None] | None
    ) -> Entry | Served:
        """Compute and store ``key`` under the store's lease lock (renewed while computing).

        When another process holds the lock, a plain miss waits for its entry through ``wait``
        (and takes the lock over if the holder dies); a refresh (``wait=None``) computes anyway:
        it must not serve an entry that started before it arrived.
        """
        assert self.store is not None and self.leases is not None
        token: str | None = None
        if self.cross_process_lock:
            token = self.store.acquire_lock(lock_key(key), self.lock_lease_s)
            if token is None and wait is not None:
                waited = wait_for_holder(
                    self.store,
                    lock_key(key),
                    wait,
                    lease_s=self.lock_lease_s,
                    max_wait_s=self.max_wait_s,
                )
                if isinstance(waited, Served):
                    waited.detail = "coalesced"  # waited for another process's computation
                    return waited
                token = waited
        if token is None:
            return self.put(key, compute())
        try:
            with self.leases.holding(lock_key(key), token):
                entry = compute()
            return self.put(key, entry)
        finally:
            self.store.release_lock(lock_key(key), token)

    def refill(self, key: str, compute: Callable[[], Entry]) -> Entry:
        """A recomputation for ``refresh`` (never served from the store or another process)."""
        filled = self.fill(key, compute, None)
        assert not isinstance(filled, Served)
        return filled

    def refresh_if_idle(
        self, key: str, compute: Callable[[], Entry], superseded: Callable[[Entry | None], bool]
    ) -> bool:
        """Recompute and store ``key`` unless that work is under way or done.

        Gives up when this process or another holds the key's lock, or when ``superseded``
        says the stored entry is already newer than the caller's. True when it computed and
        stored. A failed store write raises :class:`StoreError` (not :class:`Unstored`).
        """
        assert self.store is not None
        local = self.locks.get(key)
        if not local.acquire(blocking=False):
            return False
        try:
            token = None
            if self.cross_process_lock:
                token = self.store.acquire_lock(lock_key(key), self.lock_lease_s)
                if token is None:
                    return False
            try:
                if superseded(self.store.get(key)):
                    return False
                if token is None:
                    entry = compute()
                else:
                    assert self.leases is not None
                    with self.leases.holding(lock_key(key), token):
                        entry = compute()
                self.store.set(key, entry, self.retain_s)
            finally:
                if token is not None:
                    self.store.release_lock(lock_key(key), token)
        finally:
            local.release()
        return True
