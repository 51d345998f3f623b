"""Request cache directives (RFC 9111 section 5.2.1), parsed so that no header can fail.

Every ``Cache-Control`` line of a request is read (several lines and comma lists merge into one
set), ``Pragma: no-cache`` counts only when there is no ``Cache-Control`` at all (RFC 9111
section 5.4), names are case-insensitive, unknown directives are ignored, and a value that is
not a delta-seconds (ASCII digits, optionally quoted) drops that directive as if it were absent
(section 1.2.2). Values are bytes straight from the ASGI scope: ``str.isdigit`` would accept
``'²'``, which ``int`` then refuses, so digits are checked as bytes. Nothing here raises.

A request without either header never gets here: :data:`NO_DIRECTIVES` is shared.
"""

from __future__ import annotations

import math

#: delta-seconds past this are taken as this (RFC 9111 section 1.2.2: 2^31)
MAX_DELTA_S = 2_147_483_648
_DIGITS = frozenset(b"0123456789")


class Directives:
    """What a request asked of the cache; every field has the meaning of its RFC directive.

    ``max_stale`` is ``math.inf`` for a bare ``max-stale`` (any staleness), ``None`` if absent.
    """

    __slots__ = ("max_age", "max_stale", "min_fresh", "no_cache", "no_store", "only_if_cached")

    def __init__(
        self,
        max_age: int | None = None,
        max_stale: float | None = None,
        min_fresh: int = 0,
        no_cache: bool = False,
        no_store: bool = False,
        only_if_cached: bool = False,
    ) -> None:
        self.max_age = max_age
        self.max_stale = max_stale
        self.min_fresh = min_fresh
        self.no_cache = no_cache
        self.no_store = no_store
        self.only_if_cached = only_if_cached

    @property
    def forced(self) -> bool:
        """The client asked for a recompute: ``no-cache``, or ``max-age=0`` (nothing is younger)."""
        return self.no_cache or self.max_age == 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Directives) and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"Directives({fields})"


NO_DIRECTIVES = Directives()


def delta_seconds(value: bytes) -> int | None:
    """An RFC 9111 delta-seconds (ASCII digits, quotes tolerated), else ``None``."""
    value = value.strip(b" \t")
    if len(value) >= 2 and value[0] == value[-1] == 0x22:  # '"'
        value = value[1:-1]
    if not value or not _DIGITS.issuperset(value):
        return None
    return min(int(value), MAX_DELTA_S)


def parse_directives(cache_control: list[bytes], pragma: list[bytes]) -> Directives:
    """The merged directives of all ``Cache-Control`` lines (else of ``Pragma``)."""
    d = Directives()
    if not cache_control:
        for line in pragma:
            if any(p.strip(b" \t").lower() == b"no-cache" for p in line.split(b",")):
                d.no_cache = True
        return d
    for line in cache_control:
        for part in line.split(b","):
            name, eq, value = part.partition(b"=")
            name = name.strip(b" \t").lower()
            if name == b"no-cache":
                d.no_cache = True  # a field-name list (no-cache="x") applies to us all the same
            elif name == b"no-store":
                d.no_store = True
            elif name == b"only-if-cached":
                d.only_if_cached = True
            elif name == b"max-age":
                seconds = delta_seconds(value)
                if seconds is not None:  # the tightest of repeated values wins
                    d.max_age = seconds if d.max_age is None else min(d.max_age, seconds)
            elif name == b"min-fresh":
                seconds = delta_seconds(value)
                if seconds is not None:
                    d.min_fresh = max(d.min_fresh, seconds)
            elif name == b"max-stale":
                stale: float | None = math.inf if not eq else delta_seconds(value)  # bare: any
                if stale is not None:
                    d.max_stale = stale if d.max_stale is None else min(d.max_stale, stale)
    return d
