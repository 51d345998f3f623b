"""The served ASGI app: ``create_app(settings)``.

``/predict`` is answered by a bare ASGI endpoint before any framework code runs
(:class:`~predcache.server.endpoint.Dispatch`); the FastAPI app serves everything else:
``/health`` (liveness), ``/ready`` (readiness: the backend answers), ``/metrics``, ``/docs``
and ``/openapi.json``. There is one handler per route, and the OpenAPI document describes
``/predict`` from pydantic models (:mod:`predcache.server.openapi`).

Every error, the framework's own 404/405/422/500 included, is ``application/problem+json``
(:mod:`predcache.server.errors`). fastapi is imported at the top of this module only: nothing
imports it but ``predcache serve``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from predcache.errors import PredcacheError
from predcache.factory import build_predictor, select_models
from predcache.faults import FailingModels
from predcache.registry import ModelRegistry
from predcache.server import openapi
from predcache.server.endpoint import Dispatch, PredictEndpoint
from predcache.server.errors import HTTP_CODES, PROBLEM_HEADERS, problem, problem_for
from predcache.server.metrics import CountingModels, StateCollector, make_metrics
from predcache.server.orphans import cleanup_if_orphaned
from predcache.server.service import PredictService
from predcache.server.settings import ServeSettings
from predcache.stampede import parse_strategy
from predcache.store.breaker import CircuitBreakerStore

log = logging.getLogger("predcache.server")
_PROBLEM = {k.decode(): v.decode() for k, v in PROBLEM_HEADERS}


def problem_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    """A problem+json answer from the FastAPI side."""
    return Response(body, status, headers={**(headers or {}), **_PROBLEM})


def create_app(settings: ServeSettings) -> Dispatch:
    """The ASGI app serving predictions under ``settings`` (one per process)."""
    from predcache.server import limits

    limits.configure(settings.max_header_bytes, settings.header_timeout_s)
    predictor = build_predictor(
        max_clock_skew_s=settings.max_clock_skew_s,
        backend=settings.backend,
        cache_dir=settings.cache_dir,
        size_limit=settings.size_limit,
        models=select_models(settings.model, settings.model_version, settings.models_dir),
        ttl_s=settings.ttl_s,
        model_delay_s=settings.model_delay_s,
        use_store=settings.use_cache,
        stampede=parse_strategy(settings.stampede),
        stale_grace_s=settings.stale_grace_s,
        keep_expired_s=settings.stale_if_error_s,
    )
    metrics = make_metrics(settings.parent_pid)
    registry = predictor.models if isinstance(predictor.models, ModelRegistry) else None
    if registry is not None:
        registry.watch(metrics.model_version)  # /metrics shows each pair's version
    if settings.model_fail_rate > 0:  # simulated; counted as model calls all the same
        predictor.models = FailingModels(predictor.models, settings.model_fail_rate)
    predictor.models = CountingModels(predictor.models, metrics.count_model_call)
    if isinstance(predictor.store, CircuitBreakerStore):  # each worker records its own state
        predictor.store.on_state = metrics.breaker_state
        metrics.breaker_state(predictor.store.state)
    service = PredictService(settings, predictor, metrics)
    if registry is not None:
        service.warmer = registry.warm  # the raw registry: warming is not a counted model call
    app = build_fastapi(service)
    return Dispatch(PredictEndpoint(service, settings.max_body_bytes), app)


def build_fastapi(service: PredictService) -> FastAPI:
    """The FastAPI app for every route but ``/predict``."""
    from predcache.server import pages

    settings, predictor, metrics = service.settings, service.predictor, service.metrics
    store = predictor.store

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.limiter = anyio.CapacityLimiter(settings.threads)
        await anyio.to_thread.run_sync(service.warm_models)  # before the first request
        try:
            yield
        finally:
            if store is not None:
                store.close()
            cleanup_if_orphaned(settings.parent_pid, settings.metrics_dir)

    app = FastAPI(
        title="predcache",
        summary="Cached ML price predictions over HTTP.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # /docs comes from predcache.server.pages, offline; no /redoc
        redoc_url=None,
    )
    app.state.service = service
    _problem_handlers(app)

    @app.get(
        "/health",
        operation_id="health",
        response_model=openapi.Health,
        summary="Liveness (the process answers) and the settings it serves with; HEAD too.",
    )
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "cache": settings.use_cache,
            "backend": None if store is None else store.name,
            "ttl_s": settings.ttl_s,
            "simulated_model_delay_s": settings.model_delay_s,
            "refresh_ahead": settings.refresh_ahead,
            "stampede": settings.stampede,
            "stale_grace_s": settings.stale_grace_s,
        }

    @app.get(
        "/ready",
        operation_id="ready",
        response_model=openapi.Ready,
        responses={503: openapi.problem_response("The cache backend cannot be reached.")},
        summary="Readiness: 200 when this process can answer from its backend, else 503.",
    )
    async def ready() -> Any:
        reason = await service.run(_unready_reason, store)
        if reason is not None:
            return problem_response(503, problem(503, "not_ready", reason))
        return {"status": "ready", "backend": None if store is None else store.name}

    pages.add_pages(app, settings, predictor)

    @app.get(
        "/metrics",
        operation_id="metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text, or OpenMetrics when Accept asks for it.",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/openmetrics-text": {"schema": {"type": "string"}},
                },
            }
        },
        summary="Prometheus metrics (summed over workers).",
    )
    async def prometheus(request: Request) -> Response:
        entries = None if store is None else await service.run(_entries, store)
        state = StateCollector(
            lambda: None if metrics.per_worker_breaker else getattr(store, "state", None), entries
        )
        body, content_type = metrics.render(request.headers.get("accept", ""), state)
        return Response(body, headers={"content-type": content_type, "vary": "Accept"})

    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.complete(generate())
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    return app


def _unready_reason(store: Any) -> str | None:
    """Why this process cannot answer from its backend now, or ``None``.

    A probe read through the circuit breaker: while it is open this fails at once, and after
    its retry-after the probe is the call that closes it again when the backend is back.
    """
    if store is None:
        return None
    try:
        store.get("predcache-ready-probe")
    except PredcacheError as exc:
        return str(exc)
    return None


def _entries(store: Any) -> int | None:
    try:
        return int(store.stats().entries)
    except PredcacheError:
        return None


def _problem_handlers(app: FastAPI) -> None:
    """The framework's own errors in the one problem+json shape."""

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        body = problem(status, HTTP_CODES.get(status, "http_error"), str(exc.detail))
        return problem_response(status, body, dict(exc.headers or {}))

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return problem_response(422, problem(422, "bad_request", detail))

    async def internal(_request: Request, exc: Exception) -> Response:
        log.error("internal error", exc_info=exc)
        status, body = problem_for(exc)
        return problem_response(status, body)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, internal)


def app_from_env() -> Dispatch:
    """The uvicorn factory for ``--workers N``: settings come from the parent's environment."""
    settings = ServeSettings.from_env()
    if settings.parent_pid is not None:
        from predcache.server.orphans import die_with_parent

        die_with_parent(settings.parent_pid, settings.metrics_dir)
    return create_app(settings)
