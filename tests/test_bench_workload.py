"""Workloads: Zipf popularity, reproducible Poisson traffic, and the trace loader's errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predcache.bench.ttl_model import expected_for_workload, expected_hit_ratio
from predcache.bench.workload import load_trace, parse_start, synthetic, zipf_probabilities
from predcache.errors import BadDataError, BadInputError

KEYS = [("ETH/EUR", 60), ("ETH/EUR", 300), ("BTC/USD", 60)]
START = 1_748_822_400.0  # 2025-06-02T00:00:00Z


def test_zipf_probabilities() -> None:
    p = zipf_probabilities(3, 1.0)
    assert p == pytest.approx(np.array([1, 1 / 2, 1 / 3]) / (1 + 1 / 2 + 1 / 3))
    assert zipf_probabilities(4, 0.0) == pytest.approx([0.25] * 4)


def test_synthetic_is_reproducible_and_shaped() -> None:
    a = synthetic(KEYS, requests=5000, rate=4.0, zipf=1.0, seed=3, start=START)
    b = synthetic(KEYS, requests=5000, rate=4.0, zipf=1.0, seed=3, start=START)
    c = synthetic(KEYS, requests=5000, rate=4.0, zipf=1.0, seed=4, start=START)
    assert np.array_equal(a.times, b.times) and np.array_equal(a.key_index, b.key_index)
    assert not np.array_equal(a.key_index, c.key_index)
    assert a.times[0] > START and np.all(np.diff(a.times) > 0)
    # mean inter-arrival 1/rate: 5000 draws, sd of the mean = 0.25/sqrt(5000) = 0.0035
    assert np.mean(np.diff(a.times)) == pytest.approx(0.25, abs=0.02)
    # rank 1 (first pair, first horizon) is the most popular key
    counts = a.key_counts()
    assert counts[0] > counts[1] > counts[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests": 0}, "bad requests"),
        ({"rate": 0.0}, "bad rate"),
        ({"rate": float("nan")}, "bad rate"),
        ({"zipf": -1.0}, "bad zipf"),
        ({"seed": -1}, "bad seed"),
    ],
)
def test_synthetic_rejects_bad_options(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        synthetic(KEYS, start=START, **kwargs)  # type: ignore[arg-type]


def test_parse_start() -> None:
    assert parse_start("2025-06-02T00:00:00Z") == START
    assert parse_start("2025-06-02") == START
    assert parse_start("1748822400") == START
    with pytest.raises(BadInputError, match="bad start"):
        parse_start("yesterday")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_trace_sorts_by_time_and_numbers_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timestamp,pair,horizon,extra\n"
        "1748822410,eth/eur,5m,x\n"
        "2025-06-02T00:00:00Z,BTC/USD,60,y\n"
        "1748822405.5,ETH/EUR,300,z\n",
    )
    w = load_trace(path)
    assert w.source == "trace" and w.requests == 3
    assert w.keys == [("ETH/EUR", 300), ("BTC/USD", 60)]
    assert w.times.tolist() == [START, START + 5.5, START + 10]
    assert w.key_index.tolist() == [1, 0, 0]
    assert w.rate == pytest.approx(3 / 10)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", "line 0: the file is empty"),
        ("time,pair,horizon\n1,ETH/EUR,5m\n", "missing column timestamp"),
        ("timestamp,pair,horizon\n", "no requests"),
        ("timestamp,pair,horizon\n1748822400,ETH/EUR,5m\n1748822401,DOGE/EUR,5m\n", "line 3"),
        ("timestamp,pair,horizon\n1748822400,ETH/EUR,5 fortnights\n", "line 2: bad horizon"),
        ("timestamp,pair,horizon\nsoon,ETH/EUR,5m\n", "line 2: timestamp 'soon'"),
        ("timestamp,pair,horizon\n1748822400,ETH/EUR\n", "line 2: expected at least 3"),
    ],
)
def test_trace_errors_name_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadDataError, match=where) as err:
        load_trace(path)
    assert str(path) in str(err.value)


def test_missing_trace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadDataError, match="cannot read the trace"):
        load_trace(tmp_path / "nope.csv")


def test_expected_hit_ratio_formula() -> None:
    # one key at 1 request/s, TTL 9 s: each miss opens a 9 s window with 9 hits on average
    assert expected_hit_ratio(np.array([1.0]), 9.0) == pytest.approx(0.9)
    assert expected_hit_ratio(np.array([1.0, 3.0]), 0.0) == 0.0
    # two keys: p = (1/4, 3/4), lambda = 4; H = 1/4 * 1/2 + 3/4 * 3/4
    assert expected_hit_ratio(np.array([1.0, 3.0]), 1.0) == pytest.approx(0.125 + 0.5625)


def test_expected_for_a_trace_uses_observed_rates(tmp_path: Path) -> None:
    rows = "".join(f"{START + i},ETH/EUR,5m\n" for i in range(11))  # 11 requests over 10 s
    w = load_trace(write(tmp_path, "timestamp,pair,horizon\n" + rows))
    assert expected_for_workload(w, 10.0) == pytest.approx(1.1 * 10 / (1 + 1.1 * 10))
    same = load_trace(write(tmp_path, "timestamp,pair,horizon\n" + f"{START},ETH/EUR,5m\n" * 2))
    assert expected_for_workload(same, 10.0) is None  # no time passes: no rate
