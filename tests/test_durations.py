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
        (0.9995, "1ms"), (999.5, "1.00s"),  # each boundary itself goes to the larger unit
        (1000.01928, "1.00s"), (12345.0, "12.35s"), (None, "-"), (math.nan, "-"),
    ],
)  # fmt: skip
def test_format_latency(ms: float | None, text: str) -> None:
    assert format_latency(ms) == text


# --- exact messages and edges (each line of the parser can turn one of these red) -----------

EXAMPLES = "expected e.g. 90, 90s, 1m30s, 2 min, 1h, 250ms"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5x", f"bad ttl: '5x' ({EXAMPLES})"),
        ("9" * 33, f"bad ttl: '{'9' * 32}...' ({EXAMPLES})"),  # long input is cut at 32
        ("9" * 32, f"bad ttl: '{'9' * 32}' (longer than a year)"),  # 32 is shown whole
        ("9" * 31 + "x", f"bad ttl: '{'9' * 31}x' ({EXAMPLES})"),  # unparsable, 32: whole too
        (True, f"bad ttl: True ({EXAMPLES})"),
        (10**400, "bad ttl: a number of 401 digits (longer than a year)"),
        (-(10**400), "bad ttl: a number of 401 digits (longer than a year)"),
        (-1.0, "bad ttl: -1.0 (must be a finite, non-negative duration)"),
        (math.nan, "bad ttl: nan (must be a finite, non-negative duration)"),
        ("367d", "bad ttl: '367d' (longer than a year)"),
        (366 * 86400 + 1, "bad ttl: 31622401 (longer than a year)"),
    ],
)
def test_exact_messages(value: object, message: str) -> None:
    with pytest.raises(BadDurationError) as info:
        parse_duration(value, name="ttl")  # type: ignore[arg-type]
    assert str(info.value) == message


def test_default_name_and_bounds() -> None:
    with pytest.raises(BadDurationError, match=r"^bad duration: 'x' "):
        parse_duration("x")
    assert parse_duration(366 * 86400) == 366 * 86400.0  # a year exactly is allowed
    assert parse_duration("0") == 0.0  # zero allowed unless asked otherwise
    with pytest.raises(BadDurationError) as info:
        parse_duration(0, name="horizon", allow_zero=False)
    assert str(info.value) == "bad horizon: 0 (must be greater than zero)"


def test_parts_rules() -> None:
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("1d1h") == 90000.0
    assert parse_duration("1s1ms") == 1.001
    assert parse_duration("2.5m") == 150.0
    for bad in ("1m1m", "30m1h", "1m 30", "5 x", "1h30", "s5", "5s x"):
        with pytest.raises(BadDurationError):
            parse_duration(bad)


def test_list_messages_and_order() -> None:
    assert parse_duration_list(" 5m, 1m ,5m") == [300.0, 60.0]  # first-seen order, no dups
    with pytest.raises(BadDurationError) as info:
        parse_duration_list(" , ", name="ttl")
    assert str(info.value) == "bad ttl: ' , ' (empty list)"
    with pytest.raises(BadDurationError) as info:
        parse_duration_list("1m,0", name="horizon", allow_zero=False)
    assert str(info.value) == "bad horizon: '0' (must be greater than zero)"
    with pytest.raises(BadDurationError, match=r"^bad duration: ''"):
        parse_duration_list("")


def test_parse_horizon() -> None:
    from predcache.durations import parse_horizon
    from predcache.errors import BadHorizonError

    assert parse_horizon("5m") == 300 and type(parse_horizon("5m")) is int
    assert parse_horizon(60) == 60
    cases: list[tuple[str | float, str]] = [
        ("0", "bad horizon: '0' (must be greater than zero)"),
        ("1.5s", "bad horizon: '1.5s' (must be whole seconds)"),
        (1.5, "bad horizon: 1.5 (must be whole seconds)"),
        ("1.5s" + " " * 28, f"bad horizon: {'1.5s' + ' ' * 28!r} (must be whole seconds)"),
        ("x", f"bad horizon: 'x' ({EXAMPLES})"),
    ]
    for bad, message in cases:
        with pytest.raises(BadHorizonError) as info:  # one HTTP code for every bad horizon
            parse_horizon(bad)
        assert str(info.value) == message


def test_parse_minute_horizons() -> None:
    from predcache.durations import parse_minute_horizons

    assert parse_minute_horizons("1m,5m,1h") == [60, 300, 3600]
    assert all(type(h) is int for h in parse_minute_horizons("1m"))
    for bad, message in [
        ("1m,90s", "bad horizon 90s: the model works on one-minute candles, so horizons must be "
         "whole minutes (1m, 5m, 15m, 1h)"),
        ("0", "bad horizon: '0' (must be greater than zero)"),
        ("x", f"bad horizon: 'x' ({EXAMPLES})"),
    ]:  # fmt: skip
        with pytest.raises(BadDurationError) as info:
            parse_minute_horizons(bad)
        assert str(info.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400, "1d"), (7200, "2h"), (120, "2m"), (1, "1s"), (1.5, "1.5s"), (90.5, "90.5s"),
     (0.001, "1ms"), (0.5, "500ms"), (61, "61s"), (3660, "61m"), (172800, "2d")],
)  # fmt: skip
def test_format_more(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
