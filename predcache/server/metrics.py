"""Prometheus metrics for ``/metrics``, right across ``--workers N`` processes.

With several workers each process counts into its own files under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, set up by ``predcache serve`` before any worker starts)
and ``/metrics`` sums them, so a scrape that lands on any worker sees the whole server.

Model calls are counted where they happen, by wrapping the model source the predictor calls:
that is exact for misses, bypasses, failed calls and background refreshes alike.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from predcache.registry import Computed, ModelSource

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: seconds; fine at the low end where hits live, up to a slow model call
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
OUTCOMES = ("hit", "miss", "bypass", "error")
#: "backend": a request answered without the cache because the cache backend failed
ERROR_KINDS = ("client", "model", "internal", "refresh", "backend")


def multiprocess_enabled() -> bool:
    """True when this process counts into shared files (``predcache serve --workers N``)."""
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """The server's counters and latency histogram, with children bound once (cheap to bump)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter("predcache_requests", "Prediction requests.", registry=reg)
        self.hits = Counter("predcache_cache_hits", "Served from a fresh entry.", registry=reg)
        self.misses = Counter(
            "predcache_cache_misses", "Computed and stored on a miss.", registry=reg
        )
        self.bypasses = Counter(
            "predcache_cache_bypasses", "Computed without the cache.", registry=reg
        )
        self.model_calls = Counter(
            "predcache_model_calls", "Model calls (misses, bypasses, refreshes).", registry=reg
        )
        errors = Counter(
            "predcache_errors", "Failed requests and refreshes, by kind.", ["kind"], registry=reg
        )
        self.errors = {kind: errors.labels(kind=kind) for kind in ERROR_KINDS}
        latency = Histogram(
            "predcache_request_duration_seconds",
            "Prediction request latency inside the server, by outcome.",
            ["cache"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.latency = {outcome: latency.labels(cache=outcome) for outcome in OUTCOMES}
        self._outcome = {"hit": self.hits, "miss": self.misses, "bypass": self.bypasses}

    def served(self, cache: str, seconds: float) -> None:
        """Count one answered prediction request."""
        self.requests.inc()
        self._outcome[cache].inc()
        self.latency[cache].observe(seconds)

    def failed(self, kind: str, seconds: float) -> None:
        """Count one failed prediction request (``kind`` in :data:`ERROR_KINDS`)."""
        self.requests.inc()
        self.errors[kind].inc()
        self.latency["error"].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, summed over workers when there are some."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if multiprocess_enabled():
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class CountingModels:
    """A model source that counts every ``compute`` call into a counter, then delegates."""

    def __init__(self, inner: ModelSource, counter: Any) -> None:
        self.inner = inner
        self._counter = counter

    def version(self, pair: str) -> str:
        return self.inner.version(pair)

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        self.inner.check_horizon(pair, horizon_s)

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        self._counter.inc()
        return self.inner.compute(pair, horizon_s, at)
