"""The closed-loop live load generator: ``predcache bench --target URL [--target URL2]``.

``concurrency`` threads send the workload's keys one request after another, so the load is
whatever the targets can take (a closed loop: a slow answer holds the next request back).
Use it to compare servers side by side; to replay a workload at its arrival rate, use the
open loop (``--rate``, :mod:`predcache.bench.openloop`). Design:

- **Same workload keys as the simulated mode**: keys are pairs x horizons drawn with the same
  Zipf generator (:func:`predcache.bench.workload.synthetic`).
- **Interleaved targets**: request ``i`` of the workload goes to every target in turn, from one
  shared queue served by ``concurrency`` threads, so every target sees the same keys under the
  same machine load at the same moments.
- **Real HTTP over keep-alive**: each thread holds one plain ``http.client`` connection per
  target (:class:`~predcache.bench.openloop.Target`, as the open loop does), so the client
  adds little more than a plain keep-alive loop would (httpx cost several times the server's
  own time per hit). Each request records its status, latency and what the target's
  ``Cache-Status`` said.
- **Bounded**: at most ``MAX_REQUESTS`` per target or ``MAX_DURATION_S``, and a per-request
  timeout (the open loop's, on every connection :class:`Target` opens).

Latency percentiles are over successful (2xx) responses; failures are counted as ``errors``.
``throughput_rps`` is what each target answered per second of the run; interleaving makes a
slow target hold a fast one down to its pace, so ``capacity_rps`` adds each target's own
estimate, ``concurrency / mean latency`` (see :func:`_capacity`).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predcache.bench.live_options import STALE_IF_ERROR, Key, LiveOptions, cache_outcome
from predcache.errors import PredcacheError
from predcache.store import redact_url

_BLOCK = 100_000  # keys drawn per block in --duration mode
#: how often the main thread hands the requests answered since last time to the ``record`` sink
RECORD_EVERY_S = 0.25
#: the columns of requests.csv (and of the rows handed to ``record``)
REQUEST_COLUMNS = ("target", "seq", "pair", "horizon_s", "status", "latency_ms", "cache", "t_s")
Record = Callable[[Sequence[Sequence[Any]]], None]


@dataclass
class LiveLog:
    """Per-request records in columns, appended by the worker threads."""

    target: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    key: list[int] = field(default_factory=list)
    status: list[int] = field(default_factory=list)  # 0: no response (connect error, timeout)
    latency_ms: list[float] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)
    t_s: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, t: int, seq: int, k: int, status: int, ms: float, cache: str, at: float) -> None:
        """One request's record (under a lock, so the columns stay aligned)."""
        with self._lock:
            self.target.append(t)
            self.seq.append(seq)
            self.key.append(k)
            self.status.append(status)
            self.latency_ms.append(ms)
            self.cache.append(cache)
            self.t_s.append(at)


@dataclass
class LiveRun:
    """What :func:`run_live` measured."""

    targets: list[str]
    keys: list[Key]
    log: LiveLog
    wall_s: float
    concurrency: int


def _jobs(
    key_index: Iterator[int], n_targets: int, requests: int | None, deadline: float | None
) -> Iterator[tuple[int, int, int]]:
    """(seq, target, key) in interleaved order, until the count or the deadline is reached."""
    for seq, k in enumerate(key_index):
        if requests is not None and seq >= requests:
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        for t in range(n_targets):
            yield seq, t, int(k)


def _key_stream(
    keys: list[Key], zipf: float, seed: int, requests: int | None, start_s: float
) -> Iterator[int]:
    """The simulated mode's key sequence (same generator, same seed); endless in duration mode."""
    from predcache.bench.workload import synthetic

    block = 0
    while True:
        n = requests if requests is not None else _BLOCK
        wl = synthetic(keys, requests=n, zipf=zipf, seed=seed + block, start=start_s)
        yield from (int(k) for k in wl.key_index)
        if requests is not None:
            return
        block += 1


def run_live(opts: LiveOptions, record: Record | None = None) -> LiveRun:
    """Send the workload to every target, interleaved, from ``concurrency`` threads.

    ``record`` gets the rows (:data:`REQUEST_COLUMNS`) of the requests answered so far, a few
    times a second and once more at the end, however the run ends (Ctrl-C included), so what
    was measured can be kept as it comes.
    """
    from predcache.bench.openloop import Target, post

    opts.check()
    urls, keys, concurrency = list(opts.targets), opts.keys, opts.concurrency
    requests, duration_s = opts.requests, opts.duration_s
    zipf, seed, start_s = opts.zipf, opts.seed, opts.start_s
    bodies = opts.bodies()
    targets = [Target(u) for u in urls]
    log = LiveLog()
    started = time.monotonic()
    deadline = None if duration_s is None else started + duration_s
    jobs = _jobs(_key_stream(list(keys), zipf, seed, requests, start_s), len(urls), requests,
                 deadline)  # fmt: skip
    guard = threading.Lock()
    stop = threading.Event()  # set when the run ends early (Ctrl-C): no new request starts
    shown = [redact_url(u) for u in urls]
    handed = [0]

    def hand_over() -> None:
        if record is None:
            return
        with log._lock:
            end = len(log.status)
            rows = [
                (shown[log.target[i]], log.seq[i], keys[log.key[i]][0], keys[log.key[i]][1],
                 log.status[i], round(log.latency_ms[i], 4), log.cache[i], round(log.t_s[i], 6))
                for i in range(handed[0], end)
            ]  # fmt: skip
        handed[0] = end
        record(rows)

    def worker() -> None:
        conns: list[http.client.HTTPConnection | None] = [None] * len(targets)
        try:
            while not stop.is_set():
                with guard:
                    job = next(jobs, None)
                if job is None:
                    return
                seq, t, k = job
                t0 = time.perf_counter()
                status, header = 0, ""
                conn = conns[t]
                try:
                    if conn is None:
                        conn = targets[t].connect()
                    conn, status, header = post(conn, targets[t], bodies[k])
                except OSError:
                    pass  # not even a connection: no response (status 0)
                conns[t] = conn
                ms = (time.perf_counter() - t0) * 1000.0
                cache = cache_outcome(header) if status else "error"
                log.add(t, seq, k, status, ms, cache, t0 - started)
        finally:
            for c in conns:
                if c is not None:
                    c.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            while th.is_alive():
                th.join(RECORD_EVERY_S)
                hand_over()
    finally:
        stop.set()
        hand_over()
    if not log.status:
        raise PredcacheError("the live bench sent no requests")
    answered = {t for t, status in zip(log.target, log.status, strict=True) if status != 0}
    silent = [redact_url(u) for t, u in enumerate(urls) if t not in answered]
    if silent:
        raise PredcacheError(f"no response from {', '.join(silent)}: is the server running?")
    return LiveRun(list(urls), list(keys), log, time.monotonic() - started, concurrency)


def _capacity(latency_ms: np.ndarray, concurrency: int) -> float | None:
    """Requests per second this target sustains with ``concurrency`` clients of its own:
    ``concurrency / mean latency`` (Little's law for a closed loop).

    An estimate (labelled so in the table): with interleaved targets the measured rate is
    shared, while latencies are each target's own, measured side by side.
    """
    mean_s = float(latency_ms.mean()) / 1000.0 if len(latency_ms) else 0.0
    return round(concurrency / mean_s, 1) if mean_s > 0 else None


def _p(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if len(values) else None


def summarise_live(run: LiveRun, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One summary row per target (results columns where they apply, plus live extras)."""
    log = run.log
    target, status = np.array(log.target), np.array(log.status)
    lat, cache = np.array(log.latency_ms), np.array(log.cache)
    rows: list[dict[str, Any]] = []
    for t, url in enumerate(run.targets):
        mine = target == t
        ok = mine & (status >= 200) & (status < 300)
        hit, miss = ok & (cache == "hit"), ok & (cache == "miss")
        n, hits, misses = int(mine.sum()), int(hit.sum()), int(miss.sum())
        sie = int((ok & (cache == STALE_IF_ERROR)).sum())
        collapsed, stale = (
            int((ok & (cache == "collapsed")).sum()),
            int((ok & (cache == "stale")).sum()) + sie,  # stale-if-error answers are stale too
        )
        known = hits + misses + collapsed + stale
        row: dict[str, Any] = {
            "run_id": context["run_id"],
            "requests": n,
            "hits": hits,
            "misses": misses,
            "hit_ratio": round(hits / known, 6) if known else None,
            "latency_p50_ms": _p(lat[ok], 50),
            "latency_p95_ms": _p(lat[ok], 95),
            "latency_p99_ms": _p(lat[ok], 99),
            "hit_latency_p50_ms": _p(lat[hit], 50),
            "miss_latency_p50_ms": _p(lat[miss], 50),
            "zipf": context["zipf"],
            "keys": len(run.keys),
            "seed": context["seed"],
            "mode": "live",
            "workload": "synthetic",
            "latency_mean_ms": round(float(lat[ok].mean()), 4) if ok.any() else None,
            "engine_wall_s": round(run.wall_s, 3),
            "engine_rps": round(n / run.wall_s, 1) if run.wall_s > 0 else None,
            "target": redact_url(url),
            "concurrency": run.concurrency,
            "errors": int(n - ok.sum()),
            "bypasses": int((ok & (cache == "bypass")).sum()),
            "unknown": int((ok & (cache == "unknown")).sum()),
            "hit_latency_p99_ms": _p(lat[hit], 99),
            "miss_latency_p99_ms": _p(lat[miss], 99),
            "throughput_rps": round(n / run.wall_s, 1) if run.wall_s > 0 else None,
            "capacity_rps": _capacity(lat[mine], run.concurrency),
            "collapsed": collapsed,
            "stale": stale,
            "failed": int((mine & (status >= 500)).sum()),
            "stale_if_error": sie,
        }
        rows.append(row)
    for row in rows:
        for q in ("p50", "p99"):
            first, mine_q = rows[0][f"latency_{q}_ms"], row[f"latency_{q}_ms"]
            ok_ratio = first and mine_q is not None
            row[f"{q}_ratio_vs_first"] = round(mine_q / first, 3) if ok_ratio else None
    return rows


def request_columns(run: LiveRun) -> dict[str, list[Any]]:
    """requests.csv columns (one row per request)."""
    log = run.log
    return {
        "target": [redact_url(run.targets[t]) for t in log.target],
        "seq": log.seq,
        "pair": [run.keys[k][0] for k in log.key],
        "horizon_s": [run.keys[k][1] for k in log.key],
        "status": log.status,
        "latency_ms": [round(v, 4) for v in log.latency_ms],
        "cache": log.cache,
        "t_s": [round(v, 6) for v in log.t_s],
    }
