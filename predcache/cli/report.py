"""``predcache report``: tables, a plot and TTL recommendations over bench results folders."""

from __future__ import annotations

import math

import typer

from predcache.cli.app import app
from predcache.errors import BadInputError

FORMATS = ("table", "markdown", "csv")


@app.command()
def report(
    paths: list[str] | None = typer.Argument(
        None, help="Results folders (searched recursively for summary.csv). \\[default: results/]"
    ),
    fmt: str = typer.Option("table", "--format", help="table | markdown | csv."),
    plot: str | None = typer.Option(
        None, "--plot", help="Also write a PNG: hit ratio, added error and latency vs TTL."
    ),
    error_budget: float | None = typer.Option(
        None, "--error-budget", help="Recommend the largest TTL whose added error is <= BPS."
    ),
    target_hit_ratio: float | None = typer.Option(
        None, "--target-hit-ratio", help="Recommend the smallest TTL reaching this hit ratio."
    ),
) -> None:
    """Show every bench run under PATHS, sorted by run and TTL; optionally plot and recommend."""
    if fmt not in FORMATS:
        raise BadInputError(f"bad --format {fmt!r}: use {', '.join(FORMATS)}")
    if error_budget is not None and not (math.isfinite(error_budget) and error_budget >= 0):
        raise BadInputError(f"bad --error-budget {error_budget}: a number of bps >= 0")
    if target_hit_ratio is not None and not (0 < target_hit_ratio <= 1):
        raise BadInputError(f"bad --target-hit-ratio {target_hit_ratio}: between 0 and 1")

    from rich.console import Console

    from predcache.report import recommend, render
    from predcache.report.load import load_summaries

    df = load_summaries(paths or ["results"])
    out = Console()
    notes = Console(stderr=True) if fmt == "csv" else out  # keep csv on stdout parseable
    if fmt == "csv":
        render.write_csv(df)
    elif fmt == "markdown":
        out.print(render.markdown(df), markup=False, highlight=False, soft_wrap=True)
    else:
        for table in render.rich_tables(df):
            out.print(table)
    if plot is not None:
        from predcache.report.plot import plot_png

        notes.print(f"plot: {plot_png(df, plot)}", highlight=False, soft_wrap=True)
    picks: list[recommend.Recommendation] = []
    if error_budget is not None:
        picks += recommend.within_error_budget(df, error_budget)
    if target_hit_ratio is not None:
        picks += recommend.reaching_hit_ratio(df, target_hit_ratio)
    for pick in picks:
        notes.print(f"recommended: {pick.line()}", highlight=False, soft_wrap=True, markup=False)
