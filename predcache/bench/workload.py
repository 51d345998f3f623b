"""Bench workloads: synthetic Poisson + Zipf traffic, or a replayed trace CSV.

A workload is the list of requests a bench replays, fixed before any configuration runs, so
every TTL of a sweep sees exactly the same traffic and the rows of ``summary.csv`` differ only by
the cache setting. Requests are kept as two arrays (arrival time, index into ``keys``) because a
sweep replays tens of thousands of them several times and Python objects per request would
dominate the engine's time.

Synthetic traffic follows the product brief's TTL model: arrivals are Poisson at ``rate`` per
second of simulated time; each request picks a key independently with Zipf popularity
``p_i ~ 1 / i**s`` over the keys in pairs-major order (rank 1 is the first pair with the first
horizon), so the measured hit ratio can be checked against the formula in :mod:`ttl_model`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from predcache import config
from predcache.errors import (
    BadInputError,
)
from predcache.timestamps import parse_timestamp

#: Where synthetic traffic starts by default: a fixed instant, so runs on any day compare.
DEFAULT_START = config.DEFAULT_MARKET_TIME
DEFAULT_REQUESTS = 20_000
DEFAULT_RATE = 5.0
DEFAULT_ZIPF = 1.0
#: Bounds that keep a typo from asking for hours of work or a silly distribution.
MAX_REQUESTS = 1_000_000_000
MAX_RATE = 1_000_000.0
MAX_ZIPF = 10.0
TRACE_COLUMNS = ("timestamp", "pair", "horizon")

Key = tuple[str, int]


#: Requests per chunk: synthetic arrivals are drawn, and every replay walks, this many at a time.
CHUNK = 65_536


@dataclass(frozen=True)
class _Plan:
    """How to draw a synthetic workload again, chunk by chunk, bit for bit: the arrival gaps come
    first from the seeded generator (so the keys' draws start where they end), then the keys."""

    seed: int
    start: float
    rate: float
    probs: np.ndarray
    key_state: dict[str, Any]


class Workload:
    """The requests of one bench run, in arrival order.

    Request ``i`` arrives at ``times[i]`` (epoch seconds of simulated time) for
    ``keys[key_index[i]]`` (pair, horizon_s). A trace holds both arrays (12 bytes a request); a
    synthetic workload holds only its seed and draws them again in chunks of :data:`CHUNK`
    whenever it is replayed (:meth:`chunks`), so memory does not grow with ``--requests``.
    ``rate`` is the configured rate for synthetic traffic and the observed mean rate for a
    trace; ``zipf`` and ``seed`` are ``None`` for a trace.
    """

    def __init__(
        self,
        source: str,
        times: np.ndarray | None,
        key_index: np.ndarray | None,
        keys: list[Key],
        rate: float,
        zipf: float | None,
        seed: int | None,
        trace: str | None = None,
        *,
        plan: _Plan | None = None,
        requests: int | None = None,
        first_s: float | None = None,
        last_s: float | None = None,
    ) -> None:
        self.source, self.keys, self.rate, self.zipf, self.seed = source, keys, rate, zipf, seed
        self.trace = trace
        self._times, self._key_index, self._plan = times, key_index, plan
        if times is not None:
            n = len(times)
            first_s = float(times[0]) if n else 0.0
            last_s = float(times[-1]) if n else 0.0
        else:
            n = requests or 0
        self.requests = n
        self.first_s = first_s or 0.0
        self.last_s = last_s or 0.0

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(times, key_index) of consecutive requests, ``size`` at a time."""
        if self._times is not None and self._key_index is not None:
            for lo in range(0, self.requests, size):
                yield self._times[lo : lo + size], self._key_index[lo : lo + size]
            return
        plan = self._plan
        assert plan is not None
        gaps = np.random.Generator(np.random.PCG64(plan.seed))
        bits = np.random.PCG64(plan.seed)
        bits.state = plan.key_state  # type: ignore[assignment]
        keys = np.random.Generator(bits)
        carry = np.zeros(1)
        for lo in range(0, self.requests, size):
            m = min(size, self.requests - lo)
            # cumsum from the running sum is the same sequence of additions as one cumsum
            sums = np.cumsum(np.concatenate((carry, gaps.exponential(1.0 / plan.rate, m))))
            carry = sums[-1:]
            idx = keys.choice(len(plan.probs), size=m, p=plan.probs).astype(np.int64)
            yield plan.start + sums[1:], idx

    @property
    def times(self) -> np.ndarray:
        """Every arrival time (a synthetic workload draws them all: small runs and tests)."""
        if self._times is not None:
            return self._times
        return np.concatenate([t for t, _ in self.chunks()])

    @property
    def key_index(self) -> np.ndarray:
        if self._key_index is not None:
            return self._key_index
        return np.concatenate([k for _, k in self.chunks()])

    @property
    def pairs(self) -> list[str]:
        """The distinct pairs, in key order."""
        return list(dict.fromkeys(pair for pair, _ in self.keys))

    def key_counts(self) -> np.ndarray:
        """How many requests each key received."""
        counts = np.zeros(len(self.keys), dtype=np.int64)
        for _, idx in self.chunks():
            counts += np.bincount(idx, minlength=len(self.keys))
        return counts

    def minutes(self) -> np.ndarray:
        """The distinct market minutes requests are made in, sorted."""
        parts = [np.unique(np.floor(t / 60.0).astype(np.int64)) for t, _ in self.chunks()]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def span_s(self) -> float:
        """Simulated time from the first arrival to the last."""
        return self.last_s - self.first_s if self.requests else 0.0


def zipf_probabilities(n: int, s: float) -> np.ndarray:
    """``p_i = i**-s / sum_j j**-s`` for ranks ``i = 1..n`` (``s = 0`` is uniform)."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    weights = ranks**-s
    probs: np.ndarray = weights / weights.sum()
    return probs


def parse_start(text: str) -> float:
    """Epoch seconds from ``2025-06-02T00:00:00Z``, ``2025-06-02`` or ``1748822400``."""
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise BadInputError(f"bad start: {exc}") from None


def synthetic(
    keys: list[Key],
    *,
    requests: int = DEFAULT_REQUESTS,
    rate: float = DEFAULT_RATE,
    zipf: float = DEFAULT_ZIPF,
    seed: int = 0,
    start: float,
) -> Workload:
    """Poisson arrivals at ``rate``/s from ``start``, keys drawn i.i.d. with Zipf popularity."""
    if not keys:
        raise BadInputError("a workload needs at least one pair and one horizon")
    if not 1 <= requests <= MAX_REQUESTS:
        raise BadInputError(f"bad requests {requests}: must be between 1 and {MAX_REQUESTS:,}")
    if not (math.isfinite(rate) and 0 < rate <= MAX_RATE):
        raise BadInputError(f"bad rate {rate}: must be > 0 and at most {MAX_RATE:g} per second")
    if not (math.isfinite(zipf) and 0 <= zipf <= MAX_ZIPF):
        raise BadInputError(f"bad zipf exponent {zipf}: must be between 0 and {MAX_ZIPF:g}")
    if seed < 0:
        raise BadInputError(f"bad seed {seed}: must be >= 0")
    probs = zipf_probabilities(len(keys), zipf)
    rng = np.random.Generator(np.random.PCG64(seed))
    # one pass over the gaps finds the last arrival and where the keys' draws start
    left = requests
    sums = np.zeros(1)
    while left:
        m = min(CHUNK, left)
        sums = np.cumsum(np.concatenate((sums[-1:], rng.exponential(1.0 / rate, m))))
        left -= m
    total = float(sums[-1])
    first = start + float(np.random.Generator(np.random.PCG64(seed)).exponential(1.0 / rate))
    plan = _Plan(seed, start, rate, probs, dict(rng.bit_generator.state))
    return Workload(
        "synthetic", None, None, list(keys), rate, zipf, seed,
        plan=plan, requests=requests, first_s=first, last_s=start + total,
    )  # fmt: skip


def load_trace(path: str | Path) -> Workload:
    """Read a trace (CSV, or Parquet when the name ends in ``.parquet``) with columns
    timestamp, pair, horizon (one request per row; other columns are ignored, so a
    ``requests.csv`` of a single-TTL run replays as a trace).

    Rows are replayed in time order (a stable sort, so ties keep file order); keys are numbered
    in order of first appearance. Any bad row is one :class:`BadDataError` naming file and line
    (CSV) or row (Parquet). See :mod:`predcache.bench.trace`.
    """
    from predcache.bench.trace import read_trace

    name = str(path)
    times, key_index, keys = read_trace(name)
    if not np.all(times[1:] >= times[:-1]):  # an API log is usually in order already
        order = np.argsort(times, kind="stable")
        times, key_index = times[order], key_index[order]
        del order
    span = float(times[-1] - times[0])
    rate = len(times) / span if span > 0 else float("inf")
    return Workload("trace", times, key_index, keys, rate, None, None, trace=name)
