"""Stampede strategies: what a request does when its key is being computed or just expired.

The names are declared here once and shared by the predictor (real serving), ``predcache serve
--stampede``, ``predcache bench --stampede`` (the simulated engine) and the Python API, so a
strategy means the same thing in every place (product brief, "Stampede strategies"):

- ``coalesce`` (the default, single-flight): a request for a key whose computation is in flight
  waits for it and is counted ``collapsed``;
- ``none`` (the seed's cache): it misses and calls the model too;
- ``stale-while-revalidate``: within a grace period after expiry the expired entry is served at
  once (``stale``) while one background computation refreshes it;
- ``refresh-ahead`` (XFetch): a hit near expiry may start one early background refresh; the
  rest behaves as ``coalesce``.

Also here: XFetch's test (:func:`xfetch_due`), shared by the server's refresh-ahead and the
bench engine's simulation of it, so both roll the same die the same way.
"""

from __future__ import annotations

import math
from typing import Final, Literal

from predcache.errors import BadInputError

Strategy = Literal["coalesce", "none", "stale-while-revalidate", "refresh-ahead"]
COALESCE: Final = "coalesce"
NONE: Final = "none"
STALE_WHILE_REVALIDATE: Final = "stale-while-revalidate"
REFRESH_AHEAD: Final = "refresh-ahead"
STRATEGIES: Final[tuple[Strategy, ...]] = (COALESCE, NONE, STALE_WHILE_REVALIDATE, REFRESH_AHEAD)
DEFAULT_STRATEGY: Final[Strategy] = COALESCE
#: the strategies in which a waiting request joins the one in-flight computation of its key
SINGLE_FLIGHT: Final[frozenset[str]] = frozenset((COALESCE, STALE_WHILE_REVALIDATE, REFRESH_AHEAD))


def parse_strategy(text: str, *, allowed: tuple[Strategy, ...] = STRATEGIES) -> Strategy:
    """One strategy name, or one :class:`BadInputError` line listing the valid ones."""
    name = text.strip().lower()
    for strategy in allowed:
        if strategy == name:
            return strategy
    raise BadInputError(f"bad --stampede {text!r}: expected one of {', '.join(allowed)}")


def parse_strategy_list(text: str, *, allowed: tuple[Strategy, ...] = STRATEGIES) -> list[Strategy]:
    """``coalesce,none`` -> a sweep of distinct strategies, in the order given."""
    names = [parse_strategy(part, allowed=allowed) for part in text.split(",") if part.strip()]
    if not names:
        raise BadInputError(f"bad --stampede {text!r}: expected one of {', '.join(allowed)}")
    return list(dict.fromkeys(names))


def check_grace(strategies: list[Strategy], grace_s: float | None) -> float:
    """The stale grace in seconds: only with stale-while-revalidate, and then required > 0."""
    swr = STALE_WHILE_REVALIDATE in strategies
    if grace_s is None:
        if swr:
            raise BadInputError("--stampede stale-while-revalidate needs --stale-grace, e.g. 5s")
        return 0.0
    if not swr:
        raise BadInputError("--stale-grace only applies to --stampede stale-while-revalidate")
    if not (math.isfinite(grace_s) and grace_s > 0):
        raise BadInputError("bad --stale-grace: must be more than 0")
    return grace_s


def xfetch_due(
    created_at: float, delta_s: float, now: float, ttl_s: float, beta: float, u: float
) -> bool:
    """XFetch's test for one hit: recompute early when ``now - delta*beta*ln(u) >= expiry``.

    ``delta_s`` is how long the value took to compute, ``u`` in (0, 1] the die (Vattani,
    Chierichetti & Lowenstein, VLDB 2015).
    """
    delta = max(delta_s, 1e-6)
    return now - delta * beta * math.log(u) >= created_at + ttl_s
