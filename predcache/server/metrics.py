"""Prometheus metrics for ``/metrics``, right across ``--workers N`` processes.

With one process the counters are plain ints rendered at scrape time (:class:`LocalMetrics`).
With several workers each process counts into its own files under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, set up by ``predcache serve`` before any worker starts)
and ``/metrics`` sums them, so a scrape that lands on any worker sees the whole server.

Model calls are counted where they happen, by wrapping the model source the predictor calls:
that is exact for misses, bypasses, failed calls and background refreshes alike.

Gauges read at scrape time (:class:`StateCollector`): requests in flight, the backend circuit
breaker's state, entries in the store. With one process the registry also carries
prometheus_client's process, platform and GC collectors; with ``--workers N`` the process
metrics of every worker come with a ``pid`` label (:mod:`predcache.server.procstats`). A scrape
whose ``Accept`` names ``application/openmetrics-text`` gets the OpenMetrics exposition.
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
#: "collapsed": waited for another request's computation; "stale": an expired entry served on
#: purpose (max-stale, stale-if-error, stale-while-revalidate); "head": a HEAD request with no
#: acceptable entry (answered with headers only, nothing computed)
OUTCOMES = ("hit", "collapsed", "miss", "bypass", "stale", "head", "error")
#: "backend": a request answered without the cache because the cache backend failed
ERROR_KINDS = ("client", "model", "internal", "refresh", "backend")
REQUESTS_DOC = "Prediction requests."
HITS_DOC = "Served from a fresh entry."
MISSES_DOC = "Computed and stored on a miss."
BYPASSES_DOC = "Computed without the cache."
STALE_DOC = (
    "Served from an expired entry on purpose (max-stale, stale-if-error, stale-while-revalidate)."
)
COLLAPSED_DOC = "Waited for another request's model call and served its entry."
INFLIGHT_DOC = "Prediction requests being answered now."
BREAKER = "predcache_breaker_state"
BREAKER_DOC = "The cache backend's circuit breaker: 1 for the state it is in."
BREAKER_STATES = ("closed", "open", "half-open")
OPENMETRICS = "application/openmetrics-text"
MODEL_CALLS_DOC = "Model calls (misses, bypasses, refreshes)."
ERRORS_DOC = "Failed requests and refreshes, by kind."
MODEL_INFO = "predcache_model_info"
MODEL_INFO_DOC = "The model version each pair is served with (1 = current)."
LATENCY_NAME = "predcache_request_duration_seconds"
LATENCY_DOC = "Prediction request latency inside the server, by outcome."


def multiprocess_enabled() -> bool:
    """True when this process counts into shared files (``predcache serve --workers N``)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def make_metrics(parent_pid: int | None = None) -> Metrics:
    """Plain counters for one process; prometheus_client's shared files with ``--workers N``
    (``parent_pid``: the serve process, whose children are the workers)."""
    return SharedMetrics(parent_pid) if multiprocess_enabled() else LocalMetrics()


class Collector(Protocol):
    """prometheus_client's collector interface."""

    def collect(self) -> Iterator[Metric]: ...


class Metrics(Protocol):
    """What the server counts. ``served`` and ``failed`` run on the event loop only."""

    #: True when each worker records its breaker's state (label ``pid``) with
    #: :meth:`breaker_state`; else :class:`StateCollector` reads it at scrape time
    per_worker_breaker: bool

    def started(self) -> None:
        """A prediction request began (for the in-flight gauge)."""

    def finished(self) -> None:
        """A prediction request ended, answered or not."""

    def served(self, cache: str, seconds: float) -> None:
        """Count one answered prediction request (``cache`` in :data:`OUTCOMES`)."""

    def failed(self, kind: str, seconds: float) -> None:
        """Count one failed prediction request (``kind`` in :data:`ERROR_KINDS`)."""

    def count_error(self, kind: str) -> None:
        """Count a failure outside a request's answer (a refresh, a backend bypass)."""

    def count_model_call(self) -> None:
        """Count one model call (from any thread)."""

    def model_version(self, pair: str, version: str) -> None:
        """The version ``pair`` is now served with (loaded first, or reloaded)."""

    def breaker_state(self, state: str) -> None:
        """This process's backend circuit breaker is now in ``state``."""

    def render(self, accept: str = "", extra: Collector | None = None) -> tuple[bytes, str]:
        """The exposition (OpenMetrics when ``accept`` asks) and its content type; ``extra`` is
        a collector of scrape-time gauges."""


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
        self.inflight = 0
        self.outcomes = dict.fromkeys(OUTCOMES[:-1], 0)
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.model_calls = 0
        #: per outcome, one count per bucket plus the +Inf bucket (not cumulative)
        self.buckets = {o: [0] * (len(LATENCY_BUCKETS) + 1) for o in OUTCOMES}
        self.sums = dict.fromkeys(OUTCOMES, 0.0)
        self.versions: dict[str, str] = {}
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.registry.register(self)
        from predcache.server.procstats import add_process_collectors

        add_process_collectors(self.registry)

    def started(self) -> None:
        self.inflight += 1

    def finished(self) -> None:
        self.inflight -= 1

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

    def model_version(self, pair: str, version: str) -> None:
        self.versions[pair] = version

    per_worker_breaker = False

    def breaker_state(self, state: str) -> None:
        """Nothing to record: the one process's breaker is read at scrape time."""

    def collect(self) -> Iterator[Metric]:
        """The families, built from the counters at scrape time (prometheus_client's hook)."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        for name, doc, value in (
            ("predcache_requests", REQUESTS_DOC, self.requests),
            ("predcache_cache_hits", HITS_DOC, self.outcomes["hit"]),
            ("predcache_cache_collapsed", COLLAPSED_DOC, self.outcomes["collapsed"]),
            ("predcache_cache_misses", MISSES_DOC, self.outcomes["miss"]),
            ("predcache_cache_bypasses", BYPASSES_DOC, self.outcomes["bypass"]),
            ("predcache_cache_stale", STALE_DOC, self.outcomes["stale"]),
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
        from prometheus_client.core import GaugeMetricFamily

        info = GaugeMetricFamily(MODEL_INFO, MODEL_INFO_DOC, labels=["pair", "version"])
        for pair, version in sorted(self.versions.items()):
            info.add_metric([pair, version], 1)
        yield info
        yield GaugeMetricFamily("predcache_inflight_requests", INFLIGHT_DOC, value=self.inflight)

    def render(self, accept: str = "", extra: Collector | None = None) -> tuple[bytes, str]:
        return _expose(self.registry, accept, extra)


class SharedMetrics:
    """prometheus_client's counters and histogram, with children bound once.

    Used with ``--workers N``: in multiprocess mode every value lives in this worker's file
    under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums the files of all workers, so a
    scrape on any worker sees the whole server.
    """

    def __init__(self, parent_pid: int | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.parent_pid = parent_pid
        self.registry: CollectorRegistry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter("predcache_requests", REQUESTS_DOC, registry=reg)
        self.hits = Counter("predcache_cache_hits", HITS_DOC, registry=reg)
        self.collapsed = Counter("predcache_cache_collapsed", COLLAPSED_DOC, registry=reg)
        self.misses = Counter("predcache_cache_misses", MISSES_DOC, registry=reg)
        self.bypasses = Counter("predcache_cache_bypasses", BYPASSES_DOC, registry=reg)
        self.stale = Counter("predcache_cache_stale", STALE_DOC, registry=reg)
        self.inflight = Gauge(
            "predcache_inflight_requests", INFLIGHT_DOC, registry=reg, multiprocess_mode="livesum"
        )
        self.model_calls = Counter("predcache_model_calls", MODEL_CALLS_DOC, registry=reg)
        errors = Counter("predcache_errors", ERRORS_DOC, ["kind"], registry=reg)
        self.errors = {kind: errors.labels(kind=kind) for kind in ERROR_KINDS}
        latency = Histogram(
            LATENCY_NAME, LATENCY_DOC, ["cache"], buckets=LATENCY_BUCKETS, registry=reg
        )
        self.latency = {outcome: latency.labels(cache=outcome) for outcome in OUTCOMES}
        self._outcome = {
            "hit": self.hits,
            "collapsed": self.collapsed,
            "miss": self.misses,
            "bypass": self.bypasses,
            "stale": self.stale,
        }
        #: per (pair, version): 1 while current, 0 once replaced; across workers the most
        #: recently written value wins, so a reload in any worker shows at once
        self.info = Gauge(
            MODEL_INFO,
            MODEL_INFO_DOC,
            ["pair", "version"],
            registry=reg,
            multiprocess_mode="mostrecent",
        )
        self._versions: dict[str, str] = {}
        #: per worker (label ``pid``; a dead worker's series go with its files)
        self.breaker = Gauge(
            BREAKER, BREAKER_DOC, ["state"], registry=reg, multiprocess_mode="liveall"
        )

    per_worker_breaker = True

    def breaker_state(self, state: str) -> None:
        for name in BREAKER_STATES:
            self.breaker.labels(state=name).set(1 if state == name else 0)

    def started(self) -> None:
        self.inflight.inc()

    def finished(self) -> None:
        self.inflight.dec()

    def served(self, cache: str, seconds: float) -> None:
        self.requests.inc()
        counter = self._outcome.get(cache)
        if counter is not None:
            counter.inc()
        self.latency[cache].observe(seconds)

    def failed(self, kind: str, seconds: float) -> None:
        self.requests.inc()
        self.errors[kind].inc()
        self.latency["error"].observe(seconds)

    def count_error(self, kind: str) -> None:
        self.errors[kind].inc()

    def count_model_call(self) -> None:
        self.model_calls.inc()

    def model_version(self, pair: str, version: str) -> None:
        old = self._versions.get(pair)
        if old is not None and old != version:
            self.info.labels(pair=pair, version=old).set(0)
        self._versions[pair] = version
        self.info.labels(pair=pair, version=version).set(1)

    def render(self, accept: str = "", extra: Collector | None = None) -> tuple[bytes, str]:
        """Summed over workers when there are some (else this process's registry)."""
        from prometheus_client import CollectorRegistry

        if multiprocess_enabled():
            from prometheus_client import multiprocess

            from predcache.server import procstats

            path = os.environ[MULTIPROC_ENV]
            live = procstats.worker_pids(path, self.parent_pid)
            procstats.forget_dead_workers(path, live)
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            merged.register(procstats.WorkersCollector(live))
            return _expose(merged, accept, extra)
        return _expose(self.registry, accept, extra)


def _expose(registry: CollectorRegistry, accept: str, extra: Collector | None) -> tuple[bytes, str]:
    """Render ``registry`` (plus ``extra``'s families) as Prometheus text or OpenMetrics."""
    if extra is not None:
        from prometheus_client import CollectorRegistry

        combined = CollectorRegistry()
        combined.register(_Chain(registry, extra))
        registry = combined
    if OPENMETRICS in accept:
        from prometheus_client.openmetrics import exposition

        text = exposition.generate_latest(registry)  # type: ignore[no-untyped-call]
        return text, exposition.CONTENT_TYPE_LATEST
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Chain:
    """One collector yielding a registry's families, then another collector's."""

    def __init__(self, registry: CollectorRegistry, extra: Collector) -> None:
        self.registry = registry
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from self.extra.collect()


class StateCollector:
    """Scrape-time gauges of the server's state: breaker and stored entries."""

    def __init__(self, breaker_state: Callable[[], str | None], entries: int | None) -> None:
        self.breaker_state = breaker_state
        self.entries = entries

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        state = self.breaker_state()
        if state is not None:
            breaker = GaugeMetricFamily(BREAKER, BREAKER_DOC, labels=["state"])
            for name in BREAKER_STATES:
                breaker.add_metric([name], 1 if state == name else 0)
            yield breaker
        if self.entries is not None:
            yield GaugeMetricFamily(
                "predcache_cache_entries",
                "Entries in the cache backend (the whole store, seen from this process).",
                value=self.entries,
            )


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
