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

import contextlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from predcache.bench import results
from predcache.bench.compare import differences, simulate
from predcache.bench.live_options import LiveOptions
from predcache.bench.runner import ProgressFactory
from predcache.durations import format_duration
from predcache.errors import PredcacheError
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
    """Validate, create the results folder, run (streaming each answer into it), summarise.

    A live run cannot be replayed, so nothing is sent before ``--out`` has taken the run's
    folder and its ``params.json`` (``"status": "running"``): a bad or unwritable ``--out`` is
    one line in a second, not a lost run. Answers are appended to ``requests.partial.csv`` as
    they come; a run that ends well replaces it with ``summary.csv`` (and ``requests.csv``
    when asked), one that does not keeps it and says why in ``params.json``.
    """
    from predcache.bench import closedloop, live_open

    opts.check()
    label = opts.label or (
        f"live-rate{opts.rate:g}" if opts.open_loop else f"live-{len(opts.targets)}-targets"
    )
    run_dir = results.new_run_dir(opts.out, label)
    params = {**_params(opts, run_dir.name, None), "status": "running"}
    try:
        results.write_params(run_dir, params)
        columns = live_open.REQUEST_COLUMNS if opts.open_loop else closedloop.REQUEST_COLUMNS
        stream = results.RequestStream(run_dir, columns)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    status_at = list(columns).index("status")
    answered = [0]  # requests that got an HTTP answer (status 0: none)

    def record(rows: Sequence[Sequence[Any]]) -> None:
        stream.write(rows)
        answered[0] += sum(1 for row in rows if row[status_at])

    try:
        if opts.open_loop:
            result = _open(opts, notify, progress, run_dir, params, record)
        else:
            result = _closed(opts, run_dir, params, record)
    except BaseException as exc:
        stream.close(keep=answered[0] > 0)
        _ended_early(run_dir, params, exc, stream.path, answered[0], notify)
        raise
    stream.close(keep=False)
    return result


def _ended_early(
    run_dir: Path,
    params: dict[str, Any],
    exc: BaseException,
    partial: Path,
    answered: int,
    notify: Callable[[str], None],
) -> None:
    """Keep what a run that did not end well measured and say why in params.json; a run that
    got no answer at all leaves no folder behind. Ctrl-C also says where the answers are (a
    failure is already one line of its own)."""
    if answered == 0:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    interrupted = isinstance(exc, KeyboardInterrupt)
    why = "interrupted" if interrupted else "failed"
    detail = " ".join(str(exc).split())[:200] or exc.__class__.__name__
    with contextlib.suppress(PredcacheError):
        results.write_params(run_dir, {**params, "status": why, "error": detail,
                                       "answered": answered})  # fmt: skip
    if interrupted:
        notify(f"interrupted: the {answered:,} requests answered so far are in {partial}")


def _closed(
    opts: LiveOptions,
    run_dir: Path,
    params: dict[str, Any],
    record: Callable[[Sequence[Sequence[Any]]], None],
) -> LiveResult:
    from predcache.bench import closedloop

    run = closedloop.run_live(opts, record)
    rows = closedloop.summarise_live(run, {"run_id": run_dir.name, "zipf": opts.zipf,
                                           "seed": opts.seed})  # fmt: skip
    results.write_params(run_dir, {**params, "status": "done", "wall_s": round(run.wall_s, 3)})
    results.write_summary(run_dir, rows)
    if opts.save_requests:
        results.write_requests(run_dir, closedloop.request_columns(run))
    return LiveResult(rows, run_dir)


def _open(
    opts: LiveOptions,
    notify: Callable[[str], None],
    progress: ProgressFactory | None,
    run_dir: Path,
    params: dict[str, Any],
    record: Callable[[Sequence[Sequence[Any]]], None],
) -> LiveResult:
    from predcache.bench import live_open

    run = live_open.run_open(opts, progress, record)
    rows = [live_open.summarise_open(run, opts, run_dir.name)]
    diffs = None
    if opts.compare is not None:
        rows.append(simulate(opts, run_dir.name, notify=notify, progress=progress))
        diffs = differences(rows[0], rows[1])
    params = {**params, "status": "done", "wall_s": round(run.log.wall_s, 3)}
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


def _params(opts: LiveOptions, run_id: str, wall_s: float | None) -> dict[str, Any]:
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
        "wall_s": None if wall_s is None else round(wall_s, 3),
        "compare_simulated": None if c is None else {
            "ttl_s": c.ttl_s, "model_delay_s": c.model_delay_s, "stampede": c.stampede,
            "stale_grace_s": c.stale_grace_s, "backend": c.backend,
        },
        "simulated": "nothing in the live row: real HTTP, real time (a target's own model delay "
        "is its own); the compared row is the simulated bench's",
    }  # fmt: skip
