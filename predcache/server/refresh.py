"""Refresh-ahead: recompute a hot key in the background before it expires (XFetch).

Without it, every expiry of a hot key puts one model call in front of the clients that ask
next. XFetch (Vattani, Chierichetti & Lowenstein, "Optimal Probabilistic Cache Stampede
Prevention", VLDB 2015) lets each hit roll a die: recompute early when

    now - delta * beta * ln(U) >= expiry,     U ~ Uniform(0, 1]

where ``delta`` is how long the value took to compute (the entry's ``compute_ms``) and
``expiry`` is ``created_at + ttl``. The chance grows as expiry nears and is higher for slow
computations, and with many requests one of them fires early with high probability.

Unlike the paper, the winner does not recompute in its own request: the hit is served at once
and the recompute runs in a worker thread, through the predictor's single-flight
(:meth:`Predictor.refresh_if_idle`), so at most one refresh per key runs in this process and a
refresh never duplicates another process's computation.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from predcache import stampede
from predcache.entry import Entry
from predcache.errors import PredcacheError
from predcache.predictor import Predictor


def xfetch_due(entry: Entry, now: float, ttl_s: float, beta: float, u: float) -> bool:
    """XFetch's test for one hit; ``u`` in (0, 1] is the die (injected for tests). ``delta``
    is the entry's ``compute_ms`` (the model call, its delay included)."""
    delta = float(entry["compute_ms"]) / 1000.0
    return stampede.xfetch_due(float(entry["created_at"]), delta, now, ttl_s, beta, u)


class RefreshAhead:
    """Decides on each hit whether to refresh, and runs at most one refresh per key."""

    def __init__(
        self,
        predictor: Predictor,
        run_in_thread: Callable[..., Awaitable[Any]],
        *,
        beta: float = 1.0,
        on_error: Callable[[], None] = lambda: None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.predictor = predictor
        self._run = run_in_thread
        self.beta = beta
        self._on_error = on_error
        self._rand = rand
        #: keys with a refresh in flight in this process (touched only on the event loop)
        self.inflight: set[tuple[str, int]] = set()
        self.started = 0

    def due(self, entry: Entry) -> bool:
        """Whether this hit wins XFetch's lottery."""
        u = 1.0 - self._rand()  # random() is in [0, 1); the log needs (0, 1]
        now = self.predictor.clock.now()
        return xfetch_due(entry, now, self.predictor.ttl_s, self.beta, u)

    def maybe_start(self, pair: str, horizon_s: int, entry: Entry) -> Awaitable[None] | None:
        """On a hit: an awaitable that refreshes the key when it is due, else ``None``.

        The caller schedules it as a background task; the key counts as in flight at once, so
        the next hits do not roll again until it is done.
        """
        key = (pair, horizon_s)
        if key in self.inflight or not self.due(entry):
            return None
        return self.start(pair, horizon_s, entry)

    def start(self, pair: str, horizon_s: int, entry: Entry) -> Awaitable[None] | None:
        """A refresh of the key now (stale-while-revalidate), unless one is in flight."""
        key = (pair, horizon_s)
        if key in self.inflight:
            return None
        self.inflight.add(key)
        self.started += 1
        return self._refresh(key, float(entry["created_at"]))

    async def _refresh(self, key: tuple[str, int], seen_created_at: float) -> None:
        try:
            await self._run(self.predictor.refresh_if_idle, key[0], key[1], seen_created_at)
        except PredcacheError:
            self._on_error()  # the entry stays until it expires; the next miss computes it
        finally:
            self.inflight.discard(key)
