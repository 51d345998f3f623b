"""The one-glance PNG: what a TTL buys and what it costs, per run.

Three panels against TTL: hit ratio measured (solid) vs the TTL model (dashed); added error of
the served predictions (bps); latency p50 and p99 (log scale). Only simulated-mode rows have a
TTL, so live rows are left out. matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from predcache.durations import format_duration
from predcache.errors import BadInputError, PredcacheError

if TYPE_CHECKING:
    import pandas as pd


def plot_png(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the figure to ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = df[df["ttl_s"].notna()] if "ttl_s" in df.columns else df.iloc[0:0]
    if rows.empty:
        raise BadInputError("nothing to plot: no simulated rows with a TTL in these results")
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise BadInputError(f"--plot writes a PNG: give a file name ending in .png, not {target}")
    ttls = sorted(float(t) for t in rows["ttl_s"].unique())
    positive = [t for t in ttls if t > 0]
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), constrained_layout=True)
    hit_ax, err_ax, lat_ax = axes
    runs = list(rows.groupby("run_id", sort=True))
    for i, (_run_id, group) in enumerate(runs):
        g = group.sort_values("ttl_s")
        c = f"C{i % 10}"
        hit_ax.plot(g["ttl_s"], g["hit_ratio"], "o-", color=c)
        if "expected_hit_ratio" in g.columns:
            hit_ax.plot(g["ttl_s"], g["expected_hit_ratio"], "x--", color=c, alpha=0.8)
        err_ax.plot(g["ttl_s"], g["added_error_bps"], "o-", color=c)
        lat_ax.plot(g["ttl_s"], g["latency_p50_ms"], "o-", color=c)
        lat_ax.plot(g["ttl_s"], g["latency_p99_ms"], "s:", color=c)

    def key(*styles: tuple[str, Any]) -> list[Line2D]:
        return [Line2D([], [], color="black", linestyle=ls, marker=m) for m, ls in styles]

    hit_ax.legend(key(("o", "-"), ("x", "--")), ["measured", "TTL model"], fontsize=8)
    lat_ax.legend(key(("o", "-"), ("s", ":")), ["p50", "p99"], fontsize=8)
    delay = ""
    if "model_delay_ms" in rows.columns and rows["model_delay_ms"].notna().any():
        shown = format_duration(float(rows["model_delay_ms"].max()) / 1000)
        delay = f"\n(a miss includes a simulated {shown} model delay)"
    hit_ax.set(title="hit ratio: measured vs TTL model", ylabel="hit ratio", ylim=(0, 1.02))
    err_ax.set(title="accuracy cost of staleness", ylabel="added error of served vs fresh (bps)")
    err_ax.axhline(0, color="grey", linewidth=0.8)
    lat_ax.set(title=f"latency per request{delay}", ylabel="ms (log scale)", yscale="log")
    for ax in axes:
        if positive:
            ax.set_xscale("symlog", linthresh=min(positive))
        ax.set_xticks(ttls, [format_duration(t) for t in ttls])
        ax.set_xlabel("TTL")
        ax.grid(True, alpha=0.3)
    title = "predcache bench: what a TTL buys and costs (simulated clock)"
    if len(runs) == 1:
        title += f"\n{runs[0][0]!s}"
    else:
        handles = [Line2D([], [], color=f"C{i % 10}", marker="o") for i in range(len(runs))]
        fig.legend(handles, [str(r) for r, _ in runs], loc="outside lower center", ncols=2)
    fig.suptitle(title)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=110)
    except OSError as exc:
        raise PredcacheError(f"cannot write the plot {target}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return target
