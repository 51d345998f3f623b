"""A cache entry: one prediction, stamped with its creation time (dogpile's ``CachedValue``).

Entries are JSON objects, never pickles. Because each carries ``created_at``, freshness is
decided by the *reader's* clock and TTL, so one filled store can be judged under many TTLs.
:func:`decode_entry` is the single gate between bytes from a store and a trusted dict: anything
that is not our JSON (a planted pickle, a truncated write, a foreign value) is ``None``, which
the predictor counts as a corrupt entry and treats as a miss.
"""

from __future__ import annotations

import json
import math
from typing import Any

Entry = dict[str, Any]

#: field -> accepted types; every entry has at least these.
REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "pair": (str,),
    "horizon_s": (int,),
    "predicted_price": (float, int),
    "as_of": (float, int),
    "created_at": (float, int),
    "model_version": (str,),
    "compute_ms": (float, int),
}


def encode_entry(entry: Entry) -> str:
    """Compact JSON text for a store."""
    return json.dumps(entry, separators=(",", ":"), allow_nan=False)


def decode_entry(raw: object) -> Entry | None:
    """The entry in ``raw`` (str or bytes of JSON), or ``None`` when it is not a valid entry."""
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(raw, str) or not raw.startswith("{"):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if is_valid_entry(value) else None


def is_valid_entry(value: object) -> bool:
    """True when ``value`` has every required field with a sane type and finite numbers."""
    if not isinstance(value, dict):
        return False
    for field, types in REQUIRED_FIELDS.items():
        item = value.get(field)
        if isinstance(item, bool) or not isinstance(item, types):
            return False
        if isinstance(item, float) and not math.isfinite(item):
            return False
    return bool(value["predicted_price"] > 0)
