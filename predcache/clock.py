"""Injectable clocks (as cachetools' ``TTLCache(timer=...)``).

The predictor asks a clock for ``now`` (epoch seconds, float). Production uses the wall clock;
tests tick a :class:`ManualClock` instead of sleeping out a TTL, and the bench runs whole
experiments on simulated time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now() -> epoch seconds``."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock (``time.time``)."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to: for tests and simulated-time experiments."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def set(self, t: float) -> None:
        self._now = float(t)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._now += seconds
