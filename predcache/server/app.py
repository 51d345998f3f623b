"""The FastAPI app over the predictor: ``create_app(settings)``.

Design notes (why the route looks the way it does):

- **Off the event loop.** Every predictor call that may compute runs in a worker thread
  (anyio, with its own large limiter), so a 1 s model call on one key never delays hits on
  other keys, and the threads that wait on a key's single-flight lock cannot starve the pool.
  A hit on the memory or disk backend (a ~10 us read) is served on the loop itself
  (:meth:`Predictor.get_fresh`): the thread hop would cost more than the read.
- **Single-flight is the predictor's**: concurrent misses on one key make one model call, in
  this process (per-key locks) and across ``--workers`` processes (the store's lease lock).
- **fastapi is imported at the top** of this module only: FastAPI reads the route signatures
  at runtime, and nothing imports this module but ``predcache serve``.
- **Lean hot path.** ``/predict`` is a bare ASGI endpoint (:mod:`predcache.server.endpoint`);
  the body is read by hand with a size cap (before any parsing, chunked bodies included) and
  parsed with orjson; no pydantic, no per-request logging; metrics are plain ints in one
  process (:class:`~predcache.server.metrics.LocalMetrics`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import orjson
from fastapi import FastAPI, Request, Response
from starlette.routing import Route

from predcache.entry import Entry
from predcache.errors import BadInputError
from predcache.factory import build_predictor, select_models
from predcache.predictor import HIT, Predictor
from predcache.server.endpoint import ClientGoneError, Headers, PredictEndpoint, PredictRequest
from predcache.server.errors import error_body, status_for
from predcache.server.metrics import CountingModels, Metrics, make_metrics
from predcache.server.protocol import (
    cache_headers,
    parse_cache_control,
    parse_fields,
    parse_json_body,
    response_json,
)
from predcache.server.refresh import RefreshAhead
from predcache.server.settings import ServeSettings

T = TypeVar("T")
#: backends whose reads are fast enough to serve a hit on the event loop
INLINE = ("memory", "disk")
log = logging.getLogger("predcache.server")


class PredictService:
    """One process's predictor, metrics and refresh-ahead, shared by the routes."""

    def __init__(self, settings: ServeSettings, predictor: Predictor, metrics: Metrics) -> None:
        self.settings = settings
        self.predictor = predictor
        self.metrics = metrics
        self.limiter: anyio.CapacityLimiter | None = None
        self.refresher = (
            RefreshAhead(
                predictor,
                self.run,
                beta=settings.refresh_beta,
                on_error=functools.partial(metrics.count_error, "refresh"),
            )
            if settings.refresh_ahead and settings.use_cache
            else None
        )
        self._background: set[asyncio.Future[None]] = set()
        store = predictor.store
        #: serve hits on the event loop: a memory or disk read takes ~10 us, less than the hop
        #: to a worker thread and back (~60 us); Redis is a network call and stays in threads
        self.inline_hits = settings.use_cache and store is not None and store.name in INLINE
        #: pairs whose model header is loaded: only for those is the hit path free of file
        #: reads (the first request for a pair may even train its model, in a thread)
        self._warm: set[str] = set()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call in a worker thread under this app's limiter."""
        call = functools.partial(fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self.limiter)

    async def answer(self, request: PredictRequest) -> tuple[int, bytes, Headers]:
        """Parse, serve through the predictor; (status, JSON body, caching headers)."""
        started = time.perf_counter()
        try:
            if request.method == "POST":
                pair, horizon_s = parse_json_body(await request.body())
            else:
                q = request.query()
                pair, horizon_s = parse_fields(q.get("product_id", q.get("pair")), q.get("horizon"))
            max_age_s, no_cache = parse_cache_control(request.cache_control)
            served = None
            if self.inline_hits and not no_cache and pair in self._warm:
                served = self.predictor.get_fresh(pair, horizon_s, max_age_s=max_age_s)
            if served is None:
                served = await self.run(
                    self.predictor.get_or_compute,
                    pair,
                    horizon_s,
                    max_age_s=max_age_s,
                    refresh=no_cache,
                    use_cache=self.settings.use_cache,
                )
                self._warm.add(pair)
        except ClientGoneError:
            raise
        except Exception as exc:
            return self.fail(exc, started)
        if served.cache == HIT and self.refresher is not None:
            self._maybe_refresh(pair, horizon_s, served.entry)
        limit = self.predictor.freshness_limit(max_age_s)
        headers = cache_headers(served, limit, refreshed=no_cache)
        self.metrics.served(served.cache, time.perf_counter() - started)
        if served.detail == "backend-unavailable":  # answered (bypass), but count the failure
            self.metrics.count_error("backend")
        return 200, response_json(served), headers

    def _maybe_refresh(self, pair: str, horizon_s: int, entry: Entry) -> None:
        assert self.refresher is not None
        work = self.refresher.maybe_start(pair, horizon_s, entry)
        if work is not None:
            task = asyncio.ensure_future(work)
            self._background.add(task)  # keep a reference until it is done
            task.add_done_callback(self._background.discard)

    def fail(self, exc: Exception, started: float) -> tuple[int, bytes, Headers]:
        """A JSON error for ``exc``; counted, and logged only when it was not planned."""
        status = status_for(exc)
        if isinstance(exc, BadInputError):
            kind = "client"
        elif status == 500:
            kind = "internal"
            log.error("internal error on /predict", exc_info=exc)
        else:
            kind = "model"
        self.metrics.failed(kind, time.perf_counter() - started)
        return status, orjson.dumps(error_body(exc)), []


def create_app(settings: ServeSettings) -> FastAPI:
    """A FastAPI app serving predictions under ``settings`` (one per process)."""
    from predcache.server import openapi, pages

    predictor = build_predictor(
        backend=settings.backend,
        cache_dir=settings.cache_dir,
        size_limit=settings.size_limit,
        models=select_models(settings.model, settings.model_version, settings.models_dir),
        ttl_s=settings.ttl_s,
        model_delay_s=settings.model_delay_s,
        use_store=settings.use_cache,
    )
    metrics = make_metrics()
    predictor.models = CountingModels(predictor.models, metrics.count_model_call)
    service = PredictService(settings, predictor, metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.limiter = anyio.CapacityLimiter(settings.threads)
        try:
            yield
        finally:
            if predictor.store is not None:
                predictor.store.close()

    app = FastAPI(
        title="predcache",
        summary="Cached ML price predictions over HTTP.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # /docs comes from predcache.server.pages, offline; no /redoc
        redoc_url=None,
    )
    app.state.service = service

    @app.post(
        "/predict",
        responses=openapi.PREDICT_RESPONSES,
        openapi_extra=openapi.POST_EXTRA,
        summary="Predict a pair's price (the seed's request).",
    )
    async def predict_post(request: Request) -> Response:
        return await documented(request)

    @app.get(
        "/predict",
        responses=openapi.PREDICT_RESPONSES,
        openapi_extra=openapi.GET_EXTRA,
        summary="Predict a pair's price (query string).",
    )
    async def predict_get(request: Request) -> Response:
        return await documented(request)

    async def documented(request: Request) -> Response:
        status, body, headers = await service.answer(
            PredictRequest(request.scope, request.receive, settings.max_body_bytes)
        )
        plain = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        return Response(body, status, headers=plain, media_type="application/json")

    # The two routes above document /predict (OpenAPI, /docs); requests reach the same handler
    # through this plain Starlette route to a bare ASGI endpoint, matched first, which skips
    # FastAPI's per-request dependency solving and Starlette's Request/Response objects (the
    # handler parses the request itself anyway). Other methods still get a 405.
    endpoint = PredictEndpoint(service, settings.max_body_bytes)
    app.router.routes.insert(
        0, Route("/predict", endpoint, methods=["GET", "POST"], include_in_schema=False)
    )

    @app.get("/health", summary="Liveness and the settings this process serves with.")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "cache": settings.use_cache,
            "backend": None if predictor.store is None else predictor.store.name,
            "ttl_s": settings.ttl_s,
            "simulated_model_delay_s": settings.model_delay_s,
            "refresh_ahead": service.refresher is not None,
        }

    @app.get("/metrics", summary="Prometheus metrics (summed over workers).")
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, headers={"content-type": content_type})

    pages.add_pages(app, settings, predictor)
    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory for ``--workers N``: settings come from the parent's environment."""
    return create_app(ServeSettings.from_env())
