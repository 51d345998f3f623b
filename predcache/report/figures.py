"""The report's figures, as pure functions: series in, a matplotlib ``Figure`` out.

One ``draw_*`` per panel (it draws into an ``Axes`` it is given) and one ``*_figure`` per plot
kind (a figure with that panel alone); :func:`sweep_figure` puts them all on one page. Nothing
here writes a file or touches pyplot's global state, so a figure can be saved as PNG, SVG or
PDF (:mod:`predcache.report.plot`) or embedded in an HTML page as SVG.

Conventions, the same in every panel: TTL on a log axis from the smallest non-zero TTL, with the
measured TTLs as minor ticks; TTL 0 (no cache) drawn apart as a grey baseline; markers only at
measured TTLs (nothing is drawn between two measurements as if it had been measured); one colour
per run, named in the legend by backend, rate, popularity, strategy and model delay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from predcache.durations import format_duration
from predcache.report.axes import (
    BASELINE_COLOUR,
    baseline_handle,
    baseline_hline,
    draw_baseline,
    finite_mask,
    limits_logit,
    merged_marks,
    new_figure,
    plain_log_y,
    run_colour,
    style_axes,
    ttl_axis,
)
from predcache.report.series import RunSeries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: run_id -> [(TTL, why)]: the TTLs to mark as recommended
Marks = Mapping[str, Sequence[tuple[float, str]]]
SIMULATED = "simulated clock"


# --------------------------------------------------------------------------- panels


def draw_decision(
    ax: Axes,
    runs: Sequence[RunSeries],
    *,
    error_budget: float | None = None,
    target_hit_ratio: float | None = None,
    marks: Marks | None = None,
) -> None:
    """The trade-off itself: added error against hit ratio, one labelled point per TTL."""
    for i, run in enumerate(runs):
        ok = finite_mask(run.hit_ratio) & finite_mask(run.added_error_bps)
        x = np.clip(run.hit_ratio[ok], 1e-4, 1 - 1e-4)
        y, ci = run.added_error_bps[ok], run.added_error_ci95_bps[ok]
        yerr = np.where(finite_mask(ci), ci, 0.0)
        ax.errorbar(
            x, y, yerr=yerr, fmt="o", color=run_colour(i), capsize=3, markersize=5, label=run.label
        )
        for xi, yi, t in zip(x, y, run.ttl_s[ok], strict=True):
            ax.annotate(
                format_duration(float(t)), (xi, yi), textcoords="offset points", xytext=(5, -11),
                fontsize=8, color=run_colour(i),
            )  # fmt: skip
        for ttl, why in merged_marks((marks or {}).get(run.run_id, ())):
            hit = run.hit_ratio[run.ttl_s == ttl]
            err = run.added_error_bps[run.ttl_s == ttl]
            if len(hit) and math.isfinite(hit[0]) and math.isfinite(err[0]):
                ax.plot(
                    [hit[0]], [err[0]], marker="*", markersize=17, markerfacecolor="none",
                    markeredgecolor="black", linestyle="none",
                )  # fmt: skip
                ax.annotate(
                    f"recommended {format_duration(ttl)}\n({why})", (hit[0], err[0]),
                    textcoords="offset points", xytext=(-10, 14), ha="right", fontsize=8,
                    arrowprops={"arrowstyle": "-", "color": "0.3"},
                )  # fmt: skip
    ax.set_xscale("logit")
    limits_logit(ax, runs, target_hit_ratio)
    if error_budget is not None and target_hit_ratio is not None and 0 < target_hit_ratio < 1:
        right = max(ax.get_xlim()[1], target_hit_ratio)
        bottom = min(ax.get_ylim()[0], 0.0)
        ax.fill_between(
            [target_hit_ratio, right], bottom, error_budget, color="C2", alpha=0.08, linewidth=0,
            label="meets both the budget and the target",
        )  # fmt: skip
    if error_budget is not None:
        ax.axhline(
            error_budget, color="C3", linestyle="--", label=f"error budget {error_budget:g} bps"
        )
    if target_hit_ratio is not None:
        ax.axvline(
            target_hit_ratio,
            color="C2",
            linestyle="--",
            label=f"target hit ratio {target_hit_ratio:g}",
        )
    baseline_hline(ax, 0.0, BASELINE_COLOUR, "TTL 0: no cache, no added error")
    style_axes(
        ax, "the decision: what each TTL buys and costs", "added error of served predictions (bps)"
    )
    ax.set_xlabel("hit ratio (logit scale: 0.9, 0.99, 0.999 equally spaced)")
    ax.legend(fontsize=8, loc="upper left")


def draw_miss_ratio(ax: Axes, runs: Sequence[RunSeries]) -> None:
    """1 - hit ratio on a log axis: measured (with its sampling interval) and the TTL model."""
    for i, run in enumerate(runs):
        c = run_colour(i)
        ok = finite_mask(run.hit_ratio) & (run.miss_ratio > 0)
        low, high = run.miss_ratio_interval()
        y = run.miss_ratio[ok]
        yerr = np.vstack([y - low[ok], high[ok] - y])
        ax.errorbar(run.ttl_s[ok], y, yerr=yerr, fmt="o", color=c, capsize=3, markersize=5)
        if run.model is not None and len(run.ttl_s):
            grid = np.geomspace(run.ttl_s.min() / 1.5, run.ttl_s.max() * 1.5, 160)
            ax.plot(grid, 1 - run.model(grid), "--", color=c, linewidth=1.2)
        else:
            ax.plot(run.ttl_s, 1 - run.expected_hit_ratio, "x", color=c, markersize=7)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="black", marker="o", linestyle="none"),
        Line2D([], [], color="black", linestyle="--"),
    ]
    ax.legend(
        handles,
        ["measured, 95% sampling interval", "TTL model (Jung et al. 2003)"],
        fontsize=8,
        loc="lower left",
    )
    plain_log_y(ax)
    ttl_axis(ax, runs)
    style_axes(ax, "miss ratio: measured vs TTL model", "1 - hit ratio (log scale)")


def draw_added_error(
    ax: Axes, runs: Sequence[RunSeries], *, error_budget: float | None = None
) -> None:
    """Added error per TTL, with its 95% confidence band from the market paths."""
    for i, run in enumerate(runs):
        c = run_colour(i)
        ok = finite_mask(run.added_error_bps)
        x, y, ci = run.ttl_s[ok], run.added_error_bps[ok], run.added_error_ci95_bps[ok]
        band = finite_mask(ci)
        if band.any():
            ax.fill_between(
                x[band], (y - ci)[band], (y + ci)[band], color=c, alpha=0.18, linewidth=0
            )
            ax.errorbar(x[band], y[band], yerr=ci[band], fmt="none", ecolor=c, capsize=3, alpha=0.7)
        ax.plot(x, y, "o", color=c, markersize=5)
    draw_baseline(ax, 0.0, "TTL 0: no added error")
    if error_budget is not None:
        ax.axhline(
            error_budget, color="C3", linestyle="--", label=f"error budget {error_budget:g} bps"
        )
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    handles.append(Patch(color="0.5", alpha=0.3))
    labels.append("95% confidence band over the market paths")
    ax.legend(handles, labels, fontsize=8, loc="upper left")
    ttl_axis(ax, runs)
    style_axes(ax, "accuracy cost of staleness", "added error vs fresh predictions (bps)")


def draw_latency(ax: Axes, runs: Sequence[RunSeries]) -> None:
    """Mean and p99 latency per TTL (log scale), against the TTL-0 baseline."""
    for i, run in enumerate(runs):
        c = run_colour(i)
        ax.plot(run.ttl_s, run.latency_mean_ms, "o", color=c, markersize=5)
        ax.plot(run.ttl_s, run.latency_p99_ms, "^", color=c, markersize=6, markerfacecolor="none")
        if run.baseline is not None:
            baseline_hline(ax, run.baseline.latency_mean_ms, c)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="black", marker="o", linestyle="none"),
        Line2D([], [], color="black", marker="^", markerfacecolor="none", linestyle="none"),
        baseline_handle(),
    ]
    ax.legend(handles, ["mean", "p99", "TTL 0 (no cache): mean"], fontsize=8, loc="center left")
    plain_log_y(ax)
    ttl_axis(ax, runs)
    style_axes(ax, "latency per request", "ms (log scale)")


def draw_model_calls(ax: Axes, runs: Sequence[RunSeries]) -> None:
    """How many times the model ran per TTL (log scale), against TTL 0 (once per request)."""
    for i, run in enumerate(runs):
        c = run_colour(i)
        ax.plot(run.ttl_s, run.model_calls, "o", color=c, markersize=5)
        if run.baseline is not None:
            baseline_hline(ax, run.baseline.model_calls, c)
    from matplotlib.lines import Line2D

    ax.legend(
        [Line2D([], [], color="black", marker="o", linestyle="none"), baseline_handle()],
        ["model calls", "TTL 0 (no cache): one per request"],
        fontsize=8,
        loc="lower left",
    )
    plain_log_y(ax)
    ttl_axis(ax, runs)
    style_axes(ax, "model calls", "model calls (log scale)")


# --------------------------------------------------------------------------- figures


def decision_figure(
    runs: Sequence[RunSeries],
    *,
    error_budget: float | None = None,
    target_hit_ratio: float | None = None,
    marks: Marks | None = None,
) -> Figure:
    fig = new_figure((7.5, 5.2))
    draw_decision(
        fig.add_subplot(), runs, error_budget=error_budget, target_hit_ratio=target_hit_ratio,
        marks=marks,
    )  # fmt: skip
    _caption(fig, runs)
    return fig


def miss_ratio_figure(runs: Sequence[RunSeries]) -> Figure:
    fig = new_figure((7, 4.8))
    draw_miss_ratio(fig.add_subplot(), runs)
    _caption(fig, runs)
    return fig


def added_error_figure(runs: Sequence[RunSeries], *, error_budget: float | None = None) -> Figure:
    fig = new_figure((7, 4.8))
    draw_added_error(fig.add_subplot(), runs, error_budget=error_budget)
    _caption(fig, runs)
    return fig


def latency_figure(runs: Sequence[RunSeries]) -> Figure:
    fig = new_figure((7, 4.8))
    draw_latency(fig.add_subplot(), runs)
    _caption(fig, runs)
    return fig


def model_calls_figure(runs: Sequence[RunSeries]) -> Figure:
    fig = new_figure((7, 4.8))
    draw_model_calls(fig.add_subplot(), runs)
    _caption(fig, runs)
    return fig


def sweep_figure(
    runs: Sequence[RunSeries],
    *,
    error_budget: float | None = None,
    target_hit_ratio: float | None = None,
    marks: Marks | None = None,
) -> Figure:
    """Every panel on one page: the decision first, then what it is made of."""
    fig = new_figure((17, 10))
    axes = fig.subplot_mosaic([["D", "D", "M"], ["E", "L", "C"]])
    draw_decision(
        axes["D"], runs, error_budget=error_budget, target_hit_ratio=target_hit_ratio, marks=marks
    )
    draw_miss_ratio(axes["M"], runs)
    draw_added_error(axes["E"], runs, error_budget=error_budget)
    draw_latency(axes["L"], runs)
    draw_model_calls(axes["C"], runs)
    _caption(fig, runs, title="predcache bench: what a TTL buys and what it costs")
    return fig


def _caption(fig: Figure, runs: Sequence[RunSeries], *, title: str | None = None) -> None:
    """Runs and colours in one legend line (or the single run's name), and what is simulated."""
    from matplotlib.lines import Line2D

    note = f"{SIMULATED}; markers only at measured TTLs"
    head = f"{title}\n" if title else ""
    if len(runs) == 1:
        fig.suptitle(f"{head}{runs[0].run_id}: {runs[0].label}; {note}", fontsize=11)
        return
    fig.suptitle(f"{head}{note}", fontsize=11)
    handles = [
        Line2D([], [], color=run_colour(i), marker="o", linestyle="none") for i in range(len(runs))
    ]
    fig.legend(
        handles,
        [f"{r.run_id}: {r.label}" for r in runs],
        loc="outside lower center",
        ncols=1 if len(runs) > 4 else 2,
        fontsize=8,
    )


#: plot kind -> the figure function (what ``report --plot`` and the HTML report can draw)
FIGURES = {
    "sweep": sweep_figure,
    "decision": decision_figure,
    "miss-ratio": miss_ratio_figure,
    "added-error": added_error_figure,
    "latency": latency_figure,
    "model-calls": model_calls_figure,
}
