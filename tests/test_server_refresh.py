"""Refresh-ahead (XFetch) on a ManualClock: the decision, the single-flight, the recompute."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest

from predcache.clock import ManualClock
from predcache.errors import ComputeError
from predcache.keys import lock_key
from predcache.predictor import Predictor
from predcache.server.refresh import RefreshAhead, xfetch_due
from predcache.store.base import Store
from tests.conftest import FakeModels

TTL = 60.0


def entry(created_at: float, compute_ms: float) -> dict[str, Any]:
    return {"created_at": created_at, "compute_ms": compute_ms}


def test_xfetch_is_due_only_near_expiry_and_sooner_for_slow_models() -> None:
    e = entry(1000.0, 1000.0)  # one second to compute, expires at 1060
    u = math.exp(-1)  # -ln(u) = 1: due once now >= expiry - delta * beta
    assert not xfetch_due(e, 1058.9, TTL, 1.0, u)
    assert xfetch_due(e, 1059.0, TTL, 1.0, u)
    assert xfetch_due(e, 1058.0, TTL, 2.0, u)  # beta > 1 refreshes earlier
    assert not xfetch_due(entry(1000.0, 10.0), 1059.0, TTL, 1.0, u)  # fast model: later
    assert xfetch_due(e, 1060.0, TTL, 1.0, 1.0)  # at expiry it is always due


async def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def make(store: Store, models: FakeModels, clock: ManualClock, rand: float) -> RefreshAhead:
    predictor = Predictor(store, models, clock=clock, ttl_s=TTL)
    return RefreshAhead(predictor, _inline, rand=lambda: rand)


def test_a_due_hit_refreshes_once_in_the_background(
    store: Store, fake_models: FakeModels, clock: ManualClock
) -> None:
    ra = make(store, fake_models, clock, rand=0.999999)  # u = 1e-6: a lucky die
    ra.beta = 1e9  # so any hit is due: the test is about what happens next
    first = ra.predictor.get_or_compute("ETH/EUR", 300)
    clock.advance(30)
    work = ra.maybe_start("ETH/EUR", 300, first.entry)
    assert work is not None and ("ETH/EUR", 300) in ra.inflight
    assert ra.maybe_start("ETH/EUR", 300, first.entry) is None  # one refresh per key at a time
    asyncio.run(work)  # type: ignore[arg-type]
    assert ra.inflight == set() and fake_models.calls == 2
    hit = ra.predictor.get_or_compute("ETH/EUR", 300)
    assert hit.cache == "hit" and hit.entry["created_at"] == first.entry["created_at"] + 30
    clock.advance(59)  # 89 s after the first computation: still a hit thanks to the refresh
    assert ra.predictor.get_or_compute("ETH/EUR", 300).cache == "hit"


def test_not_due_means_no_work(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    ra = make(store, fake_models, clock, rand=0.5)
    first = ra.predictor.get_or_compute("ETH/EUR", 300)
    clock.advance(10)
    assert ra.maybe_start("ETH/EUR", 300, first.entry) is None
    assert fake_models.calls == 1


def test_refresh_if_idle_gives_way(
    store: Store, fake_models: FakeModels, clock: ManualClock
) -> None:
    p = Predictor(store, fake_models, clock=clock, ttl_s=TTL)
    seen = p.get_or_compute("ETH/EUR", 300).entry["created_at"]
    key = p.key_for("ETH/EUR", 300)
    token = store.acquire_lock(lock_key(key), 30)  # another process is computing this key
    assert token is not None
    assert not p.refresh_if_idle("ETH/EUR", 300, seen)
    store.release_lock(lock_key(key), token)
    clock.advance(5)
    assert p.refresh_if_idle("ETH/EUR", 300, seen)
    assert not p.refresh_if_idle("ETH/EUR", 300, seen)  # already newer than what we saw
    assert fake_models.calls == 2


def test_a_failed_refresh_is_counted_and_leaves_the_entry(
    store: Store, fake_models: FakeModels, clock: ManualClock
) -> None:
    errors: list[int] = []
    ra = make(store, fake_models, clock, rand=0.999999)
    ra.beta, ra._on_error = 1e9, lambda: errors.append(1)
    first = ra.predictor.get_or_compute("ETH/EUR", 300)

    def broken(pair: str, horizon_s: int, at: float) -> Any:
        raise ComputeError("model down")

    fake_models.compute = broken  # type: ignore[method-assign]
    work = ra.maybe_start("ETH/EUR", 300, first.entry)
    assert work is not None
    asyncio.run(work)  # type: ignore[arg-type]
    assert errors == [1] and ra.inflight == set()
    assert ra.predictor.get_or_compute("ETH/EUR", 300).cache == "hit"


@pytest.mark.parametrize("rand", [0.0, 0.999999])
def test_die_stays_in_range(rand: float) -> None:
    clock = ManualClock(0.0)
    ra = RefreshAhead(
        Predictor(None, FakeModels(), clock=clock, ttl_s=TTL), _inline, rand=lambda: rand
    )
    assert isinstance(ra.due(entry(0.0, 5.0)), bool)  # no log(0) for any random() value
