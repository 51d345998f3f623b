"""``predcache report --html``: one self-contained file, checked in a real headless Chromium
(network unavailable) against the run's own summary.csv; bad paths leave nothing behind."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from predcache.atomicfile import AtomicFile
from predcache.cli import run
from predcache.durations import format_duration
from predcache.report import html
from predcache.report.load import load_summaries
from predcache.report.render import shown_columns
from tests.fixtures.browser import Browser
from tests.pagecheck import external_refs

#: every plot is an image the browser decoded; returns the rows of every summary table
RENDERED = """(() => {
  const imgs = Array.from(document.querySelectorAll('img.plot'));
  if (!imgs.length || !imgs.every(i => i.complete && i.naturalWidth > 0)) return false;
  return Array.from(document.querySelectorAll('section.run')).map(s => ({
    run: s.querySelector('h2').textContent,
    rows: Array.from(s.querySelectorAll('table.summary tr')).slice(1)
      .map(tr => Array.from(tr.cells).map(td => td.textContent)),
    header: Array.from(s.querySelectorAll('table.summary th')).map(th => th.innerText),
    plots: Array.from(s.querySelectorAll('img.plot')).map(i => [i.naturalWidth, i.naturalHeight]),
    recs: Array.from(s.querySelectorAll('.rec')).map(p => p.textContent),
  }));
})()"""


@pytest.fixture
def sweep(models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """One real simulated sweep (small: the page is what is under test)."""
    out = tmp_path / "results"
    code = run(["bench", "--ttl", "0,30,90,300", "--requests", "3000", "--backend", "memory",
                "--market-paths", "1", "--out", str(out), "--label", "sweep"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    return out


def _summary_rows(results: Path) -> list[dict[str, str]]:
    (summary,) = results.rglob("summary.csv")
    with summary.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_report_in_a_browser_shows_each_ttl_hit_ratio_and_plot(
    sweep: Path, tmp_path: Path, browser: Browser, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "out" / "report.html"
    page.parent.mkdir()
    code = run(["report", str(sweep), "--html", str(page), "--target-hit-ratio", "0.5",
                "--error-budget", "1"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"html: {page}" in out.splitlines()
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]  # no temporary left
    assert external_refs(page.read_text()) == []

    visit = browser.visit(
        page.as_uri(), until=RENDERED, screenshot=shots / "report.png", full_page=True
    )
    assert {u.split(":")[0] for u in visit.requests} <= {"file", "data"}
    assert visit.other_hosts() == [] and visit.failed == []
    (section,) = visit.value
    assert section["run"] == sweep.joinpath(next(iter(os.listdir(sweep)))).name
    ttl, hit = section["header"].index("TTL"), section["header"].index("hit\nratio")
    # each TTL with its hit ratio exactly as summary.csv has it (3 decimals, as in the terminal)
    expected = [
        [format_duration(float(r["ttl_s"])), f"{float(r['hit_ratio']):.3f}"]
        for r in _summary_rows(sweep)
    ]
    assert [[row[ttl], row[hit]] for row in section["rows"]] == expected
    assert len(expected) == 4 and expected[0] == ["0s", "0.000"]
    (width, height) = section["plots"][0]
    assert width > 600 and height > 150  # an SVG the browser decoded and laid out
    assert len(section["recs"]) == 2
    assert (
        section["recs"][1].startswith("Recommended: ")
        and "smallest reaching 0.5" in (section["recs"][1])
    )


def test_report_reads_well_at_laptop_width_and_prints(
    sweep: Path, tmp_path: Path, browser: Browser, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    assert run(["report", str(sweep), "--html", str(page)]) == 0
    capsys.readouterr()
    root = "document.documentElement"
    widths = f"({RENDERED}) && [{root}.scrollWidth, {root}.clientWidth]"
    for width in (1280, 1024):  # no sideways scrolling of the page itself at laptop widths
        visit = browser.visit(
            page.as_uri(), until=widths, size=(width, 800), screenshot=shots / f"report-{width}.png"
        )
        scroll_width, client_width = visit.value
        assert scroll_width == client_width > width - 20  # (less a vertical scrollbar)
    pdf = browser.pdf(page.as_uri(), until=RENDERED)
    assert pdf[:5] == b"%PDF-" and len(pdf) > 20_000


def _write_run(root: Path, run_id: str, rows: list[dict[str, object]]) -> None:
    folder = root / run_id
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
    (folder / "params.json").write_text(json.dumps({"run_id": run_id, "command": "predcache x"}))


def test_live_and_simulated_runs_of_one_workload_side_by_side(tmp_path: Path) -> None:
    workload = {"workload": "synthetic", "requests": 3000, "keys": 9, "rate": 50.0, "zipf": 1.0,
                "seed": 0, "added_error_bps": 0.1, "latency_p50_ms": 1.0,
                "latency_p99_ms": 1000.0}  # fmt: skip
    _write_run(tmp_path, "live-1", [{"run_id": "live-1", "mode": "live",
               "target": "http://127.0.0.1:9/predict", "hit_ratio": 0.91, "model_calls": 270,
               "latency_mean_ms": 95.2, **workload}])  # fmt: skip
    _write_run(tmp_path, "sim-1", [{"run_id": "sim-1", "mode": "simulated", "ttl_s": 5,
               "hit_ratio": 0.9, "model_calls": 300, "latency_mean_ms": 100.0,
               **workload}])  # fmt: skip
    _write_run(tmp_path, "sim-other", [{"run_id": "sim-other", "mode": "simulated", "ttl_s": 5,
               "hit_ratio": 0.5, "model_calls": 1500, **{**workload, "seed": 1}}])  # fmt: skip
    df = load_summaries([tmp_path])
    (pair,) = html.paired_workloads(df)
    assert list(pair["run_id"]) == ["live-1", "sim-1"]  # the other seed is another workload
    page = html.render_report(df, params={}, sources=[str(tmp_path)])
    section = page.split('<section id="live-vs-simulated">')[1].split("</section>")[0]
    assert ">live: http://127.0.0.1:9/predict</a></th>" in section
    assert ">simulated: TTL 5s</a></th>" in section
    assert "<tr><td>hit ratio</td><td>0.910</td><td>0.900</td></tr>" in section
    assert "<tr><td>model calls</td><td>270</td><td>300</td></tr>" in section
    assert "<tr><td>latency mean</td><td>95.2ms</td><td>100ms</td></tr>" in section
    assert "no TTL sweep to plot (a live run)" in page


def test_compare_simulated_rows_in_one_run_are_paired(tmp_path: Path) -> None:
    """``bench --compare-simulated`` writes a live and a simulated row into one folder; they
    pair even where a workload column differs between the modes."""
    _write_run(tmp_path, "cmp", [
        {"run_id": "cmp", "mode": "live", "target": "http://127.0.0.1:9/predict",
         "hit_ratio": 0.8, "model_calls": 60, "requests": 300},
        {"run_id": "cmp", "mode": "simulated", "ttl_s": 5, "hit_ratio": 0.81, "model_calls": 57,
         "requests": 300, "keys": 9},
    ])  # fmt: skip
    (pair,) = html.paired_workloads(load_summaries([tmp_path]))
    assert list(pair["mode"]) == ["live", "simulated"]
    assert list(pair["model_calls"]) == [60, 57]


def test_html_cells_are_the_terminal_cells(sweep: Path) -> None:
    df = load_summaries([sweep])
    cols = shown_columns(df)
    table = html.summary_table(df)
    for _, row in df.iterrows():
        cells = "".join(f"<td>{f(row.get(name))}</td>" for name, _, f in cols)
        assert f"<tr>{cells}</tr>" in table


def _bad(capsys: pytest.CaptureFixture[str], results: Path, target: Path | str) -> str:
    code = run(["report", str(results), "--html", str(target)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_html_paths_exit_2_and_leave_nothing(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    assert "is a folder" in _bad(capsys, sweep, folder)
    assert "no such folder" in _bad(capsys, sweep, tmp_path / "missing" / "r.html")
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "no such folder" in _bad(capsys, sweep, afile / "r.html")
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses it anyway
        assert "cannot write in /sys (Permission denied)" in _bad(capsys, sweep, "/sys/r.html")
        assert not Path("/sys/r.html").exists()
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "Permission denied" in _bad(capsys, sweep, locked / "r.html")
        assert list(locked.iterdir()) == []
    assert list(folder.iterdir()) == [] and afile.read_text() == "x"


def test_a_failed_report_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    page.write_text("old report")
    code = run(["report", str(tmp_path / "no-results"), "--html", str(page)])
    assert code == 2 and "no such results folder" in capsys.readouterr().err
    assert page.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_atomic_file_commit_and_discard(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    with AtomicFile(target, mode=0o640) as out:
        assert target.exists() is False and out.tmp.exists()
        assert out.commit("whole\n") == target
    assert target.read_text() == "whole\n" and (target.stat().st_mode & 0o777) == 0o640
    with AtomicFile(target) as out:
        pass  # no commit: the old content stays, the temporary goes
    assert target.read_text() == "whole\n" and not out.tmp.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with pytest.raises(ValueError, match="already committed"):
        out.commit("again")
