"""What a replay records: per chunk of requests (streamed to a row's statistics), and the
whole per-request :class:`Replay` for small runs and tests.

Outcome codes index :data:`OUTCOMES`. ``latency_ms`` is the measured store and model work plus
every simulated wait (model delay, waiting for an in-flight computation, the model queue).
``age_s`` is the served entry's age when the answer goes out.
"""

from __future__ import annotations

import array
from dataclasses import dataclass

import numpy as np

from predcache.predictor import COLLAPSED, HIT, MISS, STALE
from predcache.stampede import COALESCE, Strategy

#: Outcome codes in :attr:`Chunk.outcome` (index into this tuple).
OUTCOMES: tuple[str, ...] = (HIT, COLLAPSED, STALE, MISS)
HIT_CODE, COLLAPSED_CODE, STALE_CODE, MISS_CODE = range(4)


@dataclass(frozen=True)
class Chunk:
    """Consecutive requests ``start .. start + len - 1`` of one replay."""

    start: int
    times: np.ndarray
    key_index: np.ndarray
    outcome: np.ndarray  # int8 codes into OUTCOMES
    age_s: np.ndarray
    lookup_ms: np.ndarray
    model_ms: np.ndarray
    latency_ms: np.ndarray
    served_price: np.ndarray
    served_as_of: np.ndarray  # the served entry's market time (epoch s): how stale its data was
    #: answered with an error (a simulated model failure, no stale entry to serve)
    failed: np.ndarray
    #: its model call failed and the expired entry was served (stale-if-error)
    stale_if_error: np.ndarray

    def __len__(self) -> int:
        return len(self.outcome)


@dataclass(frozen=True)
class Counters:
    """A replay's engine counters (not per request)."""

    ttl_s: float
    stampede: Strategy
    requests: int
    model_calls: int
    backend_errors: int
    #: wall time of the replay itself, scoring and statistics left out
    wall_s: float
    #: model calls that started while another computation of the same key was in flight
    duplicate_calls: int = 0
    #: most model computations in flight (running or queued) at one moment
    max_inflight: int = 0
    #: real model computations made (the no-cache row computes each key and minute once)
    model_runs: int = 0


@dataclass(frozen=True)
class Replay:
    """Per-request records of one configuration, plus the engine's counters."""

    ttl_s: float
    outcome: np.ndarray
    age_s: np.ndarray
    lookup_ms: np.ndarray
    model_ms: np.ndarray
    latency_ms: np.ndarray
    served_price: np.ndarray
    served_as_of: np.ndarray
    model_calls: int
    backend_errors: int
    wall_s: float
    failed: np.ndarray
    stale_if_error: np.ndarray
    stampede: Strategy = COALESCE
    duplicate_calls: int = 0
    max_inflight: int = 0
    model_runs: int = 0

    @classmethod
    def of(cls, chunks: list[Chunk], c: Counters) -> Replay:
        def cat(name: str) -> np.ndarray:
            parts = [getattr(ch, name) for ch in chunks]
            return np.concatenate(parts) if parts else np.zeros(0)

        return cls(
            c.ttl_s, cat("outcome").astype(np.int8), cat("age_s"), cat("lookup_ms"),
            cat("model_ms"), cat("latency_ms"), cat("served_price"), cat("served_as_of"),
            c.model_calls, c.backend_errors, c.wall_s, cat("failed").astype(bool),
            cat("stale_if_error").astype(bool), c.stampede, c.duplicate_calls, c.max_inflight,
            c.model_runs,
        )  # fmt: skip

    @property
    def requests(self) -> int:
        return len(self.outcome)

    @property
    def hit(self) -> np.ndarray:
        """True where the request was a plain hit (fresh entry, no waiting)."""
        out: np.ndarray = self.outcome == HIT_CODE
        return out

    @property
    def answered(self) -> np.ndarray:
        """True where the request was answered with a prediction (not ``failed``)."""
        out: np.ndarray = ~self.failed
        return out

    def count(self, outcome: str) -> int:
        """How many requests had ``outcome`` (one of :data:`OUTCOMES`)."""
        return int(np.count_nonzero(self.outcome == OUTCOMES.index(outcome)))


class Buffer:
    """One chunk's records while the engine replays its requests and until its last write.

    Typed arrays (:mod:`array`): the engine's loop writes them one request at a time as fast
    as into lists, and numpy then reads them without a copy."""

    def __init__(self, start: int, times: np.ndarray, key_index: np.ndarray) -> None:
        m = len(times)
        self.start, self.times, self.key_index = start, times, key_index
        self.outcome = array.array("b", [MISS_CODE]) * m
        self.age, self.lookup, self.model_ms = _zeros(m), _zeros(m), _zeros(m)
        self.latency, self.price, self.as_of = _zeros(m), _zeros(m), _zeros(m)
        self.failed = array.array("b", bytes(m))
        self.stale_if_error = array.array("b", bytes(m))
        self.open_writes = 0

    def chunk(self) -> Chunk:
        def f(a: array.array[float]) -> np.ndarray:
            return np.frombuffer(a, dtype=np.float64)

        return Chunk(
            self.start, self.times, self.key_index, np.frombuffer(self.outcome, dtype=np.int8),
            f(self.age), f(self.lookup), f(self.model_ms), f(self.latency), f(self.price),
            f(self.as_of), np.frombuffer(self.failed, dtype=np.int8).astype(bool),
            np.frombuffer(self.stale_if_error, dtype=np.int8).astype(bool),
        )  # fmt: skip


def _zeros(m: int) -> array.array[float]:
    return array.array("d", bytes(8 * m))
