"""``predcache report`` over real bench results folders: tables, csv, markdown, plot, picks."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from predcache.cli import run


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
    assert "model delay 1s (simulated)" in " ".join(out.split())  # the title may wrap


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


def test_plot_is_a_png(two_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "plots" / "sweep.png"
    code, _out, err = report(capsys, str(two_runs), "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    code, _, err = report(capsys, str(two_runs), "--plot", str(tmp_path / "sweep.jpg"))
    assert code == 2 and "PNG" in err


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
    code, out, _ = report(capsys, str(two_runs), "--target-hit-ratio", "1")
    assert code == 0 and out.count("no measured TTL reaches a hit ratio of 1") == 2


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
