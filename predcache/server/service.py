"""One process's prediction service: what ``/predict`` does, apart from how it is reached.

- **Off the event loop.** Every predictor call that may compute runs in a worker thread
  (anyio, with its own large limiter), so a 1 s model call on one key never delays hits on
  other keys; one key holds at most a few threads (:mod:`predcache.server.gate`), so requests
  waiting on a hot key's computation cannot starve the pool.
  A hit on the memory or disk backend is served on the loop itself
  (:meth:`Predictor.get_fresh`): the read costs less than the hop to a thread and back
  (measured: check b of ``benchmarks/perf.py``, docs/performance.md "What made the difference").
- **Request directives** (RFC 9111): ``no-store`` computes without the cache, ``no-cache`` and
  ``max-age=0`` recompute, ``max-age``/``min-fresh``/``max-stale`` set which entry is
  acceptable, ``only-if-cached`` and ``HEAD`` never call the model. ``If-None-Match`` that
  matches the entry served is a 304.
- **Lean hot path**: no pydantic, no per-request logging; metrics are plain ints in one
  process (:class:`~predcache.server.metrics.LocalMetrics`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import orjson

from predcache.errors import BadInputError, ComputeError, ModelError
from predcache.predictor import BYPASS, HIT, STALE, SWR_DETAIL, Predictor, Served
from predcache.purge import selector
from predcache.server.directives import Directives
from predcache.server.endpoint import ClientGoneError, Headers, PredictRequest
from predcache.server.errors import (
    PROBLEM_HEADERS,
    NotCachedError,
    PurgeDisabledError,
    problem_for,
)
from predcache.server.gate import THREADS_PER_KEY, KeyGate
from predcache.server.metrics import Metrics
from predcache.server.protocol import (
    etag,
    etag_matches,
    head_miss_headers,
    parse_fields,
    parse_json_body,
    response_headers,
    response_json,
)
from predcache.server.refresh import RefreshAhead
from predcache.server.settings import ServeSettings
from predcache.server.stale import MAX_STALE, STALE_IF_ERROR, stale_entry
from predcache.stampede import NONE, STALE_WHILE_REVALIDATE

T = TypeVar("T")
#: backends whose reads are fast enough to serve a hit on the event loop
INLINE = ("memory", "disk")
log = logging.getLogger("predcache.server")
#: requests remembered as parsed: at most this many, of at most this many bytes each
PARSED_MAX = 1024
PARSED_MAX_BYTES = 512


class PredictService:
    """One process's predictor, metrics and refresh-ahead, shared by the routes."""

    def __init__(self, settings: ServeSettings, predictor: Predictor, metrics: Metrics) -> None:
        self.settings = settings
        self.predictor = predictor
        self.metrics = metrics
        self.limiter: anyio.CapacityLimiter | None = None
        #: at most a few threads per key: one hot key cannot take the whole pool
        self.gate = KeyGate(None if settings.stampede == NONE else THREADS_PER_KEY)
        self.refresher = (
            RefreshAhead(
                predictor,
                self.run,
                beta=settings.refresh_beta,
                on_error=functools.partial(metrics.count_error, "refresh"),
            )
            if (settings.refresh_ahead or settings.stampede == STALE_WHILE_REVALIDATE)
            and settings.use_cache
            else None
        )
        self._background: set[asyncio.Future[None]] = set()
        store = predictor.store
        #: serve hits on the event loop: a memory or disk read costs less than the hop to a
        #: worker thread and back (see the module docstring); Redis is a network call and stays
        #: in threads
        self.inline_hits = settings.use_cache and store is not None and store.name in INLINE
        #: pairs whose model header is loaded: only for those is the hit path free of file
        #: reads (the first request for a pair may even train its model, in a thread)
        self._warm: set[str] = set()
        #: loads the trained models before the first request (see :meth:`warm_models`)
        self.warmer: Callable[[], list[str]] | None = None
        self.ttl_s = predictor.ttl_s
        #: request bytes that parsed -> (pair, horizon_s); see :meth:`_fields`
        self._bodies: dict[bytes, tuple[str, int]] = {}
        self._queries: dict[bytes, tuple[str, int]] = {}

    def warm_models(self) -> None:
        """Load the trained models now (at start-up, in a thread): see ``ModelRegistry.warm``."""
        if self.warmer is not None:
            self._warm.update(self.warmer())

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call in a worker thread under this app's limiter."""
        call = functools.partial(fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self.limiter)

    async def answer(self, request: PredictRequest) -> tuple[int, bytes, Headers]:
        """GET/POST/HEAD: (status, JSON body, headers)."""
        self.metrics.started()
        try:
            return await self._answer(request)
        finally:
            self.metrics.finished()

    async def _answer(self, request: PredictRequest) -> tuple[int, bytes, Headers]:
        started = time.perf_counter()
        try:
            pair, horizon_s = await self._fields(request)
            d = request.directives()
            served = await self._serve(request.method == "HEAD", pair, horizon_s, d)
        except ClientGoneError:
            raise
        except Exception as exc:
            return self.fail(exc, started)
        if served is None:  # HEAD without an acceptable entry: nothing computed
            self.metrics.served("head", time.perf_counter() - started)
            return 200, b"", head_miss_headers(d.forced)
        return self._respond(request, served, d, pair, horizon_s, started)

    def answer_now(self, request: PredictRequest, raw: bytes) -> tuple[int, bytes, Headers] | None:
        """A hit answered in place, without awaiting anything; ``None`` hands the request to
        :meth:`answer` unchanged (nothing counted).

        For :mod:`predcache.server.lane`, which calls it from the HTTP protocol with the whole
        request in hand (``raw``: the body of a POST, the query string of a GET). It answers
        exactly what :meth:`_serve` would answer on the event loop: a fresh entry of a warm
        pair on the memory or disk backend, under the request's directives; only fields
        already parsed once are looked up, so a bad request always takes the full path.
        """
        started = time.perf_counter()
        if not self.inline_hits:
            return None
        fields = (self._bodies if request.method == "POST" else self._queries).get(raw)
        if fields is None or fields[0] not in self._warm:
            return None
        d = request.directives()
        if d.forced or d.no_store:
            return None
        pair, horizon_s = fields
        try:
            served = self.predictor.get_fresh(pair, horizon_s, max_age_s=self._max_age(d))
        except Exception:
            return None  # the full path meets the same error and answers it
        if served is None:
            return None
        return self._respond(request, served, d, pair, horizon_s, started)

    def _respond(
        self,
        request: PredictRequest,
        served: Served,
        d: Directives,
        pair: str,
        horizon_s: int,
        started: float,
    ) -> tuple[int, bytes, Headers]:
        """The answer for what was served: headers, body or 304; counted."""
        if self.refresher is not None and served.cache in (HIT, STALE):
            self._maybe_refresh(pair, horizon_s, served)
        headers = response_headers(served, self.ttl_s, d.forced, d.no_store)
        self.metrics.served(served.cache, time.perf_counter() - started)
        if served.detail is not None:
            self._note(served)
        inm = request.if_none_match
        if inm is not None and served.cache != BYPASS and etag_matches(inm, etag(served)):
            return 304, b"", headers
        return 200, response_json(served), headers

    async def _fields(self, request: PredictRequest) -> tuple[str, int]:
        """(pair, horizon_s) of a request; the same bytes parse the same way, so they are
        parsed once (bodies and query strings up to :data:`PARSED_MAX_BYTES`; errors never kept)."""
        if request.method == "POST":
            raw = await request.body()
            memo = self._bodies
        else:
            raw = request.query_string
            memo = self._queries
        fields = memo.get(raw)
        if fields is None:
            if memo is self._bodies:
                fields = parse_json_body(raw)
            else:
                q = request.query()
                fields = parse_fields(q.get("product_id") or q.get("pair"), q.get("horizon"))
            if len(raw) <= PARSED_MAX_BYTES:
                if len(memo) >= PARSED_MAX:
                    memo.clear()
                memo[raw] = fields
        return fields

    def _max_age(self, d: Directives) -> float | None:
        """The oldest entry the request accepts (``max-age``, ``min-fresh``), ``None``: any."""
        max_age: float | None = d.max_age
        if d.min_fresh:  # at least N s of freshness left: no older than TTL - N
            max_age = min(self.ttl_s - d.min_fresh, math.inf if max_age is None else max_age)
        return max_age

    async def _serve(self, head: bool, pair: str, horizon_s: int, d: Directives) -> Served | None:
        """Through the predictor under the request's directives; ``None`` for a HEAD miss."""
        predictor = self.predictor
        arrived = predictor.ticket()  # a no-cache is served by a computation started after it
        key = (pair, horizon_s)
        # other requests for this key are in threads (or queued for them): this one reads
        # first, and an entry it finds only after that read missed came from their computation
        busy = self.gate.busy(key)
        if not self.settings.use_cache or d.no_store:
            if head:
                return None
            return await self.run(predictor.get_or_compute, pair, horizon_s, use_cache=False)
        lookup_only = head or d.only_if_cached
        max_age = self._max_age(d)
        if not d.forced:
            served = None
            if self.inline_hits and pair in self._warm:
                served = predictor.get_fresh(pair, horizon_s, max_age_s=max_age)
            elif lookup_only or d.max_stale is not None or busy:
                # a busy key's threads are taken by misses: a hit must not queue behind them
                served = await self.run(predictor.get_fresh, pair, horizon_s, max_age_s=max_age)
            if served is None and d.max_stale is not None:
                served = await self.run(
                    stale_entry,
                    predictor,
                    pair,
                    horizon_s,
                    past_expiry_s=d.max_stale,
                    max_age_s=max_age,
                    detail=MAX_STALE,
                )
            if served is not None:
                return served
        if d.only_if_cached:
            raise NotCachedError("only-if-cached: no acceptable prediction is stored for this key")
        if head:
            return None
        try:
            async with self.gate.admit(key):
                served = await self.run(
                    predictor.get_or_compute,
                    pair,
                    horizon_s,
                    max_age_s=max_age,
                    refresh=d.forced,
                    arrived=arrived,
                    waited=busy,
                )
        except (ComputeError, ModelError):
            stale = await self.run(
                stale_entry,
                predictor,
                pair,
                horizon_s,
                past_expiry_s=self.settings.stale_if_error_s,
                max_age_s=None,
                detail=STALE_IF_ERROR,
            )
            if stale is None:
                raise
            served = stale
        self._warm.add(pair)
        return served

    def _note(self, served: Served) -> None:
        """Count and log the answers that say something went wrong underneath."""
        if served.detail == "backend-unavailable":  # answered (bypass), but count the failure
            self.metrics.count_error("backend")
        elif served.detail == STALE_IF_ERROR:
            self.metrics.count_error("model")
            log.warning(
                "model failed for %s; served the entry expired %.1fs ago (stale-if-error)",
                served.key,
                served.age_s - self.ttl_s,
            )

    async def purge(self, request: PredictRequest) -> tuple[int, bytes, Headers]:
        """``DELETE /predict?pair=P[&horizon=H]``: remove that pair's entries (when allowed)."""
        started = time.perf_counter()
        try:
            if not self.settings.allow_purge:
                raise PurgeDisabledError(
                    "purging is off: start the server with --allow-purge to allow DELETE /predict"
                )
            q = request.query()
            raw_pair, raw_horizon = q.get("product_id") or q.get("pair"), q.get("horizon")
            pair, horizon_s = parse_fields(raw_pair, raw_horizon)
            store = self.predictor.store
            match = selector(pair=pair, horizon_s=None if raw_horizon is None else horizon_s)
            purged = 0 if store is None else await self.run(store.purge, match)
        except Exception as exc:
            return self.fail(exc, started)
        log.warning("purged %d entries for %s (DELETE /predict)", purged, pair)
        body = {
            "purged": purged,
            "pair": pair,
            "horizon_s": None if raw_horizon is None else horizon_s,
        }
        return 200, orjson.dumps(body), [(b"cache-control", b"no-store")]

    def _maybe_refresh(self, pair: str, horizon_s: int, served: Served) -> None:
        """Refresh in the background: at once for stale-while-revalidate's stale answer, on a
        hit when XFetch says so (refresh-ahead)."""
        assert self.refresher is not None
        if served.cache == STALE and served.detail == SWR_DETAIL:
            work = self.refresher.start(pair, horizon_s, served.entry)
        elif served.cache == HIT and self.settings.refresh_ahead:
            work = self.refresher.maybe_start(pair, horizon_s, served.entry)
        else:
            return
        if work is not None:
            task = asyncio.ensure_future(work)
            self._background.add(task)  # keep a reference until it is done
            task.add_done_callback(self._background.discard)

    def fail(self, exc: Exception, started: float) -> tuple[int, bytes, Headers]:
        """A problem+json answer for ``exc``; counted, and logged only when it was not planned."""
        status, body = problem_for(exc)
        if isinstance(exc, BadInputError) or status in (403, 504):
            kind = "client"
        elif status == 500:
            kind = "internal"
            log.error("internal error on /predict", exc_info=exc)
        else:
            kind = "model"
        self.metrics.failed(kind, time.perf_counter() - started)
        return status, body, list(PROBLEM_HEADERS)
