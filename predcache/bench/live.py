"""``predcache bench --target URL``: a live HTTP load generator for any prediction API.

The simulated mode answers "what would a TTL do"; the live mode measures real servers, side by
side in one run: ``predcache serve`` against ``predcache serve --no-cache``, or ours against
someone else's. Design:

- **Same workload keys as the simulated mode**: keys are pairs x horizons drawn with the same
  Zipf generator (:func:`predcache.bench.workload.synthetic`), so a live run and a simulated
  run over the same options request the same keys in the same order.
- **Interleaved targets**: request ``i`` of the workload goes to every target in turn, from one
  shared queue served by ``concurrency`` threads, so every target sees the same keys under the
  same machine load at the same moments.
- **Real HTTP over keep-alive** (one ``httpx.Client`` per target). Each request records its
  status, latency and what the target's ``Cache-Status`` said (hit, miss, bypass, or
  ``unknown`` when the target sends none).
- **Bounded**: at most :data:`MAX_REQUESTS` per target or :data:`MAX_DURATION_S`, and a
  per-request timeout.

Latency percentiles are over successful (2xx) responses; failures are counted as ``errors``.
``throughput_rps`` is what each target answered per second of the run; interleaving makes a
slow target hold a fast one down to its pace, so ``capacity_rps`` adds each target's own
estimate, ``concurrency / mean latency`` (see :func:`_capacity`).
Nothing here is simulated; a server's own ``--model-delay`` is the server's business.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from predcache.durations import format_duration
from predcache.errors import BadInputError, PredcacheError
from predcache.store import redact_url

Key = tuple[str, int]

DEFAULT_REQUESTS = 1000
DEFAULT_CONCURRENCY = 4
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 256
MAX_DURATION_S = 600.0
REQUEST_TIMEOUT_S = 30.0
MAX_TEMPLATE_BYTES = 64 * 1024
#: The seed's body plus our horizon (extra JSON fields are ignored by the seed's API).
DEFAULT_BODY_TEMPLATE = '{"product_id": "{pair}", "horizon": "{horizon}"}'
_BLOCK = 100_000  # keys drawn per block in --duration mode


def check_target(url: str) -> str:
    """An http(s) URL with a host, or one :class:`BadInputError` line."""
    parts = urlsplit(url) if len(url) <= 2000 else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact_url(url[:80])
        raise BadInputError(f"bad --target {shown!r}: expected http://host:port/path")
    return url


def parse_template(text: str) -> Any:
    """The JSON body template; ``{pair}``, ``{horizon}`` (``5m``) and ``{horizon_s}`` (300)
    are replaced in every string value of each request."""
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise BadInputError("bad --body-template: larger than 64 KiB")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"bad --body-template: not JSON ({exc.msg})") from None


def render_body(template: Any, pair: str, horizon_s: int) -> Any:
    """The template with the key filled in; ``"{horizon_s}"`` alone becomes a JSON number."""
    if isinstance(template, str):
        if template == "{horizon_s}":
            return horizon_s
        return (
            template.replace("{pair}", pair)
            .replace("{horizon_s}", str(horizon_s))
            .replace("{horizon}", format_duration(horizon_s))
        )
    if isinstance(template, dict):
        return {k: render_body(v, pair, horizon_s) for k, v in template.items()}
    if isinstance(template, list):
        return [render_body(v, pair, horizon_s) for v in template]
    return template


def cache_outcome(header: str | None) -> str:
    """hit | miss | bypass | unknown, from an RFC 9211 ``Cache-Status`` (first member: the
    cache nearest the origin, which is ours when a proxy adds its own after it)."""
    if not header:
        return "unknown"
    params = [p.strip() for p in header.split(",")[0].split(";")[1:]]
    if "hit" in params:
        return "hit"
    for p in params:
        if p.startswith("fwd="):
            return "bypass" if p == "fwd=bypass" else "miss"
    return "unknown"


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


def run_live(
    targets: Sequence[str],
    keys: Sequence[Key],
    *,
    requests: int | None = DEFAULT_REQUESTS,
    duration_s: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    body_template: str = DEFAULT_BODY_TEMPLATE,
    zipf: float = 1.0,
    seed: int = 0,
    start_s: float = 0.0,
) -> LiveRun:
    """Send the workload to every target, interleaved, from ``concurrency`` threads."""
    import httpx

    urls = [check_target(t) for t in targets]
    if not urls:
        raise BadInputError("live mode needs at least one --target URL")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise BadInputError(f"bad --concurrency {concurrency}: must be 1..{MAX_CONCURRENCY}")
    if duration_s is not None:
        if not 0 < duration_s <= MAX_DURATION_S:
            raise BadInputError("bad --duration: must be > 0 and at most 10m")
        requests = None
    elif requests is None or not 1 <= requests <= MAX_REQUESTS:
        raise BadInputError(f"bad --requests {requests}: must be 1..{MAX_REQUESTS:,} per target")
    template = parse_template(body_template)
    bodies = [
        json.dumps(render_body(template, p, h), separators=(",", ":")).encode() for p, h in keys
    ]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients = [
        httpx.Client(
            timeout=REQUEST_TIMEOUT_S,
            limits=limits,
            headers={"content-type": "application/json", "accept": "application/json"},
        )
        for _ in urls
    ]
    log = LiveLog()
    started = time.monotonic()
    deadline = None if duration_s is None else started + duration_s
    jobs = _jobs(_key_stream(list(keys), zipf, seed, requests, start_s), len(urls), requests,
                 deadline)  # fmt: skip
    guard = threading.Lock()

    def worker() -> None:
        while True:
            with guard:
                job = next(jobs, None)
            if job is None:
                return
            seq, t, k = job
            t0 = time.perf_counter()
            try:
                r = clients[t].post(urls[t], content=bodies[k])
                status, cache = r.status_code, cache_outcome(r.headers.get("cache-status"))
            except httpx.HTTPError:
                status, cache = 0, "error"
            ms = (time.perf_counter() - t0) * 1000.0
            log.add(t, seq, k, status, ms, cache, t0 - started)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        for c in clients:
            c.close()
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
        known = hits + misses
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


def live_bench(
    targets: Sequence[str],
    *,
    pairs: Sequence[str],
    horizons_s: Sequence[int],
    requests: int | None,
    duration_s: float | None,
    concurrency: int,
    body_template: str | None,
    zipf: float,
    seed: int,
    out: str,
    label: str | None,
    save_requests: bool,
    command: str,
) -> tuple[list[dict[str, Any]], str]:
    """Run the live bench and write its results folder; (summary rows, run folder name)."""
    from predcache.bench import results

    keys = [(p, h) for p in pairs for h in horizons_s]
    template = body_template or DEFAULT_BODY_TEMPLATE
    run = run_live(
        targets, keys, requests=requests, duration_s=duration_s, concurrency=concurrency,
        body_template=template, zipf=zipf, seed=seed,
    )  # fmt: skip
    run_dir = results.new_run_dir(out, label or f"live-{len(run.targets)}-targets")
    rows = summarise_live(run, {"run_id": run_dir.name, "zipf": zipf, "seed": seed})
    params = {
        "run_id": run_dir.name,
        "mode": "live",
        "command": command,
        "targets": [redact_url(t) for t in run.targets],
        "requests_per_target": requests,
        "duration_s": duration_s,
        "concurrency": concurrency,
        "body_template": template,
        "keys": [f"{p}@{format_duration(h)}" for p, h in keys],
        "zipf": zipf,
        "seed": seed,
        "wall_s": round(run.wall_s, 3),
        "simulated": "nothing: real HTTP, real time (a target's own model delay is its own)",
    }
    results.write_params(run_dir, params)
    results.write_summary(run_dir, rows)
    if save_requests:
        results.write_requests(run_dir, request_columns(run))
    return rows, str(run_dir)


def render_live(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A rich table with one column per target, so two or three targets read side by side."""
    from rich.table import Table

    def f(value: Any, digits: int = 2) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    def pair(r: Mapping[str, Any], kind: str) -> str:
        return f"{f(r[f'{kind}_latency_p50_ms'])} / {f(r[f'{kind}_latency_p99_ms'])}"

    lines: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("requests", lambda r: str(r["requests"])),
        ("errors", lambda r: str(r["errors"])),
        ("hit ratio", lambda r: f(r["hit_ratio"], 3)),
        ("p50 ms", lambda r: f(r["latency_p50_ms"])),
        ("p95 ms", lambda r: f(r["latency_p95_ms"])),
        ("p99 ms", lambda r: f(r["latency_p99_ms"])),
        ("hit p50 / p99 ms", lambda r: pair(r, "hit")),
        ("miss p50 / p99 ms", lambda r: pair(r, "miss")),
        ("throughput req/s", lambda r: f(r["throughput_rps"], 1)),
        ("alone, est. req/s", lambda r: f(r["capacity_rps"], 1)),
        ("p50 vs first", lambda r: f"{f(r['p50_ratio_vs_first'], 3)}x"),
        ("p99 vs first", lambda r: f"{f(r['p99_ratio_vs_first'], 3)}x"),
    ]  # fmt: skip
    table = Table(title="live bench: real HTTP, targets interleaved")
    table.add_column("")
    for i, r in enumerate(rows):
        table.add_column(f"[{i + 1}] {_short(str(r['target']))}", justify="right")
    for name, cell in lines:
        table.add_row(name, *(cell(r) for r in rows))
    return table


def _short(url: str) -> str:
    """``http://127.0.0.1:8000/predict`` -> ``127.0.0.1:8000/predict`` (table headers)."""
    return url.split("://", 1)[-1]


def run_from_cli(targets: Sequence[str], opts: Mapping[str, Any], *, as_json: bool) -> None:
    """``predcache bench --target ...``: validate the flags in ``opts``, run, print.

    ``opts`` maps flag names (``--requests``, ``--concurrency``, ``--duration``,
    ``--body-template``, ``--pairs``, ``--horizons``, ``--zipf``, ``--seed``, ``--out``,
    ``--label``, ``--save-requests``) to the raw values the bench command received.
    """
    import shlex

    from predcache.bench.results import clean_rows
    from predcache.cli.render import print_json
    from predcache.durations import parse_duration, parse_minute_horizons
    from predcache.pairs import DEFAULT_PAIRS, parse_pair_list

    duration = opts.get("--duration")
    duration_s = None if duration is None else parse_duration(duration, name="duration")
    if duration_s is not None and opts.get("--requests") is not None:
        raise BadInputError("use either --requests or --duration in the live mode, not both")
    pairs = parse_pair_list(opts["--pairs"]) if opts.get("--pairs") else list(DEFAULT_PAIRS)
    horizons_s = parse_minute_horizons(opts.get("--horizons") or "1m,5m,15m")
    args = ["predcache", "bench"] + [a for t in targets for a in ("--target", redact_url(t))]
    for flag, value in opts.items():
        if value is not None and value is not False:
            args += [flag] if value is True else [flag, str(value)]
    rows, run_dir = live_bench(
        targets,
        pairs=pairs,
        horizons_s=horizons_s,
        requests=None if duration_s else _given(opts, "--requests", DEFAULT_REQUESTS),
        duration_s=duration_s,
        concurrency=_given(opts, "--concurrency", DEFAULT_CONCURRENCY),
        body_template=opts.get("--body-template"),
        zipf=1.0 if opts.get("--zipf") is None else float(opts["--zipf"]),
        seed=_given(opts, "--seed", 0),
        out=str(opts.get("--out") or "results"),
        label=opts.get("--label"),
        save_requests=bool(opts.get("--save-requests")),
        command=shlex.join(args),
    )
    if as_json:
        print_json(clean_rows(rows))
        return
    from rich.console import Console

    console = Console()
    console.print(render_live(rows))
    console.print(f"results: {run_dir}", highlight=False, soft_wrap=True)


def _given(opts: Mapping[str, Any], flag: str, default: int) -> int:
    """The flag's value when given (0 included, so it is rejected, not defaulted)."""
    value = opts.get(flag)
    return default if value is None else int(value)
