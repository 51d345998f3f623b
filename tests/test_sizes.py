"""``--size-limit`` sizes: decimal and binary units, and the short forms people type."""

from __future__ import annotations

import pytest

from predcache.errors import BadInputError
from predcache.sizes import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256M", 256 * 1024**2), ("256MiB", 256 * 1024**2), ("256MB", 256 * 1000**2),
        ("1G", 1024**3), ("1g", 1024**3), ("1GB", 1000**3), ("500000", 500_000),
        ("512K", 512 * 1024), ("1.5G", 1536 * 1024**2), ("1T", 1024**4), (" 64 KiB ", 65536),
    ],
)  # fmt: skip
def test_accepts(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "256X", "-1G", "1e9", "2T", "1000", "256 M B", "9" * 40])
def test_rejects(text: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_size(text, name="size-limit")
    assert str(info.value).startswith("bad size-limit: ")
    assert "\n" not in str(info.value)
