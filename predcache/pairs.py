"""Trading pairs: parsing, validation and the default catalogue.

A pair is ``BASE/QUOTE`` in letters and digits (``ETH/EUR``). Validation is strict because a
pair ends up in cache keys, file names and log lines: nothing a user sends reaches those
unchecked. This module is plain Python (no numpy) because it sits on the cache-hit path.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from predcache.errors import BadPairError

_PAIR = re.compile(r"^([A-Z0-9]{2,10})/([A-Z0-9]{2,10})$")


class PairInfo(NamedTuple):
    """What the synthetic market needs to know about a pair."""

    name: str
    base_price: float
    #: standard deviation of one-minute log returns
    vol_per_minute: float


CATALOGUE: dict[str, PairInfo] = {
    p.name: p
    for p in (
        PairInfo("ETH/EUR", 2300.0, 0.0012),
        PairInfo("BTC/USD", 60000.0, 0.0009),
        PairInfo("SOL/USD", 150.0, 0.0018),
        PairInfo("ETH/USD", 2500.0, 0.0012),
        PairInfo("BTC/EUR", 55000.0, 0.0009),
    )
}

DEFAULT_PAIRS: tuple[str, ...] = ("ETH/EUR", "BTC/USD", "SOL/USD")


def parse_pair(text: str) -> str:
    """Return the canonical pair (upper case) or raise :class:`BadPairError` with one line.

    Case is folded (``eth/eur`` -> ``ETH/EUR``); anything else that is not a catalogue pair is
    an error that lists the known pairs.
    """
    if not isinstance(text, str):
        raise BadPairError(f"bad pair: expected a string like ETH/EUR, got {type(text).__name__}")
    candidate = text.strip()
    candidate = candidate.upper() if candidate.isascii() else candidate
    if _PAIR.match(candidate) is None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise BadPairError(
            f"bad pair {shown!r}: expected BASE/QUOTE in letters and digits, e.g. ETH/EUR"
        )
    if candidate not in CATALOGUE:
        raise BadPairError(f"unknown pair {candidate}: known pairs are {', '.join(CATALOGUE)}")
    return candidate


def parse_pair_list(text: str) -> list[str]:
    """Parse ``ETH/EUR,BTC/USD``; duplicates removed, order kept."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise BadPairError(f"bad pair list {text!r}: empty")
    out: list[str] = []
    for part in parts:
        pair = parse_pair(part)
        if pair not in out:
            out.append(pair)
    return out


def pair_slug(pair: str) -> str:
    """File-name form of a validated pair: ``ETH/EUR`` -> ``ETH-EUR``."""
    return pair.replace("/", "-")
