"""``predcache bench``: a TTL experiment on a simulated clock (and, with --target, live HTTP).

Thin by design: parse and validate the options into :class:`BenchOptions`, call
:func:`predcache.bench.runner.run_bench` (the whole simulated run is that one call), render.
The live load generator (``--target``) lives in ``predcache.bench.live``; this module only
dispatches to it, see :mod:`predcache.cli.bench_live`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer

from predcache import config
from predcache.cli import options
from predcache.cli.app import app
from predcache.durations import parse_duration, parse_duration_list, parse_minute_horizons
from predcache.errors import BadInputError
from predcache.pairs import DEFAULT_PAIRS, parse_pair_list
from predcache.sizes import parse_size

DEFAULT_HORIZONS = "1m,5m,15m"
DEFAULT_OUT = "results"


def _check_trace_alone(trace: str | None, synthetic: dict[str, object]) -> None:
    given = [name for name, value in synthetic.items() if value is not None]
    if trace is not None and given:
        raise BadInputError(
            f"--trace replaces the synthetic workload; drop {', '.join(given)} "
            "(the trace says when and what is requested)"
        )


def progress_factory(enabled: bool) -> tuple[Any, Callable[[str, int], Callable[[int], None]]]:
    """A rich progress bar on stderr (off when not a TTY), and the engine's callback factory."""
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(
        console=Console(stderr=True),
        transient=True,
        disable=not (enabled and sys.stderr.isatty()),
    )

    def start(description: str, total: int) -> Callable[[int], None]:
        if not progress.live.is_started:
            progress.start()
        task = progress.add_task(description, total=total)
        return lambda done: progress.update(task, completed=done)

    return progress, start


@app.command()
def bench(
    ttl: str | None = typer.Option(
        None,
        "--ttl",
        help="TTL, or a comma-separated sweep such as 0,30,90,300 (0 = no cache). "
        "\\[default: 90; with --compare-simulated: the server's]",
    ),
    requests: int | None = typer.Option(
        None, "--requests", help="Requests per TTL. \\[default: 20000; live mode: 1000]"
    ),
    rate: float | None = typer.Option(
        None,
        "--rate",
        help="Poisson arrivals per second (simulated time; with --target, the live open loop's "
        "real rate). \\[default: 5]",
    ),
    pairs: str | None = typer.Option(
        None, "--pairs", help=f"Comma-separated pairs. \\[default: {','.join(DEFAULT_PAIRS)}]"
    ),
    horizons: str | None = typer.Option(
        None, "--horizons", help=f"Comma-separated horizons. \\[default: {DEFAULT_HORIZONS}]"
    ),
    zipf: float | None = typer.Option(
        None, "--zipf", help="Zipf exponent of key popularity, 0 = uniform. \\[default: 1.0]"
    ),
    seed: int | None = typer.Option(None, "--seed", help="Workload seed. \\[default: 0]"),
    start: str | None = typer.Option(
        None,
        "--start",
        help="Market time where traffic begins, ISO 8601 or epoch seconds. "
        "\\[default: 2025-06-02T00:00:00Z]",
    ),
    trace: str | None = typer.Option(
        None,
        "--trace",
        help="Replay this trace (timestamp,pair,horizon; CSV, or Parquet for a *.parquet file) "
        "instead of synthetic traffic; read in chunks.",
    ),
    model_delay: str | None = typer.Option(
        None,
        "--model-delay",
        help="Simulated extra model time per computation (never slept). "
        "\\[default: 1s; with --compare-simulated: the server's]",
    ),
    stampede: str | None = typer.Option(
        None,
        "--stampede",
        help="What requests do while their key is computed: coalesce (wait: single-flight), "
        "none (compute too), stale-while-revalidate, refresh-ahead; comma-separated to sweep. "
        "\\[default: coalesce]",
    ),
    stale_grace: str | None = typer.Option(
        None,
        "--stale-grace",
        help="stale-while-revalidate: serve an entry this long after it expires, e.g. 5s.",
    ),
    model_concurrency: int | None = typer.Option(
        None,
        "--model-concurrency",
        help="Simulated model workers: at most N computations at once, the rest queue. "
        "\\[default: unlimited]",
    ),
    model_fail_rate: float | None = options.MODEL_FAIL_RATE,
    stale_if_error: str | None = options.STALE_IF_ERROR,
    backend: str | None = options.BACKEND,
    cache_dir: str | None = options.CACHE_DIR,
    size_limit: str | None = options.SIZE_LIMIT,
    market_paths: int = typer.Option(
        32,
        "--market-paths",
        min=1,
        max=1024,
        metavar="<int>",
        help="Score the accuracy cost on this many synthetic market paths, 1-1024 "
        "(1 = only the real one).",
    ),
    models_dir: str | None = options.MODELS_DIR,
    model: str | None = options.MODEL,
    model_version: str | None = options.MODEL_VERSION,
    out: str = typer.Option(DEFAULT_OUT, "--out", help="Where the run's results folder goes."),
    label: str | None = typer.Option(None, "--label", help="Short name for the results folder."),
    save_requests: str | None = typer.Option(
        None,
        "--save-requests",
        metavar="[PATH]",
        help="Also write every request of every row, streamed: to PATH (CSV, or Parquet for a "
        "*.parquet PATH), or alone to requests.csv in the results folder. \\[default: off]",
    ),
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        help="Run the rows (TTL x strategy) in this many processes at once; the counts are the "
        "same as with 1. \\[default: the number of cores, once the rows hold 400,000 requests; "
        "1 below, where starting processes costs more than it saves]",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the summary rows as one JSON list, nothing else on stdout."
    ),
    target: list[str] | None = typer.Option(
        None,
        "--target",
        help="Live mode: load-test this prediction API URL (repeatable); a server's address "
        "alone (http://127.0.0.1:8000) means its /predict.",
    ),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        help="Live mode without --rate: a closed loop of N connections. \\[default: 4]",
    ),
    compare_simulated: bool = typer.Option(
        False,
        "--compare-simulated",
        help="Live open loop: then simulate the same workload with the server's --ttl, "
        "--model-delay and --stampede, and print both with their differences.",
    ),
    duration: str | None = typer.Option(
        None,
        "--duration",
        help="Live mode: run for this long instead of --requests, e.g. 30s or 1m30s.",
    ),
    body_template: str | None = typer.Option(
        None,
        "--body-template",
        help="Live mode: JSON request body template, {pair} and {horizon} filled in. "
        '\\[default: {"product_id": "{pair}", "horizon": "{horizon}"}]',
    ),
) -> None:
    """Measure what a TTL buys (hit ratio, latency, model calls) and costs (age, added error)."""
    live = {"--concurrency": concurrency, "--duration": duration, "--body-template": body_template,
            "--compare-simulated": compare_simulated or None}  # fmt: skip
    if target:
        simulated_only = {
            "--trace": trace, "--size-limit": size_limit, "--model-concurrency": model_concurrency,
            "--model": model, "--model-version": model_version, "--jobs": jobs,
            "--model-fail-rate": model_fail_rate, "--stale-if-error": stale_if_error,
        }  # fmt: skip
        if not compare_simulated:
            simulated_only.update(
                {"--ttl": ttl, "--model-delay": model_delay, "--stampede": stampede,
                 "--stale-grace": stale_grace}
            )  # fmt: skip
        given = [name for name, value in simulated_only.items() if value is not None]
        if given:
            raise BadInputError(
                f"{', '.join(given)} only apply to the simulated mode (no --target)"
                + ("" if compare_simulated else " or to --compare-simulated")
            )
        if compare_simulated and rate is None:
            raise BadInputError("--compare-simulated needs --rate (the open-loop workload)")
        if rate is not None and concurrency is not None:
            raise BadInputError("use --rate (open loop) or --concurrency (closed loop), not both")
        from predcache.bench.live_options import (
            DEFAULT_BODY_TEMPLATE,
            DEFAULT_CONCURRENCY,
            LiveOptions,
            predict_url,
        )
        from predcache.bench.workload import DEFAULT_START, parse_start
        from predcache.cli.bench_live import (
            comparison,
            live_requests,
            live_save,
            run_live,
        )

        start_text = start or DEFAULT_START
        live_opts = LiveOptions(
            targets=[predict_url(t) for t in target],
            pairs=parse_pair_list(pairs) if pairs else list(DEFAULT_PAIRS),
            horizons_s=parse_minute_horizons(horizons or DEFAULT_HORIZONS),
            requests=live_requests(requests, duration),
            duration_s=None if duration is None else parse_duration(duration, name="duration"),
            rate=rate,
            concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency,
            body_template=body_template or DEFAULT_BODY_TEMPLATE,
            zipf=1.0 if zipf is None else zipf,
            seed=0 if seed is None else seed,
            start=start_text,
            start_s=parse_start(start_text),
            out=out,
            label=label,
            save_requests=live_save(save_requests),
            compare=comparison(target[0], ttl, model_delay, stampede, stale_grace)
            if compare_simulated
            else None,
        )
        run_live(live_opts.check(), as_json=as_json)
        return
    given_live = [name for name, value in live.items() if value is not None]
    if given_live:
        raise BadInputError(f"{', '.join(given_live)} only apply to the live mode (--target URL)")
    _check_trace_alone(
        trace,
        {"--requests": requests, "--rate": rate, "--pairs": pairs, "--horizons": horizons,
         "--zipf": zipf, "--seed": seed, "--start": start},
    )  # fmt: skip

    from predcache.bench.runner import BenchOptions
    from predcache.bench.workload import (
        DEFAULT_RATE,
        DEFAULT_REQUESTS,
        DEFAULT_START,
        DEFAULT_ZIPF,
        parse_start,
    )
    from predcache.stampede import DEFAULT_STRATEGY, check_grace, parse_strategy_list

    strategies = parse_strategy_list(DEFAULT_STRATEGY if stampede is None else stampede)
    grace_s = check_grace(
        strategies, None if stale_grace is None else parse_duration(stale_grace, name="stale-grace")
    )
    if jobs is not None and jobs < 1:
        raise BadInputError(f"bad --jobs {jobs}: must be at least 1 (rows run in N processes)")
    if model_concurrency is not None and model_concurrency < 1:
        raise BadInputError(f"bad --model-concurrency {model_concurrency}: must be at least 1")
    from predcache.faults import check_fail_rate
    from predcache.plugin import normalize_spec

    start_text = start or DEFAULT_START
    opts = BenchOptions(
        ttls_s=parse_duration_list("90" if ttl is None else ttl, name="ttl"),
        requests=DEFAULT_REQUESTS if requests is None else requests,
        rate=DEFAULT_RATE if rate is None else rate,
        pairs=parse_pair_list(pairs) if pairs else list(DEFAULT_PAIRS),
        horizons_s=parse_minute_horizons(horizons or DEFAULT_HORIZONS),
        zipf=DEFAULT_ZIPF if zipf is None else zipf,
        seed=0 if seed is None else seed,
        start=start_text,
        start_s=parse_start(start_text),
        model_delay_s=parse_duration(
            "1s" if model_delay is None else model_delay, name="model-delay"
        ),
        backend=config.backend_spec(backend),
        out=out,
        trace=trace,
        cache_dir=cache_dir,
        models_dir=models_dir,
        size_limit=None if size_limit is None else parse_size(size_limit, name="size-limit"),
        market_paths=market_paths,
        save_requests=False if save_requests is None else save_requests,
        jobs=jobs,
        label=label,
        stampedes=strategies,
        stale_grace_s=grace_s,
        model_concurrency=model_concurrency,
        model_fail_rate=check_fail_rate(model_fail_rate or 0.0),
        stale_if_error_s=parse_duration(stale_if_error or "0", name="stale-if-error"),
        model=None if model is None else normalize_spec(model),
        model_version=model_version,
    )
    _run_simulated(opts, as_json=as_json)


def _run_simulated(opts: Any, *, as_json: bool) -> None:
    """The simulated path: one call to run_bench, then JSON or the header, table and footer."""
    from rich.console import Console

    from predcache.bench import render
    from predcache.bench.runner import run_bench
    from predcache.bench.workload import Workload
    from predcache.cli.render import print_json
    from predcache.factory import notify_stderr

    console = Console()

    def header(workload: Workload) -> None:
        if not as_json:
            for line in render.header_lines(opts, workload):
                console.print(line, highlight=False, soft_wrap=True)

    progress, start = progress_factory(enabled=True)  # on stderr: --json's stdout stays clean
    try:
        result = run_bench(opts, notify=notify_stderr, progress=start, on_ready=header)
    finally:
        progress.stop()
    if as_json:
        from predcache.bench.results import clean_rows

        print_json(clean_rows(result.rows))
        return
    console.print(render.table_title(result, opts), highlight=False, soft_wrap=True)
    console.print(render.render_table(result, opts))
    for line in render.footer_lines(result):
        console.print(line, highlight=False, soft_wrap=True)
