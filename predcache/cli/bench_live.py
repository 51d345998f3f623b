"""The live mode of ``predcache bench`` (``--target``): its option helpers and its run.

Split from :mod:`predcache.cli.bench`, which parses every option and dispatches here.
"""

from __future__ import annotations

from typing import Any

from predcache.durations import parse_duration
from predcache.errors import BadInputError


def live_save(save_requests: str | None) -> bool:
    """Live mode writes requests.csv in its results folder; a PATH is the simulated mode's."""
    if save_requests:
        raise BadInputError(
            "--save-requests PATH only applies to the simulated mode; "
            "live mode takes --save-requests alone (requests.csv in the results folder)"
        )
    return save_requests is not None


def live_requests(requests: int | None, duration: str | None) -> int | None:
    """--requests, its live default, or None in --duration mode (both given: an error later)."""
    if duration is not None:
        return requests
    from predcache.bench.live_options import DEFAULT_REQUESTS

    return DEFAULT_REQUESTS if requests is None else requests


def comparison(
    url: str, ttl: str | None, delay: str | None, stampede: str | None, grace: str | None
) -> Any:
    """--compare-simulated's settings: the flags given, else what the server says it serves."""
    from predcache.bench.live_open import server_health
    from predcache.bench.live_options import Comparison
    from predcache.stampede import DEFAULT_STRATEGY, check_grace, parse_strategy

    health = server_health(url) or {}

    def given_or_server(flag: str, text: str | None, key: str) -> float:
        if text is not None:
            return parse_duration(text, name=flag)
        if key not in health:
            raise BadInputError(f"--compare-simulated needs --{flag} (the target has no /health)")
        return float(health[key])

    served = str(health.get("stampede", DEFAULT_STRATEGY))
    strategy = parse_strategy(served if stampede is None else stampede)
    grace_text = grace
    if grace_text is None and health.get("stale_grace_s"):
        grace_text = str(health["stale_grace_s"])
    grace_s = check_grace(
        [strategy], None if grace_text is None else parse_duration(grace_text, name="stale-grace")
    )
    return Comparison(
        ttl_s=given_or_server("ttl", ttl, "ttl_s"),
        model_delay_s=given_or_server("model-delay", delay, "simulated_model_delay_s"),
        stampede=strategy,
        stale_grace_s=grace_s,
    )


def run_live(opts: Any, *, as_json: bool) -> None:
    """The live mode: run, then JSON or the tables."""
    from rich.console import Console

    from predcache.bench.live import live_bench
    from predcache.bench.results import clean_rows
    from predcache.cli.bench import progress_factory
    from predcache.cli.render import print_json
    from predcache.factory import notify_stderr

    progress, start = progress_factory(enabled=not as_json)
    try:
        result = live_bench(opts, notify=notify_stderr, progress=start)
    finally:
        progress.stop()
    for row in result.rows:
        if row.get("errors"):
            notify_stderr(_failures(row))
    if as_json:
        print_json(clean_rows(result.rows))
        return
    from predcache.bench import live_render

    console = Console()
    if opts.open_loop:
        console.print(live_render.render_open(result.rows, result.diffs))
        for line in live_render.open_footer(result.rows[0]):
            console.print(line, highlight=False, soft_wrap=True)
    else:
        console.print(live_render.render_live(result.rows))
    console.print(f"results: {result.run_dir}", highlight=False, soft_wrap=True)


def _failures(row: dict[str, Any]) -> str:
    """One stderr line for a run with failed requests (a non-2xx answer or none at all)."""
    errors, requests, target = row["errors"], row["requests"], row.get("target", "")
    line = f"{errors} of {requests} requests to {target} failed (a non-2xx answer or none)"
    if errors == requests:
        line += "; is it the prediction URL (POST, a JSON body), and is the server up?"
    return line
