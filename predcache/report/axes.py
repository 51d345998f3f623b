"""Axis and style helpers shared by the report's figures: the log TTL axis, the logit hit-ratio
axis, baselines, and the one look every panel has (see :mod:`predcache.report.figures`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from predcache.durations import format_duration
from predcache.report.series import RunSeries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

#: TTLs worth a labelled tick: round durations people pick
NICE_TTLS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 43200, 86400)
MAX_TTL_LABELS = 7
LOGIT_TICKS = (0.1, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)
#: how a TTL-0 baseline is drawn (grey unless a run's colour tells several apart)
BASELINE_COLOUR, BASELINE_WIDTH = "0.45", 1.2
BASELINE_STYLE: Final = ":"


def run_colour(i: int) -> str:
    return f"C{i % 10}"


def new_figure(size: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained", dpi=110)


def finite_mask(values: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.isfinite(values)
    return out


def ttl_axis(ax: Axes, runs: Sequence[RunSeries]) -> None:
    """Log TTL axis from the smallest non-zero TTL; labelled round TTLs, measured ones as ticks."""
    from matplotlib.ticker import NullFormatter

    ttls = sorted({float(t) for r in runs for t in r.ttl_s if t > 0})
    ax.set_xlabel("TTL (log scale)")
    if not ttls:
        return
    lo, hi = ttls[0] / 1.5, ttls[-1] * 1.5
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    # the measured TTLs themselves when they fit, else round TTLs (measured ones stay as ticks)
    labelled = ttls if len(ttls) <= MAX_TTL_LABELS else [t for t in NICE_TTLS if lo <= t <= hi]
    if len(labelled) < 2:
        labelled = ttls
    while len(labelled) > MAX_TTL_LABELS:
        labelled = labelled[::2]
    ax.set_xticks(labelled, [format_duration(t) for t in labelled])
    ax.set_xticks(ttls, minor=True)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", which="minor", length=5, width=1.2, color="0.3")


def baseline_hline(ax: Axes, y: float, colour: str, label: str | None = None) -> None:
    ax.axhline(
        y, color=colour, linestyle=BASELINE_STYLE, linewidth=BASELINE_WIDTH, label=label or ""
    )


def baseline_handle() -> Line2D:
    from matplotlib.lines import Line2D

    return Line2D([], [], color=BASELINE_COLOUR, linestyle=BASELINE_STYLE, linewidth=BASELINE_WIDTH)


def draw_baseline(ax: Axes, y: float, text: str) -> None:
    if math.isfinite(y):
        baseline_hline(ax, y, BASELINE_COLOUR, text)


def plain_log_y(ax: Axes) -> None:
    """A log y axis labelled 0.002, 0.01, 1,000 rather than 2x10^-3 (and no minor labels).

    A panel with nothing positive to show (a hand-edited summary without its column) stays
    linear and empty: matplotlib cannot log-scale it."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ys = np.concatenate(
        [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()] or [np.empty(0)]
    )
    shown = ys[np.isfinite(ys) & (ys > 0)]
    if not len(shown):
        return
    if shown.min() == shown.max():  # one value: give the log axis a decade around it
        ax.set_ylim(shown.min() / 3, shown.max() * 3)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.10g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def style_axes(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def merged_marks(marks: Sequence[tuple[float, str]]) -> list[tuple[float, str]]:
    """One mark per TTL: two criteria that pick the same TTL share its label."""
    reasons: dict[float, list[str]] = {}
    for ttl, why in marks:
        reasons.setdefault(ttl, []).append(why)
    return [(ttl, ";\n".join(whys)) for ttl, whys in reasons.items()]


def limits_logit(ax: Axes, runs: Sequence[RunSeries], target: float | None) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter

    values = [float(h) for r in runs for h in r.hit_ratio if 0 < h < 1]
    if target is not None and 0 < target < 1:
        values.append(target)
    if not values:
        return
    lo, hi = min(values), max(values)
    # a little room on the logit scale: widen in log-odds
    odds_lo, odds_hi = math.log(lo / (1 - lo)) - 0.4, math.log(hi / (1 - hi)) + 0.4
    ax.set_xlim(1 / (1 + math.exp(-odds_lo)), 1 / (1 + math.exp(-odds_hi)))
    left, right = ax.get_xlim()
    shown = [t for t in LOGIT_TICKS if left <= t <= right]
    ax.xaxis.set_major_locator(FixedLocator(shown))
    ax.set_xticks(shown, [f"{t:g}" for t in shown])
    ax.xaxis.set_minor_formatter(NullFormatter())
