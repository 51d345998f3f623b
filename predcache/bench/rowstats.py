"""A summary row's figures, streamed: counts, sums and percentiles of chunks of records.

Nothing per request is kept (percentiles: :class:`predcache.bench.histogram.Quantiles`); the
accuracy columns are sums of errors per market path (:meth:`Counterfactuals.sums`), so memory
does not grow with the requests replayed, and the fresh predictions' errors are summed over
the row's own answered requests (a request that ``failed`` under a simulated
``--model-fail-rate`` served nothing to age or score; its latency counts). Without failures
every row answers every request, so only the no-cache row sums the fresh errors and the
others take its sums.
"""

from __future__ import annotations

import math

import numpy as np

from predcache.bench.accuracy import Counterfactuals
from predcache.bench.histogram import Quantiles
from predcache.bench.records import HIT_CODE, MISS_CODE, OUTCOMES, Chunk


class RowStats:
    """Everything :func:`predcache.bench.summary.summarise_stats` needs of one row."""

    def __init__(self, paths: int, *, score_fresh: bool = True) -> None:
        self.n = self.answered = self.failed = self.stale_if_error = 0
        self.counts = [0] * len(OUTCOMES)
        self.latency, self.hit_latency, self.miss_latency = Quantiles(), Quantiles(), Quantiles()
        self.lookup, self.model, self.age = Quantiles(), Quantiles(), Quantiles()
        self.latency_sum = self.age_sum = self.drift_sum = 0.0
        self.age_max = -math.inf
        #: False: the fresh errors come from another row (the same requests, all answered)
        self.score_fresh = score_fresh
        self.served_sums = np.zeros(paths)
        self.fresh_sums = np.zeros(paths)

    def add(self, chunk: Chunk, view: Counterfactuals) -> None:
        lat, outcome = chunk.latency_ms, chunk.outcome
        self.n += len(chunk)
        counts = np.bincount(outcome, minlength=len(OUTCOMES))
        self.counts = [a + int(b) for a, b in zip(self.counts, counts, strict=True)]
        computed = outcome == MISS_CODE
        self.latency.add(lat)
        self.hit_latency.add(lat[outcome == HIT_CODE])
        self.miss_latency.add(lat[computed])
        self.lookup.add(chunk.lookup_ms)
        self.model.add(chunk.model_ms[computed])
        self.latency_sum += float(lat.sum())
        failed = int(np.count_nonzero(chunk.failed))
        self.failed += failed
        self.stale_if_error += int(np.count_nonzero(chunk.stale_if_error))
        self.answered += len(chunk) - failed
        price, as_of, ages = chunk.served_price, chunk.served_as_of, chunk.age_s
        if failed:
            ok = ~chunk.failed
            if not ok.any():
                return
            view, price, as_of, ages = view.select(ok), price[ok], as_of[ok], ages[ok]
        self.age.add(ages)
        self.age_sum += float(ages.sum())
        self.age_max = max(self.age_max, float(ages.max()))
        served, fresh, drift = view.sums(price, as_of, fresh=self.score_fresh)
        self.served_sums += served
        self.fresh_sums += fresh
        self.drift_sum += drift

    def count(self, outcome: str) -> int:
        return self.counts[OUTCOMES.index(outcome)]
