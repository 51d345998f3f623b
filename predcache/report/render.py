"""Report output: rich tables (one per run), markdown, CSV and JSON.

Tables show the columns a run has (a live run's target, errors and throughput; a simulated
run's TTL, TTL model, ages and added error; new bench columns such as ``collapsed`` when
present); an empty cell is ``-``, never ``nan``. Tables are for people, so they are bounded
(:data:`MAX_TABLE_ROWS`); CSV and JSON carry every row.
"""

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
#: at most this many rows in a table or markdown output (all of them in csv and json)
MAX_TABLE_ROWS = 500


def num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(value: Any) -> str | None:
    """A cell as text; ``None`` for an empty (NaN) cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _ttl(value: Any) -> str:
    v = num(value)
    return "-" if v is None else format_duration(v)


def _int(value: Any) -> str:
    v = num(value)
    return "-" if v is None else f"{int(v):,}"


def _lat(value: Any) -> str:
    return format_latency(num(value))


#: (column, header, formatter): what the report shows, when the run has the column.
COLUMNS: tuple[tuple[str, str, Formatter], ...] = (
    ("target", "target", lambda v: _text(v) or "-"),
    ("ttl_s", "TTL", _ttl),
    ("requests", "requests", _int),
    ("errors", "errors", _int),
    ("hit_ratio", "hit\nratio", lambda v: fmt(num(v), ".3f")),
    ("expected_hit_ratio", "TTL\nmodel", lambda v: fmt(num(v), ".3f")),
    ("collapsed", "col-\nlapsed", _int),
    ("stale", "stale", _int),
    ("model_calls", "model\ncalls", _int),
    ("latency_mean_ms", "mean", _lat),
    ("latency_p50_ms", "p50", _lat),
    ("latency_p99_ms", "p99", _lat),
    ("throughput_rps", "req/s", lambda v: fmt(num(v), ",.1f")),
    ("speedup_vs_no_cache", "speed\nup", lambda v: fmt(num(v), ".1f", "x")),
    ("mean_age_s", "mean\nage", lambda v: fmt_age(num(v))),
    ("max_age_s", "max\nage", lambda v: fmt_age(num(v))),
    ("added_error_bps", "added\nbps", lambda v: fmt(num(v), "+.2f")),
    ("added_error_ci95_bps", "±95%", lambda v: fmt(num(v), ".2f")),
    ("drift_bps", "drift\nbps", lambda v: fmt(num(v), ".2f")),
)


def shown_columns(df: pd.DataFrame) -> list[tuple[str, str, Formatter]]:
    return [c for c in COLUMNS if c[0] in df.columns and df[c[0]].notna().any()]


def describe_run(group: pd.DataFrame) -> str:
    """The settings a run's rows share: mode, backend or target, traffic shape, simulated delay."""
    first = group.iloc[0]
    mode = _text(first.get("mode")) or "simulated"
    parts = [mode]
    if mode == "live":
        targets = [t for t in group.get("target", []) if _text(t)]
        parts.append(f"{len(targets)} target{'s' if len(targets) != 1 else ''}")
        concurrency = num(first.get("concurrency"))
        if concurrency is not None:
            parts.append(f"concurrency {concurrency:g}")
    backend = _text(first.get("backend"))
    if backend:
        parts.append(f"backend {backend}")
    parts.append(f"{_int(first.get('requests'))} requests" + (" per TTL" if mode != "live" else ""))
    for col, label in (("keys", "{:g} keys"), ("rate", "{:g}/s"), ("zipf", "zipf {:g}")):
        value = num(first.get(col))
        if value is not None:
            parts.append(label.format(value))
    strategy = _text(first.get("stampede"))
    if strategy:
        parts.append(f"stampede {strategy}")
    delay = num(first.get("model_delay_ms"))
    if delay is not None:
        parts.append(f"model delay {format_duration(delay / 1000)} (simulated)")
    fresh = num(first.get("mae_fresh_bps"))
    if fresh is not None:
        parts.append(f"fresh MAE {fresh:.2f} bps")
    return ", ".join(parts)


def bounded(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The first :data:`MAX_TABLE_ROWS` rows and how many were left out."""
    return df.iloc[:MAX_TABLE_ROWS], max(0, len(df) - MAX_TABLE_ROWS)


def rich_tables(df: pd.DataFrame) -> list[tuple[str, Any]]:
    """(title line, rich table) per run, rows sorted by TTL (the frame is sorted by load)."""
    from rich import box
    from rich.table import Table

    out = []
    for run_id, group in df.groupby("run_id", sort=True):
        cols = shown_columns(group)
        table = Table(box=box.SIMPLE_HEAD, collapse_padding=True, show_edge=False, pad_edge=False)
        cells = [[f(row.get(name)) for name, _, f in cols] for row in group.to_dict("records")]
        for i, (_, header, _f) in enumerate(cols):
            widest = max([len(r[i]) for r in cells] + [len(w) for w in header.split("\n")])
            table.add_column(header, justify="left" if i == 0 else "right", min_width=widest)
        for r in cells:
            table.add_row(*r)
        out.append((f"{run_id}: {describe_run(group)}", table))
    return out


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table of every row (run_id first), for READMEs and issues."""
    cols = shown_columns(df)
    headers = ["run"] + [h.replace("\n", " ").replace("- ", "") for _, h, _ in cols]
    lines = [
        "| " + " | ".join(headers) + " |",
        "| --- |" + " ---: |" * len(cols),
    ]
    for row in df.to_dict("records"):
        cells = [str(row["run_id"])] + [f(row.get(name)) for name, _, f in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(df: pd.DataFrame) -> None:
    """Every column of every row, as CSV on stdout."""
    df.to_csv(sys.stdout, index=False, lineterminator="\n")


def json_document(df: pd.DataFrame, recommended: dict[tuple[str, float], list[str]]) -> str:
    """Every row as one JSON list of objects (empty cells are null); a recommended row lists
    why. Serialised by pandas in C rather than row by row in Python, so a large folder (the
    100,000-row case in ``tests/test_report.py``) stays a single pass."""
    out = df.copy()
    reasons: list[list[str]] = [[] for _ in range(len(out))]
    if recommended and "ttl_s" in out.columns:
        keys = zip(out["run_id"].astype(str), out["ttl_s"], strict=True)
        for i, key in enumerate(keys):
            reasons[i] = recommended.get(key, [])
    out["recommended"] = reasons
    text: str = out.to_json(orient="records", double_precision=15, force_ascii=False)
    return text
