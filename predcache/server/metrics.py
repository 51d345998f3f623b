"""Prometheus metrics for ``/metrics``, right across ``--workers N`` processes.

With one process the counters are plain ints rendered at scrape time (:class:`LocalMetrics`).
With several workers each process counts into its own files under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, set up by ``predcache serve`` before any worker starts)
and ``/metrics`` sums them, so a scrape that lands on any worker sees the whole server.

Model calls are counted where they happen, by wrapping the model source the predictor calls:
that is exact for misses, bypasses, failed calls and background refreshes alike.
"""

from __future__ import annotations

import itertools
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from predcache.registry import Computed, ModelSource

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: seconds; fine at the low end where hits live, up to a slow model call
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
OUTCOMES = ("hit", "miss", "bypass", "error")
#: "backend": a request answered without the cache because the cache backend failed
ERROR_KINDS = ("client", "model", "internal", "refresh", "backend")
REQUESTS_DOC = "Prediction requests."
HITS_DOC = "Served from a fresh entry."
MISSES_DOC = "Computed and stored on a miss."
BYPASSES_DOC = "Computed without the cache."
MODEL_CALLS_DOC = "Model calls (misses, bypasses, refreshes)."
ERRORS_DOC = "Failed requests and refreshes, by kind."
LATENCY_NAME = "predcache_request_duration_seconds"
LATENCY_DOC = "Prediction request latency inside the server, by outcome."


def multiprocess_enabled() -> bool:
    """True when this process counts into shared files (``predcache serve --workers N``)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def make_metrics() -> Metrics:
    """Plain counters for one process; prometheus_client's shared files with ``--workers N``."""
    return SharedMetrics() if multiprocess_enabled() else LocalMetrics()


class Metrics(Protocol):
    """What the server counts. ``served`` and ``failed`` run on the event loop only."""

    def served(self, cache: str, seconds: float) -> None:
        """Count one answered prediction request (``cache`` in hit, miss, bypass)."""

    def failed(self, kind: str, seconds: float) -> None:
        """Count one failed prediction request (``kind`` in :data:`ERROR_KINDS`)."""

    def count_error(self, kind: str) -> None:
        """Count a failure outside a request's answer (a refresh, a backend bypass)."""

    def count_model_call(self) -> None:
        """Count one model call (from any thread)."""

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""


class LocalMetrics:
    """One process's metrics as plain ints, turned into Prometheus families only when scraped.

    Why not prometheus_client's ``Counter``/``Histogram``: each ``inc``/``observe`` takes a
    lock, and a hit bumped three of them; here a hit is three int additions and a bisect. The
    request counters are only touched on the event loop (one thread, no lock needed); model
    calls come from worker threads and take a lock. The exposition is the same names, labels
    and buckets as :class:`SharedMetrics` (a test compares them).
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        self.requests = 0
        self.outcomes = dict.fromkeys(OUTCOMES[:3], 0)
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.model_calls = 0
        #: per outcome, one count per bucket plus the +Inf bucket (not cumulative)
        self.buckets = {o: [0] * (len(LATENCY_BUCKETS) + 1) for o in OUTCOMES}
        self.sums = dict.fromkeys(OUTCOMES, 0.0)
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def served(self, cache: str, seconds: float) -> None:
        self.requests += 1
        self.outcomes[cache] += 1
        self.buckets[cache][bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[cache] += seconds

    def failed(self, kind: str, seconds: float) -> None:
        self.requests += 1
        self.count_error(kind)
        self.buckets["error"][bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums["error"] += seconds

    def count_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def count_model_call(self) -> None:
        with self._lock:
            self.model_calls += 1

    def collect(self) -> Iterator[Metric]:
        """The families, built from the counters at scrape time (prometheus_client's hook)."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        for name, doc, value in (
            ("predcache_requests", REQUESTS_DOC, self.requests),
            ("predcache_cache_hits", HITS_DOC, self.outcomes["hit"]),
            ("predcache_cache_misses", MISSES_DOC, self.outcomes["miss"]),
            ("predcache_cache_bypasses", BYPASSES_DOC, self.outcomes["bypass"]),
            ("predcache_model_calls", MODEL_CALLS_DOC, self.model_calls),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        errors = CounterMetricFamily("predcache_errors", ERRORS_DOC, labels=["kind"])
        for kind, count in self.errors.items():
            errors.add_metric([kind], count)
        yield errors
        latency = HistogramMetricFamily(LATENCY_NAME, LATENCY_DOC, labels=["cache"])
        bounds = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]  # type: ignore[no-untyped-call]
        for outcome, counts in self.buckets.items():
            cumulative = list(itertools.accumulate(counts))
            latency.add_metric(
                [outcome], list(zip(bounds, cumulative, strict=True)), self.sums[outcome]
            )
        yield latency

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class SharedMetrics:
    """prometheus_client's counters and histogram, with children bound once.

    Used with ``--workers N``: in multiprocess mode every value lives in this worker's file
    under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums the files of all workers, so a
    scrape on any worker sees the whole server.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter("predcache_requests", REQUESTS_DOC, registry=reg)
        self.hits = Counter("predcache_cache_hits", HITS_DOC, registry=reg)
        self.misses = Counter("predcache_cache_misses", MISSES_DOC, registry=reg)
        self.bypasses = Counter("predcache_cache_bypasses", BYPASSES_DOC, registry=reg)
        self.model_calls = Counter("predcache_model_calls", MODEL_CALLS_DOC, registry=reg)
        errors = Counter("predcache_errors", ERRORS_DOC, ["kind"], registry=reg)
        self.errors = {kind: errors.labels(kind=kind) for kind in ERROR_KINDS}
        latency = Histogram(
            LATENCY_NAME, LATENCY_DOC, ["cache"], buckets=LATENCY_BUCKETS, registry=reg
        )
        self.latency = {outcome: latency.labels(cache=outcome) for outcome in OUTCOMES}
        self._outcome = {"hit": self.hits, "miss": self.misses, "bypass": self.bypasses}

    def served(self, cache: str, seconds: float) -> None:
        self.requests.inc()
        self._outcome[cache].inc()
        self.latency[cache].observe(seconds)

    def failed(self, kind: str, seconds: float) -> None:
        self.requests.inc()
        self.errors[kind].inc()
        self.latency["error"].observe(seconds)

    def count_error(self, kind: str) -> None:
        self.errors[kind].inc()

    def count_model_call(self) -> None:
        self.model_calls.inc()

    def render(self) -> tuple[bytes, str]:
        """Summed over workers when there are some (else this process's registry)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if multiprocess_enabled():
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class CountingModels:
    """A model source that counts every ``compute`` call, then delegates."""

    def __init__(self, inner: ModelSource, count: Callable[[], None]) -> None:
        self.inner = inner
        self._count = count

    def version(self, pair: str) -> str:
        return self.inner.version(pair)

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        self.inner.check_horizon(pair, horizon_s)

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        self._count()
        return self.inner.compute(pair, horizon_s, at)
