"""One model call as the predictor makes it: stamped, counted, timed, its failure one error.

Every computation a miss, a refresh or the Python API makes goes through :func:`call_model`, so
``stats.model_calls`` counts all of them, ``compute_ms`` is measured the same way for a
prediction and a function result, and a model bug reaches the caller as one
:class:`~predcache.errors.ComputeError` (exit code and HTTP status from the error tree) instead
of whatever the model raised. :func:`prediction_entry` is the entry a prediction miss stores.

Apart from :mod:`predcache.predictor` so the policy module stays readable; none of this is on
the hit path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from predcache.clock import Clock
from predcache.entry import Entry
from predcache.errors import ComputeError, PredcacheError
from predcache.registry import ModelSource
from predcache.served import PredictorStats

#: who wrote an entry (this host): named in the clock-skew warning
WRITER = os.uname().nodename or "unknown"


def call_model(
    make: Callable[[float], Entry],
    what: str,
    *,
    clock: Clock,
    stats: PredictorStats,
    delay_s: float,
    sleep: Callable[[float], None],
) -> Entry:
    """``make(created_at)`` builds the entry, then the simulated ``delay_s`` passes;
    ``compute_ms`` is stamped here. A failure other than a :class:`PredcacheError` becomes one
    :class:`ComputeError` naming ``what``, with the original as its cause."""
    created_at = clock.now()
    t0 = time.perf_counter()
    stats.model_calls += 1
    try:
        entry = make(created_at)
    except PredcacheError:
        stats.errors += 1
        raise
    except Exception as exc:  # a model bug must reach the caller as one clear error
        stats.errors += 1
        raise ComputeError(
            f"model call failed for {what}: {exc.__class__.__name__}: {exc}"
        ) from exc
    if delay_s > 0:
        sleep(delay_s)
    entry["compute_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
    return entry


def prediction_entry(models: ModelSource, pair: str, horizon_s: int, created_at: float) -> Entry:
    """The model's prediction for ``pair`` at ``horizon_s`` as a cache entry stamped
    ``created_at`` (``compute_ms`` is filled in by :func:`call_model`)."""
    computed = models.compute(pair, horizon_s, created_at)
    return {
        "pair": pair,
        "horizon_s": horizon_s,
        "predicted_price": computed.predicted_price,
        "last_price": computed.last_price,
        "as_of": computed.as_of,
        "created_at": created_at,
        "model_version": models.version(pair),
        "writer": WRITER,
        "compute_ms": 0.0,
    }
