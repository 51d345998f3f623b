"""Parse byte sizes for ``--size-limit``: ``1000000``, ``500KB``, ``256M``, ``256MiB``, ``1G``.

``KB``/``MB``/``GB`` are powers of 1000; ``KiB``/``MiB``/``GiB`` and the bare letters ``K``,
``M``, ``G``, ``T`` are powers of 1024 (as ``ls -h``, ``du`` and Docker read them). One parser
for every option that takes a size.
"""

from __future__ import annotations

import re

from predcache.errors import BadInputError

_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}  # fmt: skip
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
MIN_SIZE = 64 * 1024
MAX_SIZE = 1024**4


def parse_size(
    text: str, *, name: str = "size", minimum: int = MIN_SIZE, maximum: int = MAX_SIZE
) -> int:
    """Bytes in ``text``; between ``minimum`` (by default 64 KiB: SQLite needs room) and
    ``maximum`` (1 TiB)."""
    match = _PATTERN.match(text) if len(text) <= 32 else None
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise BadInputError(f"bad {name}: {text[:32]!r} (expected e.g. 256M, 256MiB, 1G, 500000)")
    size = int(float(match.group(1)) * _UNITS[unit])
    if not minimum <= size <= maximum:
        raise BadInputError(
            f"bad {name}: {text!r} (must be between {_shown(minimum)} and {_shown(maximum)})"
        )
    return size


def _shown(size: int) -> str:
    """A bound as the user would type it (64KiB, 1TiB, or plain bytes)."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
