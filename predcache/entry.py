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
from typing import Any, NotRequired, TypedDict

import orjson


class Entry(TypedDict):
    """One cached prediction as stored (JSON). The required fields are the product brief's
    contract and what :func:`decode_entry` checks; ``last_price`` is extra, for display."""

    pair: str
    horizon_s: int
    predicted_price: float
    #: the market time (epoch seconds) the prediction was made from
    as_of: float
    #: when the computation started (epoch seconds): freshness is counted from here
    created_at: float
    model_version: str
    compute_ms: float
    last_price: NotRequired[float]
    #: the host that computed it (named when its clock runs ahead of a reader's)
    writer: NotRequired[str]


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


def value_entry(value: Any, created_at: float, version: str, compute_ms: float) -> Entry:
    """An entry that holds a function's JSON result (the Python API, :mod:`predcache.api`).

    It has the policy fields (``created_at``, ``model_version``, ``compute_ms``, ``as_of``) and
    ``value`` instead of the prediction fields. It travels through the predictor and the stores
    typed as :class:`Entry`: they only read ``created_at`` (freshness) and the decode gate,
    which accepts this shape too; only the API reads ``value``, through :func:`entry_value`.
    """
    made = {
        "value": value,
        "as_of": created_at,
        "created_at": created_at,
        "model_version": version,
        "compute_ms": compute_ms,
    }
    return made  # type: ignore[return-value]  # see the docstring: only the API reads it


def entry_value(entry: Entry) -> Any:
    """The JSON result in an entry made by :func:`value_entry`."""
    return entry["value"]  # type: ignore[typeddict-item]


def encode_entry(entry: Entry) -> str:
    """Compact JSON text for a store."""
    return json.dumps(entry, separators=(",", ":"), allow_nan=False)


def decode_entry(raw: object) -> Entry | None:
    """The entry in ``raw`` (str or bytes of JSON), or ``None`` when it is not a valid entry.

    This runs on every cache hit, so it parses with orjson (faster than ``json`` on an entry; check
    a of ``benchmarks/perf.py`` measures the whole in-process hit). orjson refuses what is not JSON
    text (a non-str/bytes value, invalid UTF-8, NaN and out-of-range numbers), so every float it
    returns is finite.
    """
    try:
        value = orjson.loads(raw)  # type: ignore[arg-type]
    except orjson.JSONDecodeError:
        return None
    return value if _has_entry_shape(value) else None


_NUMBER = (float, int)


def _has_entry_shape(v: Any) -> bool:
    """The required fields with their exact types (a bool is never taken for an int).

    Written out rather than looped over :data:`REQUIRED_FIELDS`: it is on every hit, and the
    inline form is cheaper (check a of ``benchmarks/perf.py``). A test keeps the two in agreement.
    """
    try:
        return (
            type(v) is dict
            and type(v["pair"]) is str
            and type(v["horizon_s"]) is int
            and type(v["model_version"]) is str
            and type(v["predicted_price"]) in _NUMBER
            and type(v["as_of"]) in _NUMBER
            and type(v["created_at"]) in _NUMBER
            and type(v["compute_ms"]) in _NUMBER
            and v["predicted_price"] > 0
        )
    except KeyError:
        return _has_value_shape(v)


def _has_value_shape(v: Any) -> bool:
    """The shape of :func:`value_entry` (only tried when the prediction shape is not there)."""
    try:
        return (
            "value" in v
            and type(v["model_version"]) is str
            and type(v["as_of"]) in _NUMBER
            and type(v["created_at"]) in _NUMBER
            and type(v["compute_ms"]) in _NUMBER
        )
    except KeyError:
        return False


def is_valid_entry(value: object) -> bool:
    """True when ``value`` (from any source) has every required field, typed, finite, positive."""
    if not _has_entry_shape(value):
        return False
    assert isinstance(value, dict)
    numbers = (f for f, types in REQUIRED_FIELDS.items() if float in types and f in value)
    return all(math.isfinite(value[f]) for f in numbers)
