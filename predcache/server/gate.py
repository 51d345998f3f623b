"""Per-key admission to worker threads: one hot key cannot take the whole thread pool.

A request that may compute runs in a worker thread, and a thread that waits on its key's
single-flight lock is parked until the computation ends. 300 requests for one slow key would
park 300 threads, fill the pool, and make hits and misses on other keys wait. The gate lets at
most :data:`THREADS_PER_KEY` requests of one key into threads at a time; the rest wait on the
event loop (a coroutine costs no thread) and, once admitted, find the entry the first ones
stored (a hit) or share their computation (:mod:`predcache.flights`).

Under ``--stampede none`` there is no bound (``per_key=None``): that strategy is the
unprotected cache on purpose (every request that misses calls the model, as the seed's cache
does), the baseline the bench compares the others with; a bound would coalesce what it is meant
to show uncoalesced, and the simulated bench's ``none`` would no longer describe the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable

#: worker threads one key may hold at once
THREADS_PER_KEY = 4


class KeyGate:
    """A semaphore per key, made on demand and dropped when idle (event loop only)."""

    def __init__(self, per_key: int | None = THREADS_PER_KEY) -> None:
        self.per_key = per_key
        self._gates: dict[Hashable, tuple[asyncio.Semaphore | None, list[int]]] = {}

    def busy(self, key: Hashable) -> bool:
        """True while requests of ``key`` are in threads or queued for them."""
        return key in self._gates

    @contextlib.asynccontextmanager
    async def admit(self, key: Hashable) -> AsyncIterator[None]:
        gate = self._gates.get(key)
        if gate is None:
            sem = None if self.per_key is None else asyncio.Semaphore(self.per_key)
            gate = self._gates[key] = (sem, [0])
        sem, users = gate
        users[0] += 1
        try:
            if sem is None:
                yield
            else:
                async with sem:
                    yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._gates[key]
