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

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predcache import config
from predcache.durations import parse_horizon
from predcache.errors import (
    BadDataError,
    BadDurationError,
    BadHorizonError,
    BadInputError,
    BadPairError,
)
from predcache.pairs import parse_pair
from predcache.timestamps import parse_timestamp

#: Where synthetic traffic starts by default: a fixed instant, so runs on any day compare.
DEFAULT_START = config.DEFAULT_MARKET_TIME
DEFAULT_REQUESTS = 20_000
DEFAULT_RATE = 5.0
DEFAULT_ZIPF = 1.0
#: Bounds that keep a typo from asking for hours of work or a silly distribution.
MAX_REQUESTS = 5_000_000
MAX_RATE = 1_000_000.0
MAX_ZIPF = 10.0
TRACE_COLUMNS = ("timestamp", "pair", "horizon")

Key = tuple[str, int]


@dataclass(frozen=True)
class Workload:
    """The requests of one bench run, in arrival order.

    ``times[i]`` is request ``i``'s arrival (epoch seconds of simulated time) and
    ``keys[key_index[i]]`` its (pair, horizon_s). ``rate`` is the configured rate for synthetic
    traffic and the observed mean rate for a trace; ``zipf`` and ``seed`` are ``None`` for a trace.
    """

    source: str  # "synthetic" | "trace"
    times: np.ndarray
    key_index: np.ndarray
    keys: list[Key]
    rate: float
    zipf: float | None
    seed: int | None
    trace: str | None = None

    @property
    def requests(self) -> int:
        return len(self.times)

    @property
    def pairs(self) -> list[str]:
        """The distinct pairs, in key order."""
        return list(dict.fromkeys(pair for pair, _ in self.keys))

    def key_counts(self) -> np.ndarray:
        """How many requests each key received."""
        return np.bincount(self.key_index, minlength=len(self.keys))

    def span_s(self) -> float:
        """Simulated time from the first arrival to the last."""
        return float(self.times[-1] - self.times[0]) if self.requests else 0.0


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
    rng = np.random.Generator(np.random.PCG64(seed))
    times = start + np.cumsum(rng.exponential(1.0 / rate, requests))
    key_index = rng.choice(len(keys), size=requests, p=zipf_probabilities(len(keys), zipf))
    return Workload("synthetic", times, key_index.astype(np.int64), list(keys), rate, zipf, seed)


def load_trace(path: str | Path) -> Workload:
    """Read a trace CSV with columns timestamp, pair, horizon (one request per row; other
    columns are ignored, so a ``requests.csv`` of a single-TTL run replays as a trace).

    Rows are replayed in time order (a stable sort, so ties keep file order); keys are numbered
    in order of first appearance. Any bad row is one :class:`BadDataError` naming file and line.
    """
    name = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise BadDataError(f"{name}: cannot read the trace ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise BadDataError(f"{name}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        times, key_index, keys = _read_trace_rows(reader)
    except (ValueError, BadPairError, BadDurationError, BadHorizonError) as exc:
        raise BadDataError(f"{name} line {reader.line_num}: {exc}") from None
    except csv.Error as exc:
        raise BadDataError(f"{name} line {reader.line_num}: malformed CSV ({exc})") from None
    order = np.argsort(times, kind="stable")
    times_a, index_a = times[order], key_index[order]
    span = float(times_a[-1] - times_a[0])
    rate = len(times_a) / span if span > 0 else float("inf")
    return Workload("trace", times_a, index_a, keys, rate, None, None, trace=name)


def _read_trace_rows(reader: Iterator[list[str]]) -> tuple[np.ndarray, np.ndarray, list[Key]]:
    header = next(reader, None)
    if header is None:
        raise ValueError("the file is empty; expected a header timestamp,pair,horizon")
    fields = [h.strip().lower() for h in header]
    missing = [c for c in TRACE_COLUMNS if c not in fields]
    if missing:
        raise ValueError(f"missing column {', '.join(missing)}; need timestamp,pair,horizon")
    i_t, i_p, i_h = (fields.index(c) for c in TRACE_COLUMNS)
    width = max(i_t, i_p, i_h) + 1
    keys: dict[Key, int] = {}
    pairs: dict[str, str] = {}  # raw text -> parsed, so a long trace parses each value once
    horizons: dict[str, int] = {}
    times: list[float] = []
    index: list[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < width:
            raise ValueError(f"expected at least {width} fields, got {len(row)}")
        raw_p, raw_h = row[i_p], row[i_h]
        pair = pairs.get(raw_p) or pairs.setdefault(raw_p, parse_pair(raw_p))
        horizon = horizons.get(raw_h) or horizons.setdefault(raw_h, parse_horizon(raw_h))
        times.append(parse_timestamp(row[i_t]))
        index.append(keys.setdefault((pair, horizon), len(keys)))
    if not times:
        raise ValueError("no requests: the trace has a header but no rows")
    return np.array(times, dtype=np.float64), np.array(index, dtype=np.int64), list(keys)
