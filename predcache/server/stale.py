"""Expired entries served on purpose: ``Cache-Control: max-stale`` (RFC 9111 section 5.2.1.2)
and stale-if-error (RFC 5861).

The predictor serves fresh entries and computes the rest; both cases here are the HTTP layer
accepting less than fresh, so they read the store once more, only on those (rare) paths, and
answer with outcome ``stale`` and a ``detail`` that says why.
"""

from __future__ import annotations

import time

from predcache.predictor import STALE, Predictor, Served
from predcache.store.base import Store

MAX_STALE = "max-stale"
STALE_IF_ERROR = "stale-if-error"


def stale_entry(
    predictor: Predictor,
    pair: str,
    horizon_s: int,
    *,
    past_expiry_s: float,
    max_age_s: float | None,
    detail: str,
) -> Served | None:
    """The key's expired entry when it expired less than ``past_expiry_s`` ago and is younger
    than ``max_age_s``; else ``None`` (also when the store fails: there is nothing to serve)."""
    from predcache.errors import StoreError

    store: Store | None = predictor.store
    if store is None or past_expiry_s <= 0:
        return None
    started = time.perf_counter()
    key = predictor.key_for(pair, horizon_s)
    try:
        entry = store.get(key)
    except StoreError:
        return None
    if entry is None:
        return None
    age = predictor.clock.now() - float(entry["created_at"])
    limit = predictor.ttl_s + past_expiry_s
    if max_age_s is not None:
        limit = min(limit, max_age_s)
    if not predictor.ttl_s <= age < limit:
        return None
    latency_ms = (time.perf_counter() - started) * 1000.0
    return Served(entry, STALE, age, latency_ms, key, detail=detail)
