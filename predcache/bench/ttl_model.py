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
"""

from __future__ import annotations

import numpy as np

from predcache.bench.workload import Workload, zipf_probabilities


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
