"""Which keys a purge selects (the store side is in the store contract)."""

from __future__ import annotations

from predcache.keys import parse_key, prediction_key
from predcache.purge import selector

KEYS = [
    prediction_key("new", "ETH/EUR", 300),
    prediction_key("new", "ETH/EUR", 60),
    prediction_key("new", "BTC/USD", 300),
    prediction_key("old", "ETH/EUR", 300),
    "v1:new:ETH/EUR:300:lock",
    "bench:v1:new:ETH/EUR:300",
]


def picked(**kw: object) -> list[str]:
    return [k for k in KEYS if selector(**kw)(k)]  # type: ignore[arg-type]


def test_parse_key_inverts_prediction_key() -> None:
    assert parse_key(prediction_key("3f9c", "SOL/USD", 900)) == ("3f9c", "SOL/USD", 900)
    assert parse_key("v1:a:ETH/EUR:³") is None  # a digit that is not ASCII is not a horizon
    assert parse_key("v1:a:ETH/EUR") is None


def test_by_pair_and_horizon() -> None:
    assert picked(pair="ETH/EUR") == [*KEYS[0:2], KEYS[3]]
    assert picked(pair="ETH/EUR", horizon_s=60) == [KEYS[1]]
    assert picked(pair="DOGE/EUR") == []


def test_by_version_and_stale_versions() -> None:
    assert picked(model_version="old") == [KEYS[3]]
    current = {"ETH/EUR": "new", "BTC/USD": "new"}
    assert picked(current_versions=current) == [KEYS[3]]
    assert picked(current_versions={"ETH/EUR": "new"}) == [KEYS[2], KEYS[3]]
