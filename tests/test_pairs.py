from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from predcache.errors import BadPairError
from predcache.pairs import CATALOGUE, DEFAULT_PAIRS, pair_slug, parse_pair, parse_pair_list


@pytest.mark.parametrize("text", ["ETH/EUR", "eth/eur", " BTC/USD ", "Sol/Usd"])
def test_accepts(text: str) -> None:
    assert parse_pair(text) in CATALOGUE


@pytest.mark.parametrize(
    "text",
    ["", "ETH", "ETHEUR", "ETH/", "/EUR", "ETH/EUR/X", "../etc/passwd", "ETH\\EUR",
     "ETH-EUR", "E/EUR", "ETH/EUR;rm", "ÉTH/EUR", "ETH /EUR", "DOGE/EUR",
     "ETH/EUR\x00", "\u017fol/usd"],
)  # fmt: skip
def test_rejects(text: str) -> None:
    with pytest.raises(BadPairError) as info:
        parse_pair(text)
    assert "\n" not in str(info.value)


def test_unknown_lists_known() -> None:
    with pytest.raises(BadPairError, match="ETH/EUR"):
        parse_pair("DOGE/EUR")


def test_defaults_in_catalogue() -> None:
    assert set(DEFAULT_PAIRS) <= set(CATALOGUE)
    assert {"ETH/EUR", "BTC/USD", "SOL/USD"} <= set(DEFAULT_PAIRS)


def test_list_and_slug() -> None:
    assert parse_pair_list("eth/eur,BTC/USD,ETH/EUR") == ["ETH/EUR", "BTC/USD"]
    assert pair_slug("ETH/EUR") == "ETH-EUR"


@given(st.text(max_size=30))
def test_only_safe_pairs_pass(text: str) -> None:
    try:
        pair = parse_pair(text)
    except BadPairError as exc:
        assert "\n" not in str(exc)
    else:
        assert pair in CATALOGUE
        assert set(pair) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/")
