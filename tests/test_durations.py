from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predcache.durations import (
    format_duration,
    format_latency,
    parse_duration,
    parse_duration_list,
)
from predcache.errors import BadDurationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25),
        ("1.5s", 1.5), (" 5m ", 300.0), ("0", 0.0), ("0s", 0.0), ("1d", 86400.0), (".5s", 0.5),
        ("1m30s", 90.0), ("2 min", 120.0), ("1h 30m", 5400.0), ("2 minutes", 120.0),
        ("1h1m1s", 3661.0), ("1s500ms", 1.5), ("90 sec", 90.0), ("5M", 300.0),
    ],
)  # fmt: skip
def test_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", " ", "-5", "-5s", "5x", "m", "5 m s", "nan", "inf", "1e3", "5mm", "1,5s", "9" * 40, "400d",
     "0x10", "--", "+5s", "30s1m", "1m1m", "1m30", "5 fortnights", "1m,30s", "9" * 31 + "x"],
)  # fmt: skip
def test_rejects(text: str) -> None:
    with pytest.raises(BadDurationError) as info:
        parse_duration(text, name="ttl")
    assert "ttl" in str(info.value)
    assert "\n" not in str(info.value)


def test_rejects_zero_when_asked() -> None:
    with pytest.raises(BadDurationError, match="greater than zero"):
        parse_duration("0s", name="horizon", allow_zero=False)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, True, 10**400, -(10**400)])
def test_rejects_bad_numbers(value: float) -> None:
    with pytest.raises(BadDurationError):
        parse_duration(value)


def test_list() -> None:
    assert parse_duration_list("0,30,90s,5m,90") == [0.0, 30.0, 90.0, 300.0]
    with pytest.raises(BadDurationError):
        parse_duration_list(",")


@pytest.mark.parametrize(
    ("seconds", "text"), [(300, "5m"), (90, "90s"), (3600, "1h"), (0.25, "250ms"), (0, "0s")]
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "s", "m", "h", "ms"]))
def test_roundtrip_property(n: int, unit: str) -> None:
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "ms": 0.001}[unit]
    if n * factor > 366 * 86400:
        with pytest.raises(BadDurationError):
            parse_duration(f"{n}{unit}")
    else:
        assert parse_duration(f"{n}{unit}") == pytest.approx(n * factor)


@given(st.text(max_size=40))
def test_never_crashes(text: str) -> None:
    try:
        value = parse_duration(text)
    except BadDurationError as exc:
        assert "\n" not in str(exc)
    else:
        assert math.isfinite(value) and value >= 0


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0.00992, "9.92µs"), (0.00189, "1.89µs"), (0.5, "500µs"), (0.9997, "1ms"), (1.0, "1ms"),
        (55.05346, "55.1ms"), (999.4, "999ms"), (999.7, "1.00s"),
        (1000.01928, "1.00s"), (12345.0, "12.35s"), (None, "-"), (math.nan, "-"),
    ],
)  # fmt: skip
def test_format_latency(ms: float | None, text: str) -> None:
    assert format_latency(ms) == text
