"""``predcache report`` over real bench results folders: tables, csv, markdown, plot, picks."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from predcache.cli import run
from tests.fixtures.server import ServerFactory


@pytest.fixture
def two_runs(models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Two bench runs (different workloads) in one results folder."""
    out = tmp_path / "results"
    for ttls, zipf in (("0,30,90,300", "1.0"), ("0,60,600", "0")):
        code = run(["bench", "--ttl", ttls, "--zipf", zipf, "--requests", "4000",
                    "--backend", "memory", "--out", str(out), "--label", f"zipf{zipf}",
                    "--json"])  # fmt: skip
        assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    return out


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_shows_every_run_and_ttl(two_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = report(capsys, str(two_runs))
    assert code == 0, err
    runs = sorted(p.name for p in two_runs.iterdir())
    assert len(runs) == 2 and all(r in out for r in runs)
    for ttl in ("0s", "30s", "90s", "5m", "1m", "10m"):
        assert f"\n{ttl} " in out
    assert "model delay 1s (simulated)" in out
    assert "nan" not in out.lower()


def test_csv_and_markdown(two_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = report(capsys, str(two_runs), "--format", "csv")
    assert code == 0
    df = pd.read_csv(io.StringIO(out))
    assert len(df) == 7 and df["run_id"].nunique() == 2
    # sorted by configuration, then TTL
    for _, group in df.groupby("run_id"):
        assert list(group["ttl_s"]) == sorted(group["ttl_s"])
    code, out, _ = report(capsys, str(two_runs), "--format", "markdown")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("| run | TTL |") and len(lines) == 2 + 7


@pytest.mark.parametrize(
    ("name", "magic"),
    [("sweep.png", b"\x89PNG\r\n\x1a\n"), ("sweep.svg", b"<?xml"), ("sweep.PDF", b"%PDF-")],
)
def test_plot_format_follows_the_extension(
    two_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, magic: bytes
) -> None:
    path = tmp_path / "plots" / name
    code, out, err = report(capsys, str(two_runs), "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes().startswith(magic) and path.stat().st_size > 20_000
    assert f"plot: {path}" in out


def test_plot_to_an_unknown_format_fails_before_printing(
    two_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = report(capsys, str(two_runs), "--plot", str(tmp_path / "sweep.jpg"))
    assert (code, out) == (2, "")
    assert err == (
        f"predcache: error: --plot {tmp_path / 'sweep.jpg'}: give a file name ending in .png, "
        ".svg or .pdf (the format follows it)\n"
    )
    assert not (tmp_path / "sweep.jpg").exists()


def test_recommendations(two_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = pd.concat(pd.read_csv(p) for p in two_runs.rglob("summary.csv"))
    budget = 1.0
    code, out, err = report(capsys, str(two_runs), "--error-budget", str(budget),
                            "--target-hit-ratio", "0.95")  # fmt: skip
    assert code == 0, err
    picks = [line for line in out.splitlines() if line.startswith("recommended:")]
    assert len(picks) == 4
    for run_id, group in df.groupby("run_id"):
        ok = group[group["added_error_bps"] <= budget]
        best = int(ok["ttl_s"].max())
        assert any(run_id in p and f"within {budget:g} bps" in p for p in picks)
        line = next(p for p in picks if run_id in p and "bps)" in p and "within" in p)
        assert f"TTL {best}s" in line or f"TTL {best // 60}m" in line
    code, out, err = report(capsys, str(two_runs), "--target-hit-ratio", "1")
    assert code == 1 and "recommended" not in out and "TTL" in out  # the table, then one line
    assert err.startswith("predcache: error: no TTL to recommend for --target-hit-ratio 1: ")
    assert err.count("\n") == 1


def test_empty_and_missing_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = report(capsys, str(tmp_path / "empty"))
    assert code == 2 and "no bench results under" in err and "predcache bench" in err
    assert "Traceback" not in err and out == ""
    code, _, err = report(capsys, str(tmp_path / "nope"))
    assert code == 2 and "no such results folder" in err


def test_a_foreign_csv_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "results" / "x" / "summary.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("a,b\n1,2\n")
    code, _, err = report(capsys, str(tmp_path / "results"))
    assert code == 2 and str(bad) in err and "not a predcache bench summary" in err


def test_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(capsys, "--format", "html")[0] == 2
    assert report(capsys, "--target-hit-ratio", "1.5")[0] == 2
    assert report(capsys, "--error-budget", "-1")[0] == 2


def test_json_is_one_list_of_every_row(two_runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, err = report(capsys, str(two_runs), "--json", "--error-budget", "1")
    assert code == 0, err
    rows = json.loads(out)  # exactly one JSON document on stdout
    assert isinstance(rows, list) and len(rows) == 7
    df = pd.concat(pd.read_csv(p) for p in sorted(two_runs.rglob("summary.csv")))
    first = rows[0]
    want = df[(df["run_id"] == first["run_id"]) & (df["ttl_s"] == 0)].iloc[0]
    assert first["ttl_s"] == 0 and first["requests"] == 4000 == int(want["requests"])
    assert first["hit_latency_p50_ms"] is None  # an empty cell is null, never NaN
    assert first["recommended"] == []
    picked = [r for r in rows if r["recommended"]]
    assert len(picked) == 2 and all(r["recommended"] == ["largest within 1 bps"] for r in picked)
    assert "recommended:" in err  # notes go to stderr with --json


@pytest.fixture
def live_results(tmp_path: Path, serve: ServerFactory) -> Path:
    """A real live run: two real servers (cached and not), loaded through the live bench."""
    from predcache.bench.live import live_bench
    from predcache.bench.live_options import LiveOptions

    cached, uncached = serve(), serve("--no-cache")
    out = tmp_path / "live-results"
    opts = LiveOptions(
        [cached.predict_url, uncached.predict_url],
        pairs=["ETH/EUR"], horizons_s=[300], requests=40, duration_s=None, concurrency=2,
        body_template='{"product_id": "{pair}"}', zipf=1.0, seed=0, out=str(out), label="live",
        save_requests=False,
    )  # fmt: skip
    live_bench(opts, notify=lambda m: None)
    return out


def test_live_runs_report_like_simulated_ones(
    live_results: Path, two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = report(capsys, str(live_results), str(two_runs))
    assert code == 0, err
    assert "nan" not in out.lower()
    live_title = next(line for line in out.splitlines() if ": live, " in line)
    assert "2 targets, concurrency 2, 40 requests" in live_title and "backend" not in live_title
    header = next(line for line in out.splitlines() if line.lstrip().startswith("target"))
    assert "errors" in header and "req/s" in header
    code, out, _ = report(capsys, str(live_results), "--error-budget", "1")
    assert code == 1  # a live run has no TTLs to recommend from


def _summary(path: Path, rows: int, overrides: dict[tuple[str, int], object] | None = None) -> Path:
    """A well-formed simulated summary of ``rows`` TTLs, some cells overridden."""
    frame = pd.DataFrame(
        {
            "run_id": "big",
            "ttl_s": range(rows),
            "requests": 1000,
            "hits": 900,
            "misses": 100,
            "hit_ratio": 0.9,
            "expected_hit_ratio": 0.9,
            "model_calls": 100,
            "latency_p50_ms": 0.01,
            "latency_p99_ms": 1000.0,
            "added_error_bps": 0.5,
            "backend": "memory",
            "mode": "simulated",
        }
    ).astype({"mode": object, "requests": object, "added_error_bps": object, "hit_ratio": object})
    for (column, row), value in (overrides or {}).items():
        frame.loc[row, column] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("hit_ratio", 1.7, "'1.7' is impossible (must be between 0 and 1)"),
        ("latency_p99_ms", -3, "'-3.0' is impossible (must be >= 0)"),
        ("requests", "lots", "'lots' is not a number"),
        ("added_error_bps", "inf", "'inf' is impossible (must be finite)"),
        ("hits", 5000, "'5000' is more than the requests"),
        ("mode", "dream", "'dream' is not one of ('simulated', 'live')"),
    ],
)
def test_impossible_values_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str, value: object, problem: str
) -> None:
    path = _summary(tmp_path / "r" / "x" / "summary.csv", 5, {(column, 3): value})
    code, out, err = report(capsys, str(tmp_path / "r"))
    assert (code, out) == (2, "")
    assert err == f"predcache: error: {path}: column {column}, line 5: {problem}\n"


def test_newer_and_older_columns_are_tolerated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _summary(tmp_path / "r" / "x" / "summary.csv", 3)
    frame = pd.read_csv(path).drop(columns=["expected_hit_ratio", "mode"])
    frame["latency_p90_ms"], frame["collapsed"], frame["stampede"] = 0.5, 7, "coalesce"
    frame.to_csv(path, index=False)
    code, out, err = report(capsys, str(tmp_path / "r"))
    assert code == 0, err
    assert "col-" in out and "stampede coalesce" in out and "TTL\nmodel" not in out


@pytest.mark.slow
def test_hundred_thousand_rows_stay_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from predcache.report.render import MAX_TABLE_ROWS

    _summary(tmp_path / "r" / "x" / "summary.csv", 100_000)
    code, out, err = report(capsys, str(tmp_path / "r"))
    assert code == 0, err
    assert out.count("\n") < MAX_TABLE_ROWS + 10
    assert err == "showing the first 500 of 100,000 rows; --format csv or --json prints them all\n"
    code, out, _ = report(capsys, str(tmp_path / "r"), "--format", "csv")
    assert code == 0 and out.count("\n") == 100_001
    import json

    code, out, _ = report(capsys, str(tmp_path / "r"), "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 100_000 and rows[-1]["ttl_s"] == 99_999
    code, out, err = report(capsys, str(tmp_path / "r"), "--plot", str(tmp_path / "p.png"))
    assert (code, out) == (2, "")  # refused before any output, in one line
    assert err == (
        "predcache: error: run big has 99,999 TTLs, too many to plot one labelled point each "
        "(at most 60)\n"
    )


@pytest.mark.parametrize(
    ("dropped", "args", "code", "err"),
    [
        ("ttl_s", ("--error-budget", "1"), 1,
         "predcache: error: no TTL to recommend for --error-budget 1: no simulated run with an "
         "added error to compare\n"),
        ("hit_ratio", ("--target-hit-ratio", "0.5"), 1,
         "predcache: error: no TTL to recommend for --target-hit-ratio 0.5: no simulated run "
         "with a hit ratio per TTL\n"),
        ("hit_ratio", ("--error-budget", "1"), 0, ""),
        ("model_calls", ("--plot", "{tmp}/p.png"), 0, ""),
        ("latency_p99_ms", ("--html", "{tmp}/r.html"), 0, ""),
    ],
)  # fmt: skip
def test_a_summary_without_a_column_is_an_answer_not_an_internal_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dropped: str,
    args: tuple[str, ...],
    code: int,
    err: str,
) -> None:
    """Issue #17: a hand-edited summary.csv without a column gave `internal error: KeyError`
    (recommendations) or a matplotlib ValueError (the model-calls panel's log scale)."""
    path = _summary(tmp_path / "r" / "x" / "summary.csv", 4)
    pd.read_csv(path).drop(columns=[dropped]).to_csv(path, index=False)
    got_code, out, got_err = report(
        capsys, str(tmp_path / "r"), *(a.format(tmp=tmp_path) for a in args)
    )
    assert (got_code, got_err.replace("\n", "\n") if code else "") == (code, err)
    assert "internal error" not in got_err and "big" in out
    if args[0] in ("--plot", "--html"):
        assert Path(args[1].format(tmp=tmp_path)).stat().st_size > 1000
