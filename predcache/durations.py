"""Parse and format durations: ``90``, ``90s``, ``5m``, ``1m30s``, ``2 min``, ``1h``, ``250ms``.

One parser for every option that takes a duration (``--horizon``, ``--ttl``, ``--max-age``,
``--model-delay``), so they all accept and reject the same things. Bare numbers are seconds.
"""

from __future__ import annotations

import math
import re

from predcache.errors import BadDurationError, BadHorizonError

#: unit spelling -> seconds; each unit has its short form and the words people type
_UNIT_WORDS = {
    0.001: ("ms", "msec", "millisecond", "milliseconds"),
    1.0: ("s", "sec", "secs", "second", "seconds"),
    60.0: ("m", "min", "mins", "minute", "minutes"),
    3600.0: ("h", "hr", "hrs", "hour", "hours"),
    86400.0: ("d", "day", "days"),
}
_UNITS = {word: size for size, words in _UNIT_WORDS.items() for word in words}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
#: one ``<number><unit>`` part (``1m30s`` has two); a duration is parts back to back
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]*)\s*", re.IGNORECASE)
_EXAMPLES = "expected e.g. 90, 90s, 1m30s, 2 min, 1h, 250ms"
#: Nothing predcache does needs a duration longer than a year; longer is a typo.
MAX_SECONDS = 366 * 86400.0


def _parse_text(text: str) -> float | None:
    """Seconds in ``text``, or ``None`` when it is not a duration.

    Parts go from the largest unit to the smallest, each unit once (``1h30m``, not ``30m1h``);
    only a lone number may omit its unit."""
    if len(text) > 32:
        return None
    parts, end = [], 0
    for match in _PART.finditer(text):
        if match.start() != end:  # something between parts that is not a part
            return None
        parts.append(match.groups())
        end = match.end()
    if not parts or end != len(text):
        return None
    total, last = 0.0, math.inf
    for number, unit in parts:
        if not unit and len(parts) > 1:
            return None
        size = _UNITS.get(unit.lower() or "s")
        if size is None or size >= last:
            return None
        total += float(number) * size
        last = size
    return total


def parse_duration(
    text: str | float | int, *, name: str = "duration", allow_zero: bool = True
) -> float:
    """Return the duration in seconds, or raise :class:`BadDurationError` with one line.

    Rejects negatives, NaN, infinities, unknown units and values above a year.
    """
    if isinstance(text, bool):
        raise BadDurationError(f"bad {name}: {text!r} ({_EXAMPLES})")
    if isinstance(text, int | float):
        try:
            seconds = float(text)
        except OverflowError:  # an int beyond float range is certainly longer than a year
            raise BadDurationError(
                f"bad {name}: a number of {len(str(abs(text)))} digits (longer than a year)"
            ) from None
    else:
        parsed = _parse_text(text)
        if parsed is None:
            shown = text if len(text) <= 32 else text[:32] + "..."
            raise BadDurationError(f"bad {name}: {shown!r} ({_EXAMPLES})")
        seconds = parsed
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


def format_latency(ms: float | None) -> str:
    """A latency given in milliseconds, in the unit that reads best, to three significant
    digits: 0.00189 -> ``1.89µs``, 55.07 -> ``55.1ms``, 1000.2 -> ``1.00s``."""
    if ms is None or not math.isfinite(ms):
        return "-"
    if ms < 0.9995:  # below that, three digits of ms would round up to 1e+03 us
        return f"{ms * 1000:.3g}µs"
    if ms < 999.5:
        return f"{ms:.3g}ms"
    return f"{ms / 1000:,.2f}s"


def parse_horizon(text: str | float | int) -> int:
    """A prediction horizon in whole seconds (> 0): ``5m`` -> 300; the CLI and HTTP share it.

    Every bad horizon (unparsable, zero, negative, fractional, or untrained, which the model
    source raises) is a :class:`BadHorizonError`, so HTTP answers all of them with one code.
    """
    try:
        seconds = parse_duration(text, name="horizon", allow_zero=False)
    except BadDurationError as exc:
        raise BadHorizonError(str(exc)) from None
    if seconds != int(seconds):  # a string here is at most 32 characters: longer never parses
        raise BadHorizonError(f"bad horizon: {text!r} (must be whole seconds)")
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
