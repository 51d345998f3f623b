"""The store the engine reads through: it adds up the time spent in ``get``."""

from __future__ import annotations

import time

from predcache.entry import Entry
from predcache.store import Store
from predcache.store.base import ProxyStore


class TimedStore(ProxyStore):
    """Adds up the time spent in ``get``: the measured lookup time. Everything else passes
    straight through, so the predictor sees the real backend."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        #: seconds spent in ``get`` since the engine last reset it
        self.lookup_s = 0.0

    def get(self, key: str) -> Entry | None:
        t0 = time.perf_counter()
        try:
            return self.inner.get(key)
        finally:
            self.lookup_s += time.perf_counter() - t0
