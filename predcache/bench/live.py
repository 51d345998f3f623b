"""``predcache bench --target URL``: live HTTP runs, as one function: :func:`live_bench`.

Two load generators share the options (:class:`live_options.LiveOptions`), the results folder
and the row columns:

- the **open loop** (``--rate R``, :mod:`live_open` over :mod:`openloop`): the simulated
  bench's workload for the same flags, sent in real time, latency from each request's
  scheduled time, the client floor measured with it; ``--compare-simulated`` adds the
  simulated row of the same workload (:mod:`compare`);
- the **closed loop** (``--concurrency N``, :mod:`closedloop`): ``N`` threads as fast as the
  targets answer, several targets interleaved side by side.

Nothing here is simulated except the comparison's own row; a server's ``--model-delay`` is the
server's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predcache.bench import results
from predcache.bench.compare import differences, simulate
from predcache.bench.live_options import LiveOptions
from predcache.bench.runner import ProgressFactory
from predcache.durations import format_duration
from predcache.store import redact_url


@dataclass(frozen=True)
class LiveResult:
    """The rows (live first, then the simulated one when compared) and where they went."""

    rows: list[dict[str, Any]]
    run_dir: Path
    diffs: list[tuple[str, Any, Any, float | None, float | None]] | None = None


def live_bench(
    opts: LiveOptions,
    *,
    notify: Callable[[str], None],
    progress: ProgressFactory | None = None,
) -> LiveResult:
    """Validate, run, write the results folder."""
    opts.check()
    if opts.open_loop:
        return _open(opts, notify, progress)
    from predcache.bench import closedloop

    run = closedloop.run_live(opts)
    run_dir = results.new_run_dir(opts.out, opts.label or f"live-{len(run.targets)}-targets")
    rows = closedloop.summarise_live(run, {"run_id": run_dir.name, "zipf": opts.zipf,
                                           "seed": opts.seed})  # fmt: skip
    results.write_params(run_dir, _params(opts, run_dir.name, run.wall_s))
    results.write_summary(run_dir, rows)
    if opts.save_requests:
        results.write_requests(run_dir, closedloop.request_columns(run))
    return LiveResult(rows, run_dir)


def _open(
    opts: LiveOptions, notify: Callable[[str], None], progress: ProgressFactory | None
) -> LiveResult:
    from predcache.bench import live_open

    run = live_open.run_open(opts, progress)
    run_dir = results.new_run_dir(opts.out, opts.label or f"live-rate{opts.rate:g}")
    rows = [live_open.summarise_open(run, opts, run_dir.name)]
    diffs = None
    if opts.compare is not None:
        rows.append(simulate(opts, run_dir.name, notify=notify, progress=progress))
        diffs = differences(rows[0], rows[1])
    params = _params(opts, run_dir.name, run.log.wall_s)
    params["server"] = run.server
    params["client_floor"] = {
        "open_loop_p50_ms": run.floor.open_loop_p50_ms,
        "open_loop_p90_ms": run.floor.open_loop_p90_ms,
        "plain_loop_p50_ms": run.floor.plain_loop_p50_ms,
        "requests": run.floor.requests,
    }
    results.write_params(run_dir, params)
    results.write_summary(run_dir, rows)
    if opts.save_requests:
        results.write_requests(run_dir, live_open.request_columns(run, opts))
    return LiveResult(rows, run_dir, diffs)


def _params(opts: LiveOptions, run_id: str, wall_s: float) -> dict[str, Any]:
    c = opts.compare
    return {
        "run_id": run_id,
        "mode": "live",
        "command": opts.command(),
        "targets": [redact_url(t) for t in opts.targets],
        "loop": "open" if opts.open_loop else "closed",
        "rate": opts.rate,
        "requests_per_target": opts.requests,
        "duration_s": opts.duration_s,
        "concurrency": None if opts.open_loop else opts.concurrency,
        "body_template": opts.body_template,
        "keys": [f"{p}@{format_duration(h)}" for p, h in opts.keys],
        "zipf": opts.zipf,
        "seed": opts.seed,
        "start": opts.start,
        "wall_s": round(wall_s, 3),
        "compare_simulated": None if c is None else {
            "ttl_s": c.ttl_s, "model_delay_s": c.model_delay_s, "stampede": c.stampede,
            "stale_grace_s": c.stale_grace_s, "backend": c.backend,
        },
        "simulated": "nothing in the live row: real HTTP, real time (a target's own model delay "
        "is its own); the compared row is the simulated bench's",
    }  # fmt: skip
