"""Human output of the live bench: the closed loop's side-by-side table, the open loop's row
and its comparison with the simulated run of the same workload."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def render_live(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A rich table with one column per target, so two or three targets read side by side."""
    from rich.table import Table

    def f(value: Any, digits: int = 2) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    def pair(r: Mapping[str, Any], kind: str) -> str:
        return f"{f(r[f'{kind}_latency_p50_ms'])} / {f(r[f'{kind}_latency_p99_ms'])}"

    lines: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("requests", lambda r: str(r["requests"])),
        ("errors", lambda r: str(r["errors"])),
        ("hit ratio", lambda r: f(r["hit_ratio"], 3)),
        ("p50 ms", lambda r: f(r["latency_p50_ms"])),
        ("p95 ms", lambda r: f(r["latency_p95_ms"])),
        ("p99 ms", lambda r: f(r["latency_p99_ms"])),
        ("hit p50 / p99 ms", lambda r: pair(r, "hit")),
        ("miss p50 / p99 ms", lambda r: pair(r, "miss")),
        ("throughput req/s", lambda r: f(r["throughput_rps"], 1)),
        ("alone, est. req/s", lambda r: f(r["capacity_rps"], 1)),
        ("p50 vs first", lambda r: f"{f(r['p50_ratio_vs_first'], 3)}x"),
        ("p99 vs first", lambda r: f"{f(r['p99_ratio_vs_first'], 3)}x"),
    ]  # fmt: skip
    table = Table(title="live bench: real HTTP, targets interleaved")
    table.add_column("")
    for i, r in enumerate(rows):
        table.add_column(f"[{i + 1}] {_short(str(r['target']))}", justify="right")
    for name, cell in lines:
        table.add_row(name, *(cell(r) for r in rows))
    return table


def _short(url: str) -> str:
    """``http://127.0.0.1:8000/predict`` -> ``127.0.0.1:8000/predict`` (table headers)."""
    return url.split("://", 1)[-1]


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    v = float(value)
    return f"{v:.4g}" if abs(v) < 10 else f"{v:,.1f}"


def render_open(rows: Sequence[Mapping[str, Any]], diffs: Sequence[tuple[Any, ...]] | None) -> Any:
    """The open-loop row; with ``--compare-simulated``, the simulated row and the differences."""
    from rich.table import Table

    from predcache.bench.compare import COMPARED

    live = rows[0]
    table = Table(title=f"live bench, open loop at {live['rate']:g}/s: {live['target']}")
    table.add_column("")
    table.add_column("live", justify="right")
    if diffs is not None:
        table.add_column("simulated", justify="right")
        table.add_column("sim - live", justify="right")
        for label, a, b, diff, rel in diffs:
            shown = "-" if diff is None else _num(diff) + ("" if rel is None else f" ({rel:+.0%})")
            table.add_row(label, _num(a), _num(b), shown)
    else:
        for col, label in COMPARED:
            table.add_row(label, _num(live.get(col)))
    table.add_row("errors", _num(live["errors"]), *([""] * (2 if diffs is not None else 0)))
    return table


def open_footer(row: Mapping[str, Any]) -> list[str]:
    """The send lag and the client floor: how much of a latency is the client's own."""
    return [
        f"send lag p50 {_num(row['send_lag_p50_ms'])} ms, p99 {_num(row['send_lag_p99_ms'])} ms "
        f"({row['client_workers']} client threads); latency counts from each request's "
        "scheduled time",
        f"client floor (this client against a trivial local endpoint): p50 "
        f"{_num(row['client_floor_p50_ms'])} ms, p90 {_num(row['client_floor_p90_ms'])} ms; "
        f"a plain keep-alive http.client loop: p50 {_num(row['plain_loop_p50_ms'])} ms",
    ]
