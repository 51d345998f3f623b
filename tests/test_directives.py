"""Request directive parsing (RFC 9111 5.2.1): merged lines, junk ignored, no input that fails."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from predcache.server.directives import (
    MAX_DELTA_S,
    NO_DIRECTIVES,
    Directives,
    delta_seconds,
    parse_directives,
)


def cc(*lines: bytes) -> Directives:
    return parse_directives(list(lines), [])


def test_each_directive() -> None:
    assert cc(b"no-cache").no_cache and cc(b"no-cache").forced
    assert cc(b"No-Store").no_store
    assert cc(b"only-if-cached").only_if_cached
    assert cc(b"max-age=60").max_age == 60 and not cc(b"max-age=60").forced
    assert cc(b"max-age=0").forced
    assert cc(b"min-fresh=5").min_fresh == 5
    assert cc(b"max-stale").max_stale == math.inf
    assert cc(b'max-stale="30"').max_stale == 30
    assert cc(b"private, community=x, max-age=7").max_age == 7  # unknown ones ignored


def test_lines_and_lists_merge_and_the_tightest_value_wins() -> None:
    d = cc(b"no-cache", b"max-age=100, min-fresh=3", b" MAX-AGE = 20 ", b"max-stale=9, max-stale")
    assert d == Directives(max_age=20, max_stale=9, min_fresh=3, no_cache=True)


@pytest.mark.parametrize(
    "value",
    [b"abc", b"-1", b"1.5", b"1e3", b"\xc2\xb2", b"\xb2", b"\xef\xbc\x91", b"", b'"', b"0x10"],
)
def test_values_that_are_not_ascii_digits_drop_the_directive(value: bytes) -> None:
    assert delta_seconds(value) is None
    assert cc(b"max-age=" + value) == NO_DIRECTIVES


def test_huge_values_are_capped() -> None:
    assert delta_seconds(b"9" * 400) == MAX_DELTA_S


def test_pragma_counts_only_without_cache_control() -> None:
    assert parse_directives([], [b"no-cache"]).no_cache
    assert parse_directives([], [b"x, NO-CACHE"]).no_cache
    assert not parse_directives([b"max-age=5"], [b"no-cache"]).no_cache
    assert not parse_directives([], [b"no-cachex"]).no_cache


@settings(max_examples=500)
@given(st.lists(st.binary(max_size=64), max_size=4), st.lists(st.binary(max_size=16), max_size=2))
def test_any_header_bytes_parse(cache_control: list[bytes], pragma: list[bytes]) -> None:
    d = parse_directives(cache_control, pragma)
    assert d.max_age is None or 0 <= d.max_age <= MAX_DELTA_S
    assert d.min_fresh >= 0


_TOKENS = st.sampled_from([b"max-age", b"max-stale", b"min-fresh", b"no-cache", b"no-store", b"x"])


@settings(max_examples=500)
@given(st.lists(st.tuples(_TOKENS, st.binary(max_size=8)), max_size=6))
def test_directive_shaped_junk_parses(parts: list[tuple[bytes, bytes]]) -> None:
    d = cc(b",".join(name + b"=" + value for name, value in parts))
    assert d.max_stale is None or d.max_stale >= 0
