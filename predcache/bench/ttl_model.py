"""The analytic hit ratio of a TTL cache under Poisson traffic (the product brief's formula).

With requests for key ``i`` arriving as a Poisson process of rate ``lambda_i`` and an entry that
stays fresh for ``T`` after the miss that wrote it (a hit does not extend it), every miss opens a
window of length ``T`` in which every request for that key hits. A cycle is that window plus the
wait for the next arrival, so per key the hit ratio is ``lambda_i T / (1 + lambda_i T)``, and over
all keys, weighting by each key's share of traffic ``p_i = lambda_i / lambda``:

    H = sum_i p_i * (lambda p_i T) / (1 + lambda p_i T)

(Jung, Berger & Balakrishnan, INFOCOM 2003). The bench prints this next to the measured hit
ratio: a gap larger than sampling noise means the engine or the cache does not do what the
policy says.

**In flight.** With a model delay ``d`` the entry is stamped when its computation starts and
written when it ends. Under single-flight (``coalesce``) a cycle is a miss, the ``lambda d``
requests that arrive during the computation (``collapsed``: they wait for it), hits until the
entry expires at ``T``, and the wait for the next arrival; so per key, with
``M = max(T, d)``::

    misses 1/(1 + lambda M), collapsed lambda d/(1 + lambda M), hits lambda (T-d)+/(1 + lambda M)

(the product brief's form for ``d <= T``). Without protection (``none``) the requests during
the computation miss too, and the last of them, at ``L``, leaves an entry fresh until
``L + T``; with ``E[L] = d - (1 - exp(-lambda d))/lambda`` a cycle holds ``1 + lambda d``
misses and ``lambda (E[L] + T - d)`` hits out of ``1 + lambda (E[L] + T)`` requests (exact for
``T >= 2d``, when each entry is written before the previous one expires).
"""

from __future__ import annotations

import math

import numpy as np

from predcache.bench.workload import Workload, zipf_probabilities
from predcache.stampede import COALESCE, NONE


def expected_hit_ratio(key_rates: np.ndarray, ttl_s: float) -> float:
    """``H`` for per-key Poisson rates ``key_rates`` (requests/s) and TTL ``ttl_s``."""
    rates = np.asarray(key_rates, dtype=np.float64)
    total = float(rates.sum())
    if ttl_s <= 0 or total <= 0:
        return 0.0
    x = rates * ttl_s
    return float(np.sum(rates / total * x / (1.0 + x)))


def workload_key_rates(workload: Workload) -> np.ndarray:
    """Each key's request rate: ``rate * p_i`` (Zipf) for synthetic traffic; for a trace, the
    observed count over the trace's span (which must be positive)."""
    if workload.source == "synthetic" and workload.zipf is not None:
        rates: np.ndarray = workload.rate * zipf_probabilities(len(workload.keys), workload.zipf)
        return rates
    counts = workload.key_counts().astype(np.float64)
    rates = counts / workload.span_s()
    return rates


def expected_for_workload(workload: Workload, ttl_s: float) -> float | None:
    """The model's hit ratio for this workload at ``ttl_s``; ``None`` for a trace whose requests
    all share one timestamp (no time passes, so there is no rate to put in the formula)."""
    if workload.source == "trace" and workload.span_s() <= 0:
        return None
    return expected_hit_ratio(workload_key_rates(workload), ttl_s)


def expected_outcomes(
    key_rates: np.ndarray, ttl_s: float, delay_s: float, stampede: str
) -> dict[str, float] | None:
    """Expected shares of requests that hit, collapse and miss, for ``coalesce`` and ``none``
    (``None`` for the strategies without a closed form here)."""
    rates = np.asarray(key_rates, dtype=np.float64)
    total = float(rates.sum())
    if total <= 0:
        return None
    if ttl_s <= 0:
        return {"hit": 0.0, "collapsed": 0.0, "miss": 1.0}
    share = rates / total
    d = max(delay_s, 0.0)
    if stampede == COALESCE:
        cycle = 1.0 + rates * max(ttl_s, d)
        hits, collapsed, misses = rates * max(ttl_s - d, 0.0) / cycle, rates * d / cycle, 1 / cycle
    elif stampede == NONE:
        last = np.array([d - (-math.expm1(-r * d)) / r if r > 0 else 0.0 for r in rates])
        cycle = 1.0 + rates * (last + ttl_s)
        hits = rates * np.maximum(last + ttl_s - d, 0.0) / cycle
        misses, collapsed = 1.0 - hits, np.zeros_like(rates)
    else:
        return None
    return {
        "hit": float(np.sum(share * hits)),
        "collapsed": float(np.sum(share * collapsed)),
        "miss": float(np.sum(share * misses)),
    }


def expected_outcomes_for_workload(
    workload: Workload, ttl_s: float, delay_s: float, stampede: str
) -> dict[str, float] | None:
    """:func:`expected_outcomes` for this workload's key rates (``None`` as
    :func:`expected_for_workload` when a trace has no time span)."""
    if workload.source == "trace" and workload.span_s() <= 0:
        return None
    return expected_outcomes(workload_key_rates(workload), ttl_s, delay_s, stampede)
