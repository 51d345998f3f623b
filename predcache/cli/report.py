"""``predcache report``: tables, JSON, a plot and TTL recommendations over bench results."""

from __future__ import annotations

import contextlib
import math
import sys
from typing import TYPE_CHECKING, Any

import typer

from predcache.cli.app import app
from predcache.errors import BadInputError, PredcacheError

if TYPE_CHECKING:
    from rich.console import Console

    from predcache.atomicfile import AtomicFile

FORMATS = ("table", "markdown", "csv")


def _console(*, stderr: bool = False) -> Console:
    """A rich console that never wraps a line mid-way when piped: a terminal's own width,
    else wide enough for any table (rich would otherwise assume 80 columns)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 10_000, soft_wrap=True)


@app.command()
def report(
    paths: list[str] | None = typer.Argument(
        None, help="Results folders (searched recursively for summary.csv). \\[default: results/]"
    ),
    fmt: str = typer.Option("table", "--format", help="table | markdown | csv."),
    as_json: bool = typer.Option(
        False, "--json", help="Print every row as one JSON list, nothing else on stdout."
    ),
    plot: str | None = typer.Option(
        None,
        "--plot",
        help="Also draw the sweep (decision, miss ratio, added error, latency, model calls) "
        "into this file; its extension (png, svg or pdf) picks the format.",
    ),
    error_budget: float | None = typer.Option(
        None, "--error-budget", help="Recommend the largest TTL whose added error is <= BPS."
    ),
    target_hit_ratio: float | None = typer.Option(
        None, "--target-hit-ratio", help="Recommend the smallest TTL reaching this hit ratio."
    ),
    html_file: str | None = typer.Option(
        None,
        "--html",
        metavar="FILE",
        help="Also write the whole report (tables, parameters, picks, plots) as one "
        "self-contained HTML file: opens offline, prints to PDF.",
    ),
) -> None:
    """Show every bench run under PATHS, sorted by run and TTL; optionally plot and recommend.

    Exit 1 when --error-budget or --target-hit-ratio finds no TTL in any run."""
    if fmt not in FORMATS:
        raise BadInputError(f"bad --format {fmt!r}: use {', '.join(FORMATS)}")
    if as_json and fmt != "table":
        raise BadInputError("--json replaces --format; give one of them")
    if error_budget is not None and not (math.isfinite(error_budget) and error_budget >= 0):
        raise BadInputError(f"bad --error-budget {error_budget}: a number of bps >= 0")
    if target_hit_ratio is not None and not (0 < target_hit_ratio <= 1):
        raise BadInputError(f"bad --target-hit-ratio {target_hit_ratio}: between 0 and 1")
    from predcache.report.plot import plot_format

    if plot is not None:
        plot_format(plot)  # a bad file name fails before anything is printed
    html_out = None
    if html_file is not None:
        from predcache.report import html

        html_out = html.reserve(html_file)  # a bad path fails now; removed unless written
    with html_out or contextlib.nullcontext():
        _report(paths or ["results"], fmt, as_json, plot, error_budget, target_hit_ratio, html_out)


def _report(
    sources: list[str],
    fmt: str,
    as_json: bool,
    plot: str | None,
    error_budget: float | None,
    target_hit_ratio: float | None,
    html_out: AtomicFile | None,
) -> None:
    from predcache.report import recommend
    from predcache.report.load import load_summaries

    df = load_summaries(sources)
    if plot is not None:
        from predcache.report.plot import check_plot

        check_plot(df, plot)  # what cannot be plotted fails before anything is printed
    picks: list[recommend.Recommendation] = []
    if error_budget is not None:
        picks += recommend.within_error_budget(df, error_budget)
    if target_hit_ratio is not None:
        picks += recommend.reaching_hit_ratio(df, target_hit_ratio)

    machine = as_json or fmt == "csv"
    notes = _console(stderr=machine)  # keep csv and json on stdout parseable
    _show(df, fmt, as_json, picks)
    if plot is not None:
        from predcache.config import display_path
        from predcache.report.plot import write_plot

        written = write_plot(
            df, plot, error_budget=error_budget, target_hit_ratio=target_hit_ratio,
            marks=recommend.marks(picks),
        )  # fmt: skip
        notes.print(f"plot: {display_path(written)}", highlight=False, markup=False)
    if html_out is not None:  # written even when a pick is impossible: it says why
        from predcache.config import display_path
        from predcache.report import html

        page = html.write_report(
            html_out, df, picks=picks, sources=sources, error_budget=error_budget,
            target_hit_ratio=target_hit_ratio,
        )  # fmt: skip
        notes.print(f"html: {display_path(page)}", highlight=False, markup=False)
    problem = recommend.unmet(picks)
    for pick in picks:
        if pick.ttl_s is not None:
            notes.print(f"recommended: {pick.line()}", highlight=False, markup=False)
        elif problem is None:  # other runs have an answer: say why this one has none
            notes.print(f"no recommendation: {pick.line()}", highlight=False, markup=False)
    if problem is not None:
        raise PredcacheError(problem)


def _show(df: Any, fmt: str, as_json: bool, picks: list[Any]) -> None:
    from predcache.report import render

    if as_json:
        why: dict[tuple[str, float], list[str]] = {}
        for p in picks:
            if p.ttl_s is not None:
                why.setdefault((p.run_id, p.ttl_s), []).append(p.reason)
        sys.stdout.write(render.json_document(df, why) + "\n")
        return
    if fmt == "csv":
        render.write_csv(df)
        return
    shown, left_out = render.bounded(df)
    out = _console()
    if fmt == "markdown":
        out.print(render.markdown(shown), markup=False, highlight=False)
    else:
        for i, (title, table) in enumerate(render.rich_tables(shown)):
            if i:
                out.print()
            out.print(title, markup=False, highlight=False)
            out.print(table)
    if left_out:  # on stderr, so a piped table stays a table
        _console(stderr=True).print(
            f"showing the first {len(shown):,} of {len(df):,} rows; "
            "--format csv or --json prints them all",
            highlight=False,
            markup=False,
        )
