"""Write report figures to files: PNG, SVG or PDF, chosen by the file name's extension.

The figures themselves are pure functions in :mod:`predcache.report.figures`; this module only
checks where they go (before any work is done, so a bad name fails first), draws and saves.
Output is reproducible: no creation date is written into SVG or PDF, and SVG ids are salted
with a constant, so the same results give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from predcache.errors import BadInputError, PredcacheError
from predcache.report import figures
from predcache.report.series import RunSeries, run_series

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
DPI = 130
#: how many runs one figure can tell apart (colours, legend lines); more is refused
MAX_RUNS = 10
#: how many TTLs of one run a plot labels point by point; a longer sweep is refused
MAX_TTLS = 60


def plot_format(path: str | Path) -> str:
    """``png``, ``svg`` or ``pdf`` from the extension; a one-line error for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise BadInputError(
            f"--plot {path}: give a file name ending in .png, .svg or .pdf (the format follows it)"
        )
    return FORMATS[suffix]


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save ``fig`` in the format its extension names; returns the path."""
    import matplotlib

    target = Path(path).expanduser()
    fmt = plot_format(target)
    metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context({"svg.hashsalt": "predcache"}):
            fig.savefig(target, format=fmt, dpi=DPI, metadata=metadata[fmt])
    except OSError as exc:
        raise PredcacheError(f"cannot write the plot {target}: {exc.strerror or exc}") from None
    return target


def to_svg(fig: Figure) -> str:
    """The figure as one self-contained SVG document (for embedding in an HTML page)."""
    import io

    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "predcache"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def write_plot(
    df: pd.DataFrame,
    path: str | Path,
    *,
    error_budget: float | None = None,
    target_hit_ratio: float | None = None,
    marks: figures.Marks | None = None,
) -> Path:
    """The one-page sweep figure (:func:`figures.sweep_figure`) of ``df``'s simulated runs."""
    runs = check_plot(df, path)
    fig = figures.sweep_figure(
        runs, error_budget=error_budget, target_hit_ratio=target_hit_ratio, marks=marks
    )
    return save_figure(fig, path)


def check_plot(df: pd.DataFrame, path: str | Path) -> list[RunSeries]:
    """The runs to plot; a one-line :class:`BadInputError` for a file name of an unknown format
    or results that cannot make a readable plot (no TTLs, too many runs or TTLs)."""
    plot_format(path)
    runs = run_series(df)
    if not runs:
        raise BadInputError("nothing to plot: no simulated runs with a TTL in these results")
    if len(runs) > MAX_RUNS:
        raise BadInputError(
            f"{len(runs)} runs are too many for one plot (at most {MAX_RUNS}); "
            "pass fewer results folders"
        )
    crowded = next((r for r in runs if len(r.ttl_s) > MAX_TTLS), None)
    if crowded is not None:
        raise BadInputError(
            f"run {crowded.run_id} has {len(crowded.ttl_s):,} TTLs, too many to plot one labelled "
            f"point each (at most {MAX_TTLS})"
        )
    return runs
