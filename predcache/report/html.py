"""``predcache report --html FILE``: the whole report as one self-contained HTML file.

One file a team can open in any browser, attach to a review or print to PDF, on a machine
without internet: the style is inline, each plot is an SVG inside a ``data:`` URI (vector, so
it prints sharp; one document per plot, so the ids matplotlib writes never clash), and nothing
refers to another host. Per run: the parameters (params.json), the summary table with the
very cells of the terminal table (the same column list and formatters from :mod:`render`), the
recommendation when one was asked for, and the report's figures (:mod:`figures`: the decision
plot first). Live and simulated runs of one workload (same request count, keys, rate, Zipf and
seed) are shown side by side before the runs.
"""

from __future__ import annotations

import base64
import html
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from predcache.atomicfile import AtomicFile, shared_mode
from predcache.bench.render import fmt
from predcache.bench.results import PARAMS_FILE
from predcache.errors import BadInputError, PredcacheError
from predcache.report.recommend import Recommendation
from predcache.report.render import COLUMNS, Formatter, describe_run, num, shown_columns

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: columns that make two runs "the same workload" (the live and the simulated mode share them)
WORKLOAD_COLUMNS = ("workload", "requests", "keys", "rate", "zipf", "seed")
_F = {name: f for name, _, f in COLUMNS}


def _one_line(header: str) -> str:
    """A terminal header on one line: ``col-\nlapsed`` -> ``collapsed``."""
    return header.replace("-\n", "").replace("\n", " ")


#: (column, label, formatter) compared side by side for live vs simulated runs: the terminal
#: table's columns, less the two that tell the runs apart
COMPARED: tuple[tuple[str, str, Formatter], ...] = tuple(
    (name, ("latency " if name.startswith("latency_") else "") + _one_line(header), f)
    for name, header, f in COLUMNS
    if name not in ("target", "ttl_s")
)
#: the figures drawn per run, after the decision plot, two to a row
PARTS = ("miss-ratio", "added-error", "latency", "model-calls")

_STYLE = """
:root{--ink:#1d2330;--muted:#5a6273;--rule:#dde1e8;--soft:#f3f5f8}
body{font:15px/1.45 system-ui,sans-serif;color:var(--ink);max-width:72rem;margin:1.5rem auto;
padding:0 1rem}h1{margin:0 0 .2rem}h2{margin-top:2.2rem;border-bottom:2px solid var(--rule);
padding-bottom:.2rem;overflow-wrap:anywhere}h3{margin:1.2rem 0 .4rem}.muted{color:var(--muted)}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.92em}
th,td{padding:.25rem .6rem;border-bottom:1px solid var(--rule);text-align:right;
white-space:nowrap}th{font-weight:600;vertical-align:bottom}td:first-child,th:first-child{
text-align:left}table.params td,table.params th{text-align:left;white-space:normal}
pre{background:var(--soft);padding:.6rem;overflow-x:auto;white-space:pre-wrap;
overflow-wrap:anywhere;font-size:.85em}.rec{background:#eef6ee;border-left:4px solid #3a8a3a;
padding:.4rem .8rem;margin:.6rem 0}.rec.none{background:#fbf1e6;border-color:#c07a20}
img.plot{width:100%;height:auto;border:1px solid var(--rule)}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:.6rem}img.decision{max-width:52rem}
nav ul{columns:2;padding-left:1.2rem}
details{margin:.4rem 0}summary{cursor:pointer;color:var(--muted)}
@media (max-width:800px){nav ul{columns:1}.grid{grid-template-columns:1fr}}
@media print{body{max-width:none;margin:0;font-size:11px}nav{display:none}
details>*{display:block}section{break-inside:avoid-page}h2{break-after:avoid}
img.plot{break-inside:avoid}.scroll{overflow:visible}}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _anchor(run_id: str) -> str:
    return "run-" + re.sub(r"[^A-Za-z0-9_-]+", "-", run_id)


def load_params(summaries: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """params.json of each run folder (keyed by folder name, which is the run id); a missing
    or unreadable file gives no entry: the report says so instead of failing."""
    out: dict[str, dict[str, Any]] = {}
    for summary in summaries:
        try:
            data = json.loads((summary.parent / PARAMS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out[summary.parent.name] = data
    return out


def svg_data_uri(fig: Figure) -> str:
    """The figure as an SVG ``data:`` URI (text as paths: no font is fetched).

    The figure functions caption a figure with its run on one line, sized for the one-page
    sweep; on the narrower single figures here that line would be cut at the edges, so it is
    wrapped to the figure's width first."""
    from predcache.report.plot import to_svg

    title = fig.get_suptitle()
    if title:
        chars = max(40, int(fig.get_figwidth() * 12))
        lines = [textwrap.fill(line, chars) for line in title.split("\n")]
        fig.suptitle("\n".join(lines), fontsize=9)
    svg = to_svg(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def summary_table(group: pd.DataFrame) -> str:
    """The terminal table's cells for one run (its columns, its formatters), as HTML."""
    cols = shown_columns(group)
    head = "".join(f"<th>{_e(h).replace(chr(10), '<br>')}</th>" for _, h, _ in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(f(row.get(name)))}</td>" for name, _, f in cols) + "</tr>"
        for row in group.to_dict("records")
    )
    return f'<div class="scroll"><table class="summary"><tr>{head}</tr>{body}</table></div>'


def _value(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:12])
        return shown + (f", ... ({len(value)} in all)" if len(value) > 12 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return "-" if value is None else str(value)


def params_html(params: Mapping[str, Any] | None) -> str:
    """The run's command, then its options and facts (versions, machine) as a small table."""
    if not params:
        return f'<p class="muted">no readable {PARAMS_FILE} in this run folder</p>'
    parts = []
    if params.get("command"):
        parts.append(f"<pre>{_e(params['command'])}</pre>")
    rows: list[tuple[str, Any]] = []
    for key in ("mode", "created_utc"):
        if key in params:
            rows.append((key, params[key]))
    for section in ("options", "workload", "models", "versions", "machine"):
        value = params.get(section)
        if isinstance(value, dict):
            rows.extend((f"{section}.{k}", v) for k, v in value.items())
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_value(v))}</td></tr>" for k, v in rows)
    parts.append(
        f'<details><summary>parameters ({len(rows)})</summary><div class="scroll">'
        f'<table class="params">{cells}</table></div></details>'
    )
    return "".join(parts)


def _recommendation(pick: Recommendation) -> str:
    css = "rec" if pick.ttl_s is not None else "rec none"
    return f'<p class="{css}">Recommended: {_e(pick.line())}</p>'


def paired_workloads(df: pd.DataFrame) -> list[pd.DataFrame]:
    """Groups of rows with one workload that hold both live and simulated rows: a run with
    both modes (``bench --compare-simulated`` writes its two rows into one folder), and
    across runs, rows that share every workload column."""

    def both(group: pd.DataFrame) -> bool:
        return {"live", "simulated"} <= set(group["mode"].astype(str))

    if "mode" not in df.columns:
        return []
    groups = [g for _, g in df.groupby("run_id", sort=True) if both(g)]
    seen = {i for g in groups for i in g.index}
    keys = [c for c in WORKLOAD_COLUMNS if c in df.columns]
    if keys:
        for _, group in df.groupby(keys, dropna=False, sort=False):
            if both(group) and not set(group.index) <= seen:
                groups.append(group)
    return [g.sort_values("mode", kind="stable") for g in groups]  # live first


def _row_label(row: Any) -> str:
    if str(row.get("mode")) == "live":
        return f"live: {row.get('target', '-')}"
    return f"simulated: TTL {_F['ttl_s'](row.get('ttl_s'))}"


def comparison_html(group: pd.DataFrame) -> str:
    """One column per run row (live first), one row per compared figure."""
    rows = group.to_dict("records")
    head = "<th>workload " + _e(", ".join(_workload_bits(rows[0]))) + "</th>"
    head += "".join(
        f'<th><a href="#{_anchor(str(r["run_id"]))}">{_e(_row_label(r))}</a></th>' for r in rows
    )
    body = ""
    for name, label, f in COMPARED:
        if name not in group.columns or not group[name].notna().any():
            continue
        body += f"<tr><td>{_e(label)}</td>" + "".join(
            f"<td>{_e(f(r.get(name)))}</td>" for r in rows
        )
        body += "</tr>"
    return f'<div class="scroll"><table class="compare"><tr>{head}</tr>{body}</table></div>'


def _workload_bits(row: Any) -> list[str]:
    bits = []
    for col, spec in (("requests", ",.0f"), ("keys", "g"), ("rate", "g"), ("zipf", "g")):
        v = num(row.get(col))
        if v is not None:
            bits.append(f"{col} {fmt(v, spec)}")
    seed = num(row.get("seed"))
    if seed is not None:
        bits.append(f"seed {seed:g}")
    return bits


def plots_html(
    group: pd.DataFrame,
    picks: Sequence[Recommendation],
    *,
    error_budget: float | None,
    target_hit_ratio: float | None,
) -> str:
    """The decision plot (budget, target and picks marked), then the figures it is made of."""
    from predcache.report import figures, recommend
    from predcache.report.series import run_series

    runs = run_series(group)
    if not runs:
        return '<p class="muted">no TTL sweep to plot (a live run)</p>'
    run_id = runs[0].run_id
    decision = figures.decision_figure(
        runs,
        error_budget=error_budget,
        target_hit_ratio=target_hit_ratio,
        marks=recommend.marks(list(picks)),
    )
    parts = [
        f'<img class="plot decision" alt="{_e(f"decision plot for {run_id}")}" '
        f'src="{svg_data_uri(decision)}">'
    ]
    cells = []
    for kind in PARTS:
        fig = (
            figures.added_error_figure(runs, error_budget=error_budget)
            if kind == "added-error"
            else figures.FIGURES[kind](runs)
        )
        alt = f"{kind.replace('-', ' ')} against TTL for {run_id}"
        cells.append(f'<img class="plot" alt="{_e(alt)}" src="{svg_data_uri(fig)}">')
    parts.append(f'<div class="grid">{"".join(cells)}</div>')
    return "".join(parts)


def run_section(
    run_id: str,
    group: pd.DataFrame,
    params: Mapping[str, Any] | None,
    picks: Sequence[Recommendation],
    *,
    error_budget: float | None = None,
    target_hit_ratio: float | None = None,
) -> str:
    """One run: its settings line, parameters, table, recommendations and plots."""
    parts = [
        f'<section id="{_anchor(run_id)}" class="run"><h2>{_e(run_id)}</h2>',
        f'<p class="muted">{_e(describe_run(group))}</p>',
        params_html(params),
        summary_table(group),
    ]
    parts.extend(_recommendation(p) for p in picks)
    parts.append(
        plots_html(group, picks, error_budget=error_budget, target_hit_ratio=target_hit_ratio)
    )
    parts.append("</section>")
    return "".join(parts)


def render_report(
    df: pd.DataFrame,
    *,
    params: Mapping[str, Mapping[str, Any]],
    picks: Sequence[Recommendation] = (),
    sources: Sequence[str] = (),
    error_budget: float | None = None,
    target_hit_ratio: float | None = None,
    now: datetime | None = None,
) -> str:
    """The whole HTML document for every run in ``df`` (sorted as :mod:`load` sorts it)."""
    groups = list(df.groupby("run_id", sort=True))
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(
        f'<li><a href="#{_anchor(str(r))}">{_e(r)}</a> <span class="muted">'
        f"({_count(len(g), 'row')}, {_e(g.iloc[0].get('mode', 'simulated'))})</span></li>"
        for r, g in groups
    )
    head = (
        f'<header><h1>predcache bench report</h1><p class="muted">{_count(len(groups), "run")}, '
        f"{_count(len(df), 'row')}, from {_e(', '.join(sources) or '-')}; made {_e(when)}. "
        "Simulated runs replay the workload on a simulated clock (their model delay is simulated); "
        "live runs measured real HTTP requests.</p></header>"
        f"<nav><ul>{nav}</ul></nav>"
    )
    pairs = paired_workloads(df)
    compare = ""
    if pairs:
        compare = '<section id="live-vs-simulated"><h2>Live and simulated, side by side</h2>'
        compare += "".join(comparison_html(g) for g in pairs) + "</section>"
    runs = "".join(
        run_section(
            str(run_id),
            group,
            params.get(str(run_id)),
            [p for p in picks if p.run_id == str(run_id)],
            error_budget=error_budget,
            target_hit_ratio=target_hit_ratio,
        )
        for run_id, group in groups
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>predcache bench report</title><style>{_STYLE}</style></head>"
        f"<body><main>{head}{compare}{runs}</main></body></html>\n"
    )


def reserve(path: str | Path) -> AtomicFile:
    """Check ``--html PATH`` and reserve its temporary file now, before any work: a bad path
    is a usage error (exit 2) and leaves nothing behind; the file appears only when complete."""
    target = Path(path)
    if target.is_dir():
        raise BadInputError(f"--html {target}: is a folder; give a file name such as report.html")
    if not target.parent.is_dir():
        raise BadInputError(f"--html {target}: no such folder {target.parent}")
    try:
        return AtomicFile(target, mode=shared_mode())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise BadInputError(
            f"--html {target}: cannot write in {target.parent} ({reason})"
        ) from None


def write_report(
    out: AtomicFile,
    df: pd.DataFrame,
    *,
    picks: Sequence[Recommendation],
    sources: Sequence[str],
    error_budget: float | None = None,
    target_hit_ratio: float | None = None,
) -> Path:
    """Render the report for ``df`` (params.json read from the same folders) into ``out``."""
    from predcache.report.load import find_summaries

    page = render_report(
        df,
        params=load_params(find_summaries(sources)),
        picks=picks,
        sources=sources,
        error_budget=error_budget,
        target_hit_ratio=target_hit_ratio,
    )
    try:
        return out.commit(page)
    except OSError as exc:
        raise PredcacheError(f"cannot write {out.path}: {exc.strerror or exc}") from None
