"""Predictor policy on a fake clock: never sleeps out a TTL."""

from __future__ import annotations

import pytest

from predcache.clock import ManualClock
from predcache.entry import encode_entry
from predcache.errors import BadHorizonError, StoreError
from predcache.predictor import Predictor
from predcache.store.base import Store, StoreStats
from predcache.store.memory import MemoryStore
from tests.conftest import FakeModels


def make(store: Store, models: FakeModels, clock: ManualClock, ttl: float = 90) -> Predictor:
    return Predictor(store, models, clock=clock, ttl_s=ttl)


def test_miss_hit_expire_miss(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(store, fake_models, clock)
    first = p.get_or_compute("ETH/EUR", 300)
    assert first.cache == "miss" and first.stored
    clock.advance(89.9)
    second = p.get_or_compute("ETH/EUR", 300)
    assert second.cache == "hit"
    assert second.entry["predicted_price"] == first.entry["predicted_price"]
    assert second.age_s == pytest.approx(89.9)
    clock.advance(0.1)  # age == ttl: expired (fresh only while age < ttl)
    third = p.get_or_compute("ETH/EUR", 300)
    assert third.cache == "miss"
    assert fake_models.calls == 2
    assert (p.stats.hits, p.stats.misses, p.stats.model_calls) == (1, 2, 2)


def test_hit_does_not_extend(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(store, fake_models, clock, ttl=10)
    p.get_or_compute("ETH/EUR", 300)
    for _ in range(3):
        clock.advance(4)
        served = p.get_or_compute("ETH/EUR", 300)
    assert served.cache == "miss"  # at age 12 > 10, though hits happened at 4 and 8


def test_max_age_tightens(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(store, fake_models, clock)
    p.get_or_compute("ETH/EUR", 300)
    clock.advance(30)
    assert p.get_or_compute("ETH/EUR", 300, max_age_s=60).cache == "hit"
    assert p.get_or_compute("ETH/EUR", 300, max_age_s=20).cache == "miss"
    assert p.get_or_compute("ETH/EUR", 300, max_age_s=0).cache == "miss"
    # a looser max-age never extends the TTL
    clock.advance(95)
    assert p.get_or_compute("ETH/EUR", 300, max_age_s=1000).cache == "miss"


def test_ttl_zero_never_caches(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(store, fake_models, clock, ttl=0)
    results = [p.get_or_compute("ETH/EUR", 300).cache for _ in range(3)]
    assert results == ["bypass"] * 3
    assert fake_models.calls == 3
    assert store.stats().entries == 0


def test_no_cache_and_refresh(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(store, fake_models, clock)
    assert p.get_or_compute("ETH/EUR", 300, use_cache=False).cache == "bypass"
    assert store.stats().entries == 0
    p.get_or_compute("ETH/EUR", 300)
    assert p.get_or_compute("ETH/EUR", 300, refresh=True).cache == "miss"
    assert fake_models.calls == 3


def test_version_change_misses(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(store, fake_models, clock)
    p.get_or_compute("ETH/EUR", 300)
    fake_models.current_version = "fake2"
    served = p.get_or_compute("ETH/EUR", 300)
    assert served.cache == "miss"
    assert served.entry["model_version"] == "fake2"


def test_keys_differ_by_pair_and_horizon(
    store: Store, fake_models: FakeModels, clock: ManualClock
) -> None:
    p = make(store, fake_models, clock)
    for pair, h in [("ETH/EUR", 300), ("ETH/EUR", 60), ("BTC/USD", 300)]:
        assert p.get_or_compute(pair, h).cache == "miss"


def test_entry_is_stamped(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(store, fake_models, clock)
    e = p.get_or_compute("ETH/EUR", 300).entry
    assert e["created_at"] == clock.now()
    assert e["as_of"] == (clock.now() // 60) * 60
    assert {"pair", "horizon_s", "predicted_price", "as_of", "created_at", "model_version",
            "compute_ms"} <= set(e)  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    ["not json", "{", '{"pair": "ETH/EUR"}', "[1,2]", '{"predicted_price": NaN}', ""],
)
def test_corrupt_entry_is_a_miss(raw: str, fake_models: FakeModels, clock: ManualClock) -> None:
    store = MemoryStore()
    p = make(store, fake_models, clock)
    store.set_raw(p.key_for("ETH/EUR", 300), raw)
    served = p.get_or_compute("ETH/EUR", 300)
    assert served.cache == "miss"
    assert store.corrupt_reads >= 1
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"  # overwritten with a good entry


def test_wrong_horizon(store: Store, fake_models: FakeModels, clock: ManualClock) -> None:
    with pytest.raises(BadHorizonError):
        make(store, fake_models, clock).get_or_compute("ETH/EUR", 7)
    assert fake_models.calls == 0


def test_model_delay_only_on_miss(
    store: Store, fake_models: FakeModels, clock: ManualClock
) -> None:
    slept: list[float] = []
    p = Predictor(store, fake_models, clock=clock, ttl_s=90, model_delay_s=1.0, sleep=slept.append)
    p.get_or_compute("ETH/EUR", 300)
    p.get_or_compute("ETH/EUR", 300)
    assert slept == [1.0]


class BrokenStore(Store):
    name = "broken"

    def get(self, key: str):  # type: ignore[no-untyped-def]
        raise StoreError("down")

    def set(self, key, entry, retain_s=None):  # type: ignore[no-untyped-def]
        raise StoreError("down")

    def delete(self, key: str) -> bool:
        raise StoreError("down")

    def clear(self) -> int:
        raise StoreError("down")

    def stats(self) -> StoreStats:
        raise StoreError("down")


def test_backend_failure_is_a_bypass(fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(BrokenStore(), fake_models, clock)
    served = p.get_or_compute("ETH/EUR", 300)
    assert served.cache == "bypass" and served.detail == "backend-unavailable"
    assert fake_models.calls == 1
    assert p.stats.backend_errors == 1


def test_set_failure_computes_once(fake_models: FakeModels, clock: ManualClock) -> None:
    class WriteBroken(MemoryStore):
        def set(self, key, entry, retain_s=None):  # type: ignore[no-untyped-def]
            raise StoreError("disk full")

    p = make(WriteBroken(), fake_models, clock)
    assert p.get_or_compute("ETH/EUR", 300).cache == "bypass"
    assert fake_models.calls == 1


def test_encode_rejects_nan() -> None:
    with pytest.raises(ValueError):
        encode_entry({"x": float("nan")})
