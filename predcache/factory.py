"""Build a predictor from user-level settings; shared by predict, serve and bench."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from predcache import config
from predcache.clock import Clock
from predcache.errors import BadInputError
from predcache.predictor import DEFAULT_RETAIN_MARGIN_S, Predictor
from predcache.registry import ModelRegistry, ModelSource
from predcache.stampede import DEFAULT_STRATEGY, Strategy
from predcache.store import Store, open_store


def notify_stderr(message: str) -> None:
    """One-line notices (auto-training, degraded backends) go to stderr, never stdout."""
    print(f"predcache: {message}", file=sys.stderr, flush=True)


def open_models(
    models_dir: str | Path | None = None, *, notify: Callable[[str], None] = notify_stderr
) -> ModelRegistry:
    """The model registry for the configured directory (reads nothing until asked)."""
    return ModelRegistry(config.models_dir(models_dir), notify=notify)


def select_models(
    model: str | None = None,
    model_version: str | None = None,
    models_dir: str | Path | None = None,
    *,
    notify: Callable[[str], None] = notify_stderr,
) -> ModelSource:
    """``--model SPEC`` loaded as a plugin (bad SPEC: exit 2, before any store opens), else the
    toy model's registry."""
    if model is None:
        if model_version is not None:
            raise BadInputError("--model-version only applies with --model SPEC")
        return open_models(models_dir, notify=notify)
    from predcache.plugin import load_plugin

    return load_plugin(model, model_version)


def build_predictor(
    *,
    backend: str | None = None,
    cache_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    ttl_s: float = config.DEFAULT_TTL_S,
    model_delay_s: float = 0.0,
    use_store: bool = True,
    namespace: str = "",
    size_limit: int | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] | None = None,
    notify: Callable[[str], None] = notify_stderr,
    models: ModelSource | None = None,
    stampede: Strategy = DEFAULT_STRATEGY,
    stale_grace_s: float = 0.0,
    max_clock_skew_s: float = config.DEFAULT_MAX_CLOCK_SKEW_S,
    keep_expired_s: float = 0.0,
) -> Predictor:
    """A predictor over the configured backend and model directory.

    Pass ``models`` (from :func:`open_models` or :func:`select_models`) to validate a request
    before the store is opened, so bad input changes nothing on disk. ``keep_expired_s``: how
    long past expiry an entry may still be served (``serve --stale-if-error``); the backend
    keeps entries that long when it is more than the usual retain margin.
    """
    store: Store | None = None
    if use_store:
        store = open_store(
            config.backend_spec(backend),
            cache_dir=cache_dir,
            namespace=namespace,
            size_limit=size_limit,
        )
    registry = models or open_models(models_dir, notify=notify)
    return Predictor(
        store,
        registry,
        clock=clock,
        ttl_s=ttl_s,
        model_delay_s=model_delay_s,
        sleep=sleep or time.sleep,
        stampede=stampede,
        stale_grace_s=stale_grace_s,
        max_clock_skew_s=max_clock_skew_s,
        retain_margin_s=max(DEFAULT_RETAIN_MARGIN_S, keep_expired_s),
    )
