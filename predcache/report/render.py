"""Report tables: rich (one table per run), markdown and csv (one flat table)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from predcache.bench.render import fmt, fmt_age
from predcache.durations import format_duration, format_latency

if TYPE_CHECKING:
    import pandas as pd

Formatter = Callable[[Any], str]


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _ttl(value: Any) -> str:
    v = _num(value)
    return "-" if v is None else format_duration(v)


def _int(value: Any) -> str:
    v = _num(value)
    return "-" if v is None else f"{int(v):,}"


#: (column, header, formatter): what the report shows, when the summary has the column.
COLUMNS: tuple[tuple[str, str, Formatter], ...] = (
    ("target", "target", lambda v: "-" if v is None or v != v else str(v)),  # NaN != NaN
    ("ttl_s", "TTL", _ttl),
    ("hit_ratio", "hit\nratio", lambda v: fmt(_num(v), ".3f")),
    ("expected_hit_ratio", "TTL\nmodel", lambda v: fmt(_num(v), ".3f")),
    ("model_calls", "model\ncalls", _int),
    ("latency_p50_ms", "p50", lambda v: format_latency(_num(v))),
    ("latency_p99_ms", "p99", lambda v: format_latency(_num(v))),
    ("speedup_vs_no_cache", "speed\nup", lambda v: fmt(_num(v), ".1f", "x")),
    ("mean_age_s", "mean\nage", lambda v: fmt_age(_num(v))),
    ("max_age_s", "max\nage", lambda v: fmt_age(_num(v))),
    ("added_error_bps", "added\nbps", lambda v: fmt(_num(v), "+.2f")),
)


def _shown(df: pd.DataFrame) -> list[tuple[str, str, Formatter]]:
    return [c for c in COLUMNS if c[0] in df.columns and df[c[0]].notna().any()]


def describe_run(group: pd.DataFrame) -> str:
    """The settings a run's rows share: mode, backend, traffic shape, simulated delay."""
    first = group.iloc[0]
    parts = [str(first.get("mode", "simulated")), f"backend {first.get('backend', '-')}"]
    parts.append(f"{_int(first.get('requests'))} requests")
    for col, label in (("keys", "{:g} keys"), ("rate", "{:g}/s"), ("zipf", "zipf {:g}")):
        value = _num(first.get(col))
        if value is not None:
            parts.append(label.format(value))
    delay = _num(first.get("model_delay_ms"))
    if delay is not None:
        parts.append(f"model delay {format_duration(delay / 1000)} (simulated)")
    if _num(first.get("mae_fresh_bps")) is not None:
        parts.append(f"fresh MAE {_num(first.get('mae_fresh_bps')):.2f} bps")
    return ", ".join(parts)


def rich_tables(df: pd.DataFrame) -> list[Any]:
    """One rich table per run, rows sorted by TTL (the frame is sorted by :mod:`load`)."""
    from rich import box
    from rich.table import Table

    cols = _shown(df)
    tables = []
    for run_id, group in df.groupby("run_id", sort=True):
        table = Table(
            title=f"{run_id}\n{describe_run(group)}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            collapse_padding=True,
            show_edge=False,
            pad_edge=False,
        )
        cells = [[f(row.get(name)) for name, _, f in cols] for _, row in group.iterrows()]
        for i, (_, header, _f) in enumerate(cols):
            widest = max([len(r[i]) for r in cells] + [len(w) for w in header.split("\n")])
            table.add_column(header, justify="left" if i == 0 else "right", min_width=widest)
        for r in cells:
            table.add_row(*r)
        tables.append(table)
    return tables


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table of every row (run_id first), for READMEs and issues."""
    cols = _shown(df)
    headers = ["run"] + [h.replace("\n", " ") for _, h, _ in cols]
    lines = [
        "| " + " | ".join(headers) + " |",
        "| --- |" + " ---: |" * len(cols),
    ]
    for _, row in df.iterrows():
        cells = [str(row["run_id"])] + [f(row.get(name)) for name, _, f in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(df: pd.DataFrame) -> None:
    """Every column of every row, as CSV on stdout."""
    df.to_csv(sys.stdout, index=False, lineterminator="\n")
