"""Targeted invalidation: remove one pair's predictions (one horizon or all), one model version's,
or every entry whose model version is no longer the current one.

Keys name the model version, pair and horizon (:mod:`predcache.keys`), so an entry is selected
by its key alone, without reading it. Shared by ``DELETE /predict`` and ``predcache cache purge``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from predcache.keys import parse_key
from predcache.store.base import Store


def selector(
    *,
    pair: str | None = None,
    horizon_s: int | None = None,
    model_version: str | None = None,
    current_versions: Mapping[str, str] | None = None,
) -> Callable[[str], bool]:
    """A key test: every given condition must hold. ``current_versions`` (pair -> version)
    selects entries of a version other than their pair's current one (pairs without a current
    model count as stale too)."""

    def match(key: str) -> bool:
        parsed = parse_key(key)
        if parsed is None:
            return False
        version, key_pair, key_horizon = parsed
        if pair is not None and key_pair != pair:
            return False
        if horizon_s is not None and key_horizon != horizon_s:
            return False
        if model_version is not None and version != model_version:
            return False
        return current_versions is None or current_versions.get(key_pair) != version

    return match


def purge(store: Store, match: Callable[[str], bool]) -> int:
    """Delete the selected entries; how many went."""
    return store.purge(match)
