"""Percentiles in bounded memory: exact for small samples, a log-bucketed histogram beyond.

A bench row of tens of millions of requests cannot keep one float per request to sort. Up to
:data:`EXACT_LIMIT` values a :class:`Quantiles` keeps them all and answers exactly as
``numpy.percentile`` (linear interpolation between the two closest ranks), so small runs and the
pinned tests see exact figures. Past that it moves everything into a :class:`LogHistogram`:
bucket ``i`` holds the values in ``(g**(i-1), g**i]`` with ``g = (1 + e) / (1 - e)`` and
answers with ``2 g**i / (g + 1)``, which is within a relative error ``e`` (:data:`RELATIVE_ERROR`,
0.1%) of every value in the bucket. A percentile interpolates between the answers for the two
closest ranks, as numpy does, so it too is within ``e`` of the exact percentile, and it is clamped
to the exact minimum and maximum, which also answer for the lowest and highest rank (an age
percentile never reads above the largest age served).
Zeros (a miss's age, a no-cache row's lookup) have a bucket of their own and are exact.
"""

from __future__ import annotations

import math

import numpy as np

#: Relative error of a percentile once the histogram is in use.
RELATIVE_ERROR = 0.001
#: Values kept exactly per row before switching to the histogram.
EXACT_LIMIT = 65_536
_GAMMA = (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(_GAMMA)
#: bucket indices cover 1e-9 .. 1e12 (ms or s); values outside land in the end buckets
_MIN_INDEX = math.floor(math.log(1e-9) / _LOG_GAMMA)
_MAX_INDEX = math.ceil(math.log(1e12) / _LOG_GAMMA)
_BUCKETS = _MAX_INDEX - _MIN_INDEX + 1


class LogHistogram:
    """Counts of non-negative values in logarithmic buckets (error :data:`RELATIVE_ERROR`)."""

    def __init__(self) -> None:
        self.counts = np.zeros(_BUCKETS, dtype=np.int64)
        self.zeros = 0

    def add(self, values: np.ndarray) -> None:
        positive = values[values > 0]
        self.zeros += len(values) - len(positive)
        if len(positive):
            idx = np.ceil(np.log(positive) / _LOG_GAMMA).astype(np.int64) - _MIN_INDEX
            np.clip(idx, 0, _BUCKETS - 1, out=idx)
            self.counts += np.bincount(idx, minlength=_BUCKETS)

    @property
    def total(self) -> int:
        return self.zeros + int(self.counts.sum())

    def at_ranks(self, ranks: np.ndarray) -> np.ndarray:
        """The bucket answer for each 0-based rank of the sorted values."""
        cumulative = self.zeros + np.cumsum(self.counts)
        bucket = np.searchsorted(cumulative, ranks, side="right")
        value = 2.0 * np.exp((bucket + _MIN_INDEX) * _LOG_GAMMA) / (_GAMMA + 1.0)
        out: np.ndarray = np.where(ranks < self.zeros, 0.0, value)
        return out


class Quantiles:
    """Streamed percentiles of one quantity (see the module docstring for the error bound)."""

    def __init__(self, exact_limit: int = EXACT_LIMIT) -> None:
        self.exact_limit = exact_limit
        self._exact: list[np.ndarray] | None = []
        self._kept = 0
        self._hist: LogHistogram | None = None
        self.n = 0
        self.low = math.inf
        self.high = -math.inf

    def add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        self.n += len(values)
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))
        if self._exact is not None:
            self._exact.append(np.array(values, dtype=np.float64))
            self._kept += len(values)
            if self._kept <= self.exact_limit:
                return
            self._hist = LogHistogram()
            for part in self._exact:
                self._hist.add(part)
            self._exact = None
            return
        assert self._hist is not None
        self._hist.add(values)

    @property
    def exact(self) -> bool:
        """True while every value is kept (percentiles are exact)."""
        return self._exact is not None

    def percentile(self, q: float) -> float:
        """Percentile ``q`` (0-100) by linear interpolation between the closest ranks, as
        ``numpy.percentile``; NaN when there are no values."""
        if not self.n:
            return math.nan
        if self._exact is not None:
            return float(np.percentile(np.concatenate(self._exact), q))
        assert self._hist is not None
        rank = q / 100.0 * (self.n - 1)
        lo = math.floor(rank)
        hi = min(lo + 1, self.n - 1)
        answers = self._hist.at_ranks(np.array([lo, hi]))
        # the smallest and the largest value are known exactly
        exact = {0: self.low, self.n - 1: self.high}
        a, b = exact.get(lo, float(answers[0])), exact.get(hi, float(answers[1]))
        value = a + (rank - lo) * (b - a)
        return min(max(value, self.low), self.high)
