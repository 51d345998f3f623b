"""Short cross-process leases, renewed while their holder computes.

A miss takes the store's lease lock on its key so that other processes wait instead of calling
the model too. The lease must outlive a slow model call, yet a holder that crashes (kill -9,
OOM) must not block its key for long. So the lease is short (:data:`DEFAULT_LEASE_S`) and a
holder renews it every third of a lease from one daemon thread per process: a live holder
keeps its key however slow the model is; a dead one stops renewing, and the lease runs out
within one lease time, after which a waiter takes the lock over.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from predcache.errors import StoreError
from predcache.store.base import Store

#: seconds a lock is held without renewal: how long a crashed holder can block its key
DEFAULT_LEASE_S = 3.0
#: how often a waiter re-reads the store while another process computes
LOCK_POLL_S = 0.01
T = TypeVar("T")


class LeaseKeeper:
    """Renews the leases this process holds until their holders release them."""

    def __init__(self, store: Store, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.store = store
        self.lease_s = lease_s
        self.every_s = lease_s / 3
        self._held: dict[str, str] = {}  # lock name -> token
        self._guard = threading.Lock()
        self._wake = threading.Condition(self._guard)
        self._thread: threading.Thread | None = None
        #: renewals that found the lock taken by someone else (the lease had run out)
        self.lost = 0
        self.renewed = 0

    @contextlib.contextmanager
    def holding(self, name: str, token: str) -> Iterator[None]:
        """Renew ``name``'s lease (held with ``token``) for as long as the block runs."""
        with self._guard:
            self._held[name] = token
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="predcache-leases", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._guard:
                if self._held.get(name) == token:
                    del self._held[name]

    def _run(self) -> None:
        while True:
            with self._guard:
                self._wake.wait(self.every_s)
                held = list(self._held.items())
            for name, token in held:
                self.renew(name, token)

    def renew(self, name: str, token: str) -> bool:
        """One renewal; a backend failure is not fatal (the next try may succeed)."""
        try:
            ok = self.store.renew_lock(name, token, self.lease_s)
        except StoreError:
            return False
        if ok:
            self.renewed += 1
        else:
            self.lost += 1
        return ok


def wait_for_holder(
    store: Store,
    name: str,
    read: Callable[[], T | None],
    *,
    lease_s: float,
    max_wait_s: float,
) -> T | str | None:
    """Poll ``read()`` while another process holds lock ``name`` (real time: processes).

    Its result once the holder stored it; or the lock itself (a token), taken over when the
    holder released it without a value or stopped renewing its lease (crashed): the caller then
    computes *holding* it, so other waiters keep waiting for that one computation; or ``None``
    after ``max_wait_s`` (a holder that renews but never finishes), to compute unlocked. The
    re-read after a take-over matters: the holder may have stored and released between a poll
    and the lock attempt.
    """
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        time.sleep(LOCK_POLL_S)
        got = read()
        if got is not None:
            return got
        token = store.acquire_lock(name, lease_s)
        if token is None:
            continue
        try:
            got = read()
        except BaseException:
            store.release_lock(name, token)
            raise
        if got is None:
            return token
        store.release_lock(name, token)
        return got
    return None


def skew_warning(writer: str, ahead_s: float, tolerance_s: float) -> str:
    """The one warning for a writer whose entries are stamped ahead of this host's clock."""
    return (
        f"warning: a cache entry written by {writer} is stamped {ahead_s:.1f}s ahead of "
        f"this host's clock (tolerance {tolerance_s:g}s); the clocks disagree, "
        "so such entries are treated as misses and replaced"
    )
