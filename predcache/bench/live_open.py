"""``predcache bench --target URL --rate R``: the simulated bench's workload, sent live.

The schedule is the simulated workload for the same flags (:func:`runner.build_workload`:
same generator, same seed, so the same keys and the same inter-arrival gaps), sent in real
time by the open-loop client (:mod:`openloop`). The summary row carries the simulated rows'
columns where a client can know them: outcomes from ``Cache-Status``, latency, and
``model_calls`` from the target's ``/metrics`` before and after when the target is a predcache
server (its ``/health`` also gives the TTL, model delay and stampede strategy it serves with).
Every run measures the client floor (:mod:`floor`) and puts it in the row.
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from predcache.bench.floor import Floor, measure_floor
from predcache.bench.live_options import STALE_IF_ERROR, LiveOptions, cache_outcome
from predcache.bench.openloop import OpenLoopLog, Schedule, run_open_loop
from predcache.bench.workload import MAX_REQUESTS, Workload, synthetic
from predcache.errors import BadInputError
from predcache.store import redact_url

MODEL_CALLS_METRIC = "predcache_model_calls_total"


@dataclass(frozen=True)
class OpenRun:
    """What an open-loop run measured."""

    workload: Workload
    log: OpenLoopLog
    floor: Floor
    model_calls: int | None
    server: dict[str, Any] | None  # the target's /health, when it is a predcache server


def workload_for(opts: LiveOptions) -> Workload:
    """The simulated bench's workload for these flags (``--duration``: as many as fit)."""
    assert opts.rate is not None
    requests = opts.requests
    if requests is None:
        assert opts.duration_s is not None
        requests = min(MAX_REQUESTS, math.ceil(opts.rate * opts.duration_s * 1.2) + 100)
    w = synthetic(
        opts.keys, requests=requests, rate=opts.rate, zipf=opts.zipf, seed=opts.seed,
        start=opts.start_s,
    )  # fmt: skip
    if opts.duration_s is not None:
        keep = (w.times - opts.start_s) < opts.duration_s
        w = Workload(w.source, w.times[keep], w.key_index[keep], w.keys, w.rate, w.zipf, w.seed)
    return w


def base_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _get(url: str) -> str | None:
    """A small GET on the target's host (its /health or /metrics); None when not there."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # http(s): checked by LiveOptions
            body: bytes = resp.read(1 << 20)
            return body.decode("utf-8", "replace")
    except (OSError, ValueError):
        return None


def server_health(url: str) -> dict[str, Any] | None:
    """The target's /health JSON if it is a predcache server, else None."""
    text = _get(base_url(url) + "/health")
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and "ttl_s" in data else None


def model_calls(url: str) -> int | None:
    """``predcache_model_calls_total`` from the target's /metrics, or None."""
    text = _get(base_url(url) + "/metrics")
    for line in (text or "").splitlines():
        if line.startswith(MODEL_CALLS_METRIC + " "):
            return int(float(line.split()[1]))
    return None


def check_server_matches(opts: LiveOptions, health: dict[str, Any] | None) -> None:
    """``--compare-simulated`` simulates the server's settings: refuse a mismatch up front."""
    c = opts.compare
    if c is None or health is None:
        return
    served = {
        "--ttl": (float(health.get("ttl_s", c.ttl_s)), c.ttl_s),
        "--model-delay": (
            float(health.get("simulated_model_delay_s", c.model_delay_s)),
            c.model_delay_s,
        ),
        "--stampede": (str(health.get("stampede", c.stampede)), c.stampede),
    }
    for flag, (theirs, ours) in served.items():
        if theirs != ours:
            raise BadInputError(
                f"{flag} {ours} does not match the server's {theirs}: --compare-simulated must "
                "simulate what the server does"
            )


#: the columns of requests.csv of an open-loop run (and of the rows handed to ``record``)
REQUEST_COLUMNS = (
    "timestamp", "pair", "horizon", "status", "cache", "latency_ms", "send_lag_ms",
)  # fmt: skip


def run_open(
    opts: LiveOptions,
    progress: Callable[[str, int], Callable[[int], None]] | None,
    record: Callable[[list[tuple[Any, ...]]], None] | None = None,
) -> OpenRun:
    """Measure the floor, then send the workload to the one target and read its counters.

    ``record`` gets the rows (:data:`REQUEST_COLUMNS`) of the requests answered so far, as
    they come (see :func:`openloop.run_open_loop`)."""
    url = opts.targets[0]
    workload = workload_for(opts)
    bodies = opts.bodies()
    health = server_health(url)
    check_server_matches(opts, health)
    floor = measure_floor(bodies[0])
    before = model_calls(url)
    schedule = Schedule(workload.times - opts.start_s, workload.key_index, bodies)
    tick = progress("live, open loop", workload.requests) if progress is not None else None
    keys, times, idx = opts.keys, workload.times, workload.key_index

    def as_rows(answered: list[tuple[int, int, float, float, str]]) -> None:
        assert record is not None
        record([
            (float(times[i]), keys[idx[i]][0], keys[idx[i]][1], status, cache_outcome(cs),
             round(ms, 4), round(lag, 4))
            for i, status, ms, lag, cs in answered
        ])  # fmt: skip

    log = run_open_loop(url, schedule, progress=tick, record=None if record is None else as_rows)
    after = model_calls(url)
    calls = after - before if before is not None and after is not None else None
    return OpenRun(workload, log, floor, calls, health)


def _p(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if len(values) else None


def summarise_open(run: OpenRun, opts: LiveOptions, run_id: str) -> dict[str, Any]:
    """The live row, with the simulated rows' column names where a client can know them."""
    log, health = run.log, run.server or {}
    n = len(log.status)
    cache = np.array([cache_outcome(h) for h in log.cache])
    ok = (log.status >= 200) & (log.status < 300)
    lat = log.latency_ms[ok]
    counts = {o: int((ok & (cache == o)).sum()) for o in ("hit", "collapsed", "stale", "miss")}
    sie = int((ok & (cache == STALE_IF_ERROR)).sum())
    counts["stale"] += sie  # stale answers too, for a reason the server names
    delay = health.get("simulated_model_delay_s")
    return {
        "run_id": run_id,
        "ttl_s": health.get("ttl_s"),
        "requests": n,
        "hits": counts["hit"],
        "misses": counts["miss"],
        "hit_ratio": round(counts["hit"] / n, 6) if n else None,
        "model_calls": run.model_calls,
        "latency_p50_ms": _p(lat, 50),
        "latency_p95_ms": _p(lat, 95),
        "latency_p99_ms": _p(lat, 99),
        "hit_latency_p50_ms": _p(log.latency_ms[ok & (cache == "hit")], 50),
        "miss_latency_p50_ms": _p(log.latency_ms[ok & (cache == "miss")], 50),
        "model_delay_ms": None if delay is None else round(float(delay) * 1000.0, 3),
        "backend": health.get("backend"),
        "rate": opts.rate,
        "zipf": opts.zipf,
        "keys": len(opts.keys),
        "seed": opts.seed,
        "mode": "live",
        "workload": "synthetic",
        "latency_mean_ms": round(float(lat.mean()), 4) if len(lat) else None,
        "engine_wall_s": round(log.wall_s, 3),
        "engine_rps": round(n / log.wall_s, 1) if log.wall_s > 0 else None,
        "stampede": health.get("stampede"),
        "collapsed": counts["collapsed"],
        "stale": counts["stale"],
        "served_from_cache_ratio": (
            round((counts["hit"] + counts["collapsed"] + counts["stale"]) / n, 6) if n else None
        ),
        "latency_p90_ms": _p(lat, 90),
        "latency_p999_ms": _p(lat, 99.9),
        "target": redact_url(opts.targets[0]),
        "errors": int(n - ok.sum()),
        "bypasses": int((ok & (cache == "bypass")).sum()),
        "unknown": int((ok & (cache == "unknown")).sum()),
        "failed": int((log.status >= 500).sum()),
        "stale_if_error": sie,
        "send_lag_p50_ms": _p(log.send_lag_ms, 50),
        "send_lag_p99_ms": _p(log.send_lag_ms, 99),
        "client_floor_p50_ms": run.floor.open_loop_p50_ms,
        "client_floor_p90_ms": run.floor.open_loop_p90_ms,
        "plain_loop_p50_ms": run.floor.plain_loop_p50_ms,
        "client_workers": log.workers,
    }


def request_columns(run: OpenRun, opts: LiveOptions) -> dict[str, list[Any]]:
    """requests.csv of an open-loop run (one row per request, in schedule order)."""
    keys = opts.keys
    idx = run.workload.key_index.tolist()
    return {
        "timestamp": run.workload.times.tolist(),
        "pair": [keys[k][0] for k in idx],
        "horizon": [keys[k][1] for k in idx],
        "status": run.log.status.tolist(),
        "cache": [cache_outcome(h) for h in run.log.cache],
        "latency_ms": np.round(run.log.latency_ms, 4).tolist(),
        "send_lag_ms": np.round(run.log.send_lag_ms, 4).tolist(),
    }
