"""The decode gate: only our JSON entries get through, typed exactly as REQUIRED_FIELDS says."""

from __future__ import annotations

import pickle
from typing import Any

import orjson
import pytest

from predcache.entry import REQUIRED_FIELDS, decode_entry, encode_entry, is_valid_entry

GOOD: dict[str, Any] = {
    "pair": "ETH/EUR",
    "horizon_s": 300,
    "predicted_price": 2300.5,
    "as_of": 1_800_000_000,
    "created_at": 1_800_000_012.5,
    "model_version": "abc123",
    "compute_ms": 1.25,
    "last_price": 2299.0,
}


def test_roundtrip_str_and_bytes() -> None:
    text = encode_entry(GOOD)
    assert decode_entry(text) == GOOD
    assert decode_entry(text.encode()) == GOOD
    assert is_valid_entry(GOOD)


@pytest.mark.parametrize("field", sorted(REQUIRED_FIELDS))
def test_every_required_field_is_required(field: str) -> None:
    broken = {k: v for k, v in GOOD.items() if k != field}
    assert decode_entry(orjson.dumps(broken)) is None
    assert not is_valid_entry(broken)


@pytest.mark.parametrize("field", sorted(REQUIRED_FIELDS))
@pytest.mark.parametrize("bad", [None, True, "1", [1], {"a": 1}, 1.5, 7])
def test_types_are_exact(field: str, bad: object) -> None:
    value = dict(GOOD, **{field: bad})
    allowed = REQUIRED_FIELDS[field]
    ok = type(bad) in allowed and not (field == "predicted_price" and bad in (0,))
    assert (decode_entry(orjson.dumps(value)) is not None) == ok
    assert is_valid_entry(value) == ok


@pytest.mark.parametrize(
    "raw",
    [b"", "", "nan", "[1, 2]", '"x"', "{", "1e999", '{"pair": NaN}', b"\xff\xfe", 12, None,
     pickle.dumps(GOOD), b"\x80\x04garbage"],
)  # fmt: skip
def test_not_an_entry(raw: object) -> None:
    assert decode_entry(raw) is None


@pytest.mark.parametrize("price", [0, -1.0])
def test_price_must_be_positive(price: float) -> None:
    assert decode_entry(orjson.dumps(dict(GOOD, predicted_price=price))) is None


def test_non_finite_is_refused_from_any_source() -> None:
    assert not is_valid_entry(dict(GOOD, created_at=float("inf")))
    with pytest.raises(ValueError):
        encode_entry(dict(GOOD, as_of=float("nan")))


def test_encoding_is_compact_json() -> None:
    assert encode_entry({"b": [1, 2], "a": 0.5}) == '{"b":[1,2],"a":0.5}'  # type: ignore[typeddict-item]
    assert decode_entry(encode_entry(dict(GOOD, predicted_price=1e-9))) is not None  # type: ignore[arg-type]
    assert is_valid_entry(dict(GOOD, as_of=-1.0))  # finite is all that is asked of a time
    assert not is_valid_entry(dict(GOOD, compute_ms=float("nan")))
    assert not is_valid_entry([GOOD])


# --- value entries (the Python API's results) -------------------------------------------------

VALUE = {
    "value": {"x": [1, 2]},
    "as_of": 5.0,
    "created_at": 5.0,
    "model_version": "f1",
    "compute_ms": 2,
}


def test_value_entry_round_trip() -> None:
    from predcache.entry import entry_value, value_entry

    made = value_entry({"x": [1, 2]}, 5.0, "f1", 2)
    assert made == VALUE
    assert decode_entry(encode_entry(made)) == VALUE
    assert entry_value(made) == {"x": [1, 2]}
    assert is_valid_entry(made) and is_valid_entry(dict(VALUE, value=None))


@pytest.mark.parametrize("field", ["value", "model_version", "as_of", "created_at", "compute_ms"])
@pytest.mark.parametrize("bad", ["missing", None, "1", True, [1]])
def test_value_entry_shape_is_exact(field: str, bad: object) -> None:
    broken = {k: v for k, v in VALUE.items() if k != field}
    if bad != "missing":
        broken[field] = bad
    allowed = {"value": (dict, list, str, int, float, bool, type(None)), "model_version": (str,)}
    ok = bad != "missing" and type(bad) in allowed.get(field, (int, float))
    assert (decode_entry(orjson.dumps(broken)) is not None) == ok, broken
