"""One parser for the timestamps users give us: candles, traces and ``--start``.

Epoch seconds (``1748822400``, fractions allowed) or ISO 8601 (``2025-06-02T00:00:00Z``,
``2025-06-02``; naive means UTC). Values that look like milliseconds are refused: mixing them
up shifts a series by decades.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

#: epoch seconds from 1970 to ~5138; anything larger is almost surely milliseconds
MAX_EPOCH_S = 1e11


def parse_timestamp(text: str) -> float:
    """Epoch seconds; raises ``ValueError`` with a one-line reason (callers add file/line)."""
    s = text.strip()
    shown = s if len(s) <= 40 else s[:40] + "..."
    try:
        value = float(s)
    except ValueError:
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ValueError(f"timestamp {shown!r} is neither epoch seconds nor ISO 8601") from None
        value = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"timestamp {shown!r} is out of range (epoch seconds expected)")
    if value >= MAX_EPOCH_S:
        raise ValueError(f"timestamp {shown!r} looks like milliseconds; expected epoch seconds")
    return value


def iso_utc(epoch_s: float) -> str:
    """``2026-11-28T14:55:00Z``: how predcache writes a time for people and JSON."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
