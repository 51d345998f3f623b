"""What a predictor answers: the outcome names, one served prediction, and the counters.

Apart from :mod:`predcache.predictor` so the policy module stays readable; it re-exports
these names, which is where callers import them from.
"""

from __future__ import annotations

from typing import Final, Literal

from predcache.entry import Entry

#: how a request was answered (product brief, "Outcomes of a request")
Outcome = Literal["hit", "collapsed", "stale", "miss", "bypass"]
HIT: Final = "hit"
COLLAPSED: Final = "collapsed"
STALE: Final = "stale"
MISS: Final = "miss"
BYPASS: Final = "bypass"
OUTCOMES: Final[tuple[Outcome, ...]] = (HIT, COLLAPSED, STALE, MISS, BYPASS)


class Served:
    """A prediction and how it was served.

    A plain slotted class, not a dataclass: this module is on the CLI's cache-hit path, where
    importing ``dataclasses`` and building one is a measurable part of the process (check c of
    ``benchmarks/perf.py``).
    """

    __slots__ = ("age_s", "cache", "detail", "entry", "key", "latency_ms", "stored")

    def __init__(
        self,
        entry: Entry,
        cache: Outcome,
        age_s: float,
        latency_ms: float,
        key: str,
        stored: bool = False,
        detail: str | None = None,
    ) -> None:
        self.entry = entry
        self.cache = cache
        self.age_s = age_s
        self.latency_ms = latency_ms
        self.key = key
        self.stored = stored
        self.detail = detail

    def __repr__(self) -> str:
        return f"Served({self.cache}, age {self.age_s:.3f}s, {self.key})"


class PredictorStats:
    """Counters since the predictor was made."""

    __slots__ = (
        "backend_errors",
        "bypasses",
        "collapsed",
        "errors",
        "hits",
        "misses",
        "model_calls",
        "requests",
        "stale",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0
        self.collapsed = 0
        self.stale = 0
        self.misses = 0
        self.bypasses = 0
        self.model_calls = 0
        self.errors = 0
        self.backend_errors = 0
