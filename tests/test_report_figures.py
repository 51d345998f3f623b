"""The report's figures: pure functions from results to matplotlib Figures, drawing the numbers
they are given where they belong (checked on the drawn artists, not by eye)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from predcache.report import figures
from predcache.report.plot import to_svg
from predcache.report.series import RunSeries, run_series


def frame(run_id: str = "r1", **extra: object) -> pd.DataFrame:
    """A one-key run at 1 request/s (so the TTL model is T / (1 + T)) at TTLs 0, 9, 99 s."""
    return pd.DataFrame(
        {
            "run_id": run_id,
            "ttl_s": [0.0, 9.0, 99.0],
            "requests": [1000, 1000, 1000],
            "hit_ratio": [0.0, 0.9, 0.99],
            "expected_hit_ratio": [0.0, 0.9, 0.99],
            "model_calls": [1000, 100, 10],
            "latency_mean_ms": [1000.0, 100.0, 10.0],
            "latency_p99_ms": [1000.0, 1000.0, 0.01],
            "added_error_bps": [0.0, 0.5, 2.0],
            "added_error_ci95_bps": [0.0, 0.1, 0.4],
            "backend": "memory",
            "rate": 1.0,
            "zipf": 1.0,
            "keys": 1,
            "model_delay_ms": 1000,
            "workload": "synthetic",
            **extra,
        }
    )


@pytest.fixture
def run() -> RunSeries:
    (series,) = run_series(frame())
    return series


def test_series_split_baseline_and_label(run: RunSeries) -> None:
    assert run.ttl_s.tolist() == [9.0, 99.0]
    assert run.baseline is not None and run.baseline.model_calls == 1000
    assert run.label == "memory, 1/s, zipf 1, model delay 1s (simulated)"
    (with_strategy,) = run_series(frame(stampede="coalesce"))
    assert with_strategy.label == "memory, 1/s, zipf 1, coalesce, model delay 1s (simulated)"


def test_miss_ratio_interval_is_wilson(run: RunSeries) -> None:
    low, high = run.miss_ratio_interval()
    assert low[0] == pytest.approx(0.0829094436) and high[0] == pytest.approx(0.1201519632)


def test_the_ttl_model_line(run: RunSeries) -> None:
    assert run.model is not None
    assert run.model(np.array([9.0, 99.0])).tolist() == pytest.approx([0.9, 0.99])
    fig = figures.miss_ratio_figure([run])
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    assert ax.get_xlim() == pytest.approx((9.0 / 1.5, 99.0 * 1.5))
    (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert x[0] == pytest.approx(6.0) and y[0] == pytest.approx(1 / 7)  # 1 - 6/7
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["9s", "99s"]  # the measured TTLs, no TTL 0 on a log axis


def test_added_error_band_spans_the_confidence_interval(run: RunSeries) -> None:
    ax = figures.added_error_figure([run], error_budget=1.0).axes[0]
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.4) and ys.max() == pytest.approx(2.4)
    budget = [ln for ln in ax.get_lines() if list(ln.get_ydata()) == [1.0, 1.0]]
    assert len(budget) == 1


def test_decision_plot_draws_budget_target_and_pick(run: RunSeries) -> None:
    fig = figures.decision_figure(
        [run], error_budget=1.0, target_hit_ratio=0.95, marks={"r1": [(9.0, "largest within 1")]}
    )
    ax = fig.axes[0]
    assert ax.get_xscale() == "logit"
    lines = ax.get_lines()
    assert any(list(ln.get_ydata()) == [1.0, 1.0] for ln in lines)  # the error budget
    assert any(list(ln.get_xdata()) == [0.95, 0.95] for ln in lines)  # the target
    (star,) = [ln for ln in lines if ln.get_marker() == "*"]
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([0.9], [0.5])
    texts = [t.get_text() for t in ax.texts]
    assert "9s" in texts and "99s" in texts
    assert "recommended 9s\n(largest within 1)" in texts


def test_every_figure_is_a_figure_and_renders_svg(run: RunSeries) -> None:
    (other,) = run_series(frame("r2", rate=2.0))
    for name, make in figures.FIGURES.items():
        fig = make([run, other])
        assert isinstance(fig, Figure), name
        svg = to_svg(fig)
        assert svg.startswith("<?xml") and "<svg" in svg
        assert svg == to_svg(make([run, other]))  # reproducible bytes
    legend = figures.sweep_figure([run, other]).legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        "r1: memory, 1/s, zipf 1, model delay 1s (simulated)",
        "r2: memory, 2/s, zipf 1, model delay 1s (simulated)",
    ]


def test_many_ttls_get_round_labels() -> None:
    ttls = [0, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900]
    df = pd.DataFrame({"run_id": "r", "ttl_s": ttls, "requests": 100, "hit_ratio": 0.5})
    (series,) = run_series(df)
    ax = figures.latency_figure([series]).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["5s", "10s", "30s", "1m", "5m", "15m"]
    # every measured TTL is a tick (minor where no labelled one sits)
    ticks = set(ax.get_xticks(minor=True)) | set(ax.get_xticks())
    assert sorted(ticks) == [float(t) for t in ttls if t > 0]
    assert not math.isnan(ax.get_xlim()[0])
