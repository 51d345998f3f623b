"""Parse and format durations: ``90``, ``90s``, ``5m``, ``1h``, ``250ms``, ``1.5s``.

One parser for every option that takes a duration (``--horizon``, ``--ttl``, ``--max-age``,
``--model-delay``), so they all accept and reject the same things. Bare numbers are seconds.
"""

from __future__ import annotations

import math
import re

from predcache.errors import BadDurationError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(ms|s|m|h|d)?\s*$")
#: Nothing predcache does needs a duration longer than a year; longer is a typo.
MAX_SECONDS = 366 * 86400.0


def parse_duration(
    text: str | float | int, *, name: str = "duration", allow_zero: bool = True
) -> float:
    """Return the duration in seconds, or raise :class:`BadDurationError` with one line.

    Rejects negatives, NaN, infinities, unknown units and values above a year.
    """
    if isinstance(text, bool):
        raise BadDurationError(f"bad {name}: {text!r} (expected e.g. 90, 90s, 5m, 1h, 250ms)")
    if isinstance(text, int | float):
        try:
            seconds = float(text)
        except OverflowError:  # an int beyond float range is certainly longer than a year
            raise BadDurationError(
                f"bad {name}: a number of {len(str(abs(text)))} digits (longer than a year)"
            ) from None
    else:
        match = _PATTERN.match(text) if len(text) <= 32 else None
        if match is None:
            shown = text if len(text) <= 32 else text[:32] + "..."
            raise BadDurationError(f"bad {name}: {shown!r} (expected e.g. 90, 90s, 5m, 1h, 250ms)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise BadDurationError(f"bad {name}: {text!r} (must be a finite, non-negative duration)")
    if seconds > MAX_SECONDS:
        raise BadDurationError(f"bad {name}: {text!r} (longer than a year)")
    if seconds == 0 and not allow_zero:
        raise BadDurationError(f"bad {name}: {text!r} (must be greater than zero)")
    return seconds


def parse_duration_list(
    text: str, *, name: str = "duration", allow_zero: bool = True
) -> list[float]:
    """Parse a comma-separated list such as ``0,30,90,300`` or ``1m,5m``; duplicates removed."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise BadDurationError(f"bad {name}: {text!r} (empty list)")
    out: list[float] = []
    for part in parts:
        value = parse_duration(part, name=name, allow_zero=allow_zero)
        if value not in out:
            out.append(value)
    return out


def format_duration(seconds: float) -> str:
    """The short form for tables: 300 -> ``5m``, 90 -> ``90s``, 0.25 -> ``250ms``."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def parse_horizon(text: str | float | int) -> int:
    """A prediction horizon in whole seconds (> 0): ``5m`` -> 300; the CLI and HTTP share it."""
    seconds = parse_duration(text, name="horizon", allow_zero=False)
    if seconds != int(seconds):
        shown = text if not isinstance(text, str) or len(text) <= 32 else text[:32] + "..."
        raise BadDurationError(f"bad horizon: {shown!r} (must be whole seconds)")
    return int(seconds)


def parse_minute_horizons(text: str) -> list[int]:
    """``1m,5m,15m`` -> ``[60, 300, 900]``: the model works on one-minute candles, so the
    horizons it is trained for (and the bench asks for) are whole minutes."""
    values = parse_duration_list(text, name="horizon", allow_zero=False)
    bad = [v for v in values if v % 60 != 0]
    if bad:
        raise BadDurationError(
            f"bad horizon {format_duration(bad[0])}: the model works on one-minute candles, "
            "so horizons must be whole minutes (1m, 5m, 15m, 1h)"
        )
    return [int(v) for v in values]
