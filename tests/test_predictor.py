"""Predictor policy on a fake clock: never sleeps out a TTL."""

from __future__ import annotations

import os
import threading
from functools import partial

import pytest

from predcache.clock import ManualClock
from predcache.entry import Entry, encode_entry
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


class CountingGets(MemoryStore):
    """A memory store that records which threads have read it, so a test knows every thread
    has looked once. Threads, not reads: the computing thread reads twice (before and after
    taking the key's lock), so a read count reaches ``n`` while one thread has not arrived
    yet, which then finds the entry and is a hit."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[int] = set()
        self.guard = threading.Lock()

    @property
    def gets(self) -> int:
        return len(self.readers)

    def get(self, key: str):  # type: ignore[no-untyped-def]
        with self.guard:
            self.readers.add(threading.get_ident())
        return super().get(key)


def stampede(p: Predictor, store: CountingGets, gate: threading.Event, n: int) -> list[str]:
    """``n`` threads ask for one key; the model is held until each of them has read the store
    once (so each one arrived while the computation was in flight)."""
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(p.get_or_compute("ETH/EUR", 300).cache))
        for _ in range(n)
    ]
    for t in threads:
        t.start()
    for _ in range(5000):
        if store.gets >= n:
            break
        threading.Event().wait(0.002)
    gate.set()
    for t in threads:
        t.join()
    return sorted(results)


class GatedModels(FakeModels):
    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def compute(self, pair: str, horizon_s: int, at: float):  # type: ignore[no-untyped-def]
        self.gate.wait(10)
        return super().compute(pair, horizon_s, at)


def test_single_flight_threads(clock: ManualClock) -> None:
    """coalesce: one model call; the 15 requests that waited for it are collapsed, not hits."""
    gate = threading.Event()
    models, store = GatedModels(gate), CountingGets()
    p = make(store, models, clock)
    assert stampede(p, store, gate, 16) == ["collapsed"] * 15 + ["miss"]
    assert models.calls == 1
    assert (p.stats.hits, p.stats.collapsed, p.stats.misses) == (0, 15, 1)


def test_stampede_none_lets_every_request_compute(clock: ManualClock) -> None:
    """none (the seed's cache): every request that found no fresh entry calls the model."""
    gate = threading.Event()
    models, store = GatedModels(gate), CountingGets()
    p = Predictor(store, models, clock=clock, ttl_s=90, stampede="none")
    assert stampede(p, store, gate, 6) == ["miss"] * 6
    assert models.calls == 6 and p.stats.misses == 6
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"


def test_stale_while_revalidate_serves_within_the_grace(
    fake_models: FakeModels, clock: ManualClock
) -> None:
    p = Predictor(
        MemoryStore(), fake_models, clock=clock, ttl_s=10, stampede="stale-while-revalidate",
        stale_grace_s=5,
    )  # fmt: skip
    assert p.retain_s == 10 + 5 + 60  # the backend keeps an entry through its grace
    first = p.get_or_compute("ETH/EUR", 300)
    clock.advance(14.5)  # expired 4.5 s ago: served at once, as stale, with its true age
    stale = p.get_or_compute("ETH/EUR", 300)
    assert (stale.cache, stale.age_s) == ("stale", 14.5)
    assert stale.entry["predicted_price"] == first.entry["predicted_price"]
    fast = p.get_fresh("ETH/EUR", 300)
    assert fast is not None and fast.cache == "stale"
    assert fake_models.calls == 1 and p.stats.stale == 2
    assert p.refresh_if_idle("ETH/EUR", 300, float(first.entry["created_at"]))  # the refresh
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"
    clock.advance(15)  # age 15 = TTL + grace: past it, a plain miss
    assert p.get_fresh("ETH/EUR", 300) is None
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"
    assert fake_models.calls == 3


def test_grace_is_ignored_by_other_strategies(fake_models: FakeModels, clock: ManualClock) -> None:
    p = Predictor(MemoryStore(), fake_models, clock=clock, ttl_s=10, stale_grace_s=5)
    p.get_or_compute("ETH/EUR", 300)
    clock.advance(11)
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"


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

    def entry_keys(self) -> list[str]:
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


# --- counters, leases, errors and the refresh path, value by value ---------------------------


def _counts(p: Predictor) -> tuple[int, ...]:
    s = p.stats
    return (s.requests, s.hits, s.misses, s.bypasses, s.model_calls, s.errors, s.backend_errors)


def test_counters_after_a_known_sequence(fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(MemoryStore(), fake_models, clock)
    assert _counts(p) == (0, 0, 0, 0, 0, 0, 0)
    p.get_or_compute("ETH/EUR", 300)  # miss
    p.get_or_compute("ETH/EUR", 300)  # hit
    assert p.get_fresh("ETH/EUR", 300) is not None  # hit through the hit path
    assert p.get_fresh("BTC/USD", 300) is None  # not counted: the caller goes on to compute
    p.get_or_compute("ETH/EUR", 300, use_cache=False)  # bypass
    p.get_or_compute("ETH/EUR", 300, refresh=True)  # miss (forced)
    assert _counts(p) == (5, 2, 2, 1, 3, 0, 0)


def test_bypass_for_no_store_and_ttl_zero(fake_models: FakeModels, clock: ManualClock) -> None:
    for p in (
        Predictor(None, fake_models, clock=clock),
        make(MemoryStore(), fake_models, clock, 0),
    ):
        served = p.get_or_compute("ETH/EUR", 300)
        assert (served.cache, served.age_s, served.detail, served.stored) == (
            "bypass",
            0.0,
            None,
            False,
        )
        assert p.get_fresh("ETH/EUR", 300) is None
        assert not p.refresh_if_idle("ETH/EUR", 300, 0.0)
    assert fake_models.calls == 2


def test_a_miss_is_stored_and_says_so(fake_models: FakeModels, clock: ManualClock) -> None:
    p = make(MemoryStore(), fake_models, clock)
    miss = p.get_or_compute("ETH/EUR", 300)
    hit = p.get_or_compute("ETH/EUR", 300)
    assert (miss.stored, hit.stored) == (True, False)
    assert miss.key == hit.key == "v1:fake1:ETH/EUR:300"
    assert repr(hit) == "Served(hit, age 0.000s, v1:fake1:ETH/EUR:300)"


def test_the_entry_a_miss_writes(clock: ManualClock) -> None:
    models = FakeModels()
    p = make(MemoryStore(), models, clock)
    e = p.get_or_compute("BTC/USD", 900).entry
    minute = int(clock.now() // 60)
    assert {k: v for k, v in e.items() if k != "compute_ms"} == {
        "pair": "BTC/USD", "horizon_s": 900, "predicted_price": 100.0 + minute / 1000 + 0.09,
        "last_price": 100.0, "as_of": float(minute * 60), "created_at": clock.now(),
        "model_version": "fake1", "writer": os.uname().nodename,
    }  # fmt: skip
    assert 0.0 <= e["compute_ms"] < 60_000


def test_latency_is_in_milliseconds(fake_models: FakeModels, clock: ManualClock) -> None:
    import time

    p = Predictor(MemoryStore(), fake_models, clock=clock, model_delay_s=0.02, sleep=time.sleep)
    served = p.get_or_compute("ETH/EUR", 300)
    assert 20.0 <= served.latency_ms < 60_000.0
    assert 20.0 <= served.entry["compute_ms"] < 60_000.0  # the delay is part of the compute


def test_lock_lease_is_short_and_the_wait_covers_the_model_delay(
    fake_models: FakeModels, clock: ManualClock
) -> None:
    """The lease is a few seconds whatever the model delay (its holder renews it while the model
    runs, predcache.leases); how long a waiter waits for a live holder grows with the delay."""
    asked: list[float] = []

    class Leases(MemoryStore):
        def acquire_lock(self, name: str, lease_s: float) -> str | None:
            asked.append(lease_s)
            return super().acquire_lock(name, lease_s)

    store = Leases()
    default = Predictor(store, fake_models, clock=clock)
    assert (default.filler.lock_lease_s, default.filler.max_wait_s) == (3.0, 30.0)
    assert Predictor(store, fake_models, clock=clock, lock_lease_s=2).filler.lock_lease_s == 2.0
    assert Predictor(store, fake_models, clock=clock, max_wait_s=5).filler.max_wait_s == 5.0
    no_grace = Predictor(store, fake_models, clock=clock, stampede="stale-while-revalidate")
    assert (no_grace.stale_grace_s, no_grace.retain_s) == (0.0, 90.0 + 60.0)  # grace: none
    slow = Predictor(store, fake_models, clock=clock, model_delay_s=20, sleep=lambda s: None)
    # the wait grows with the delay (twice the delay plus 5 s), the lease does not
    assert (slow.filler.lock_lease_s, slow.filler.max_wait_s) == (3.0, 45.0)
    slow.get_or_compute("ETH/EUR", 300)
    assert asked == [3.0]
    assert store.acquire_lock("v1:fake1:ETH/EUR:300:lock", 1) is not None  # released after


def test_model_errors(clock: ManualClock) -> None:
    from predcache.errors import ComputeError

    class Broken(FakeModels):
        def compute(self, pair: str, horizon_s: int, at: float):  # type: ignore[no-untyped-def]
            raise ValueError("boom")

    p = make(MemoryStore(), Broken(), clock)
    with pytest.raises(ComputeError) as info:
        p.get_or_compute("ETH/EUR", 300)
    assert str(info.value) == "model call failed for ETH/EUR: ValueError: boom"
    with pytest.raises(BadHorizonError):
        p.get_or_compute("ETH/EUR", 301)  # the model source's own error passes as it is
    assert (p.stats.errors, p.stats.model_calls) == (1, 1)


def test_refresh_if_idle(fake_models: FakeModels, clock: ManualClock) -> None:
    store = MemoryStore()
    p = make(store, fake_models, clock)
    first = p.get_or_compute("ETH/EUR", 300).entry
    seen = float(first["created_at"])
    clock.advance(80)
    assert p.refresh_if_idle("ETH/EUR", 300, seen)  # nobody refreshed it: this one does
    fresh = store.get(p.key_for("ETH/EUR", 300))
    assert fresh is not None and fresh["created_at"] == seen + 80
    assert not p.refresh_if_idle("ETH/EUR", 300, seen)  # newer than what the caller saw
    assert p.refresh_if_idle("ETH/EUR", 300, seen + 80)  # as new as seen: refreshed again
    token = store.acquire_lock("v1:fake1:ETH/EUR:300:lock", 60)  # another process computes
    assert not p.refresh_if_idle("ETH/EUR", 300, seen + 80)
    assert token is not None
    store.release_lock("v1:fake1:ETH/EUR:300:lock", token)
    with p.filler.locks.get(p.key_for("ETH/EUR", 300)):  # this process computes it
        assert not p.refresh_if_idle("ETH/EUR", 300, seen + 80)
    assert fake_models.calls == 3


def test_a_waiter_whose_holder_never_finishes_computes_at_the_deadline(
    fake_models: FakeModels, clock: ManualClock
) -> None:
    """The lease never frees (a holder that keeps renewing it): the wait is bounded by
    ``max_wait_s``, then the request computes without the lock rather than failing."""
    import time

    store = MemoryStore()
    p = Predictor(store, fake_models, clock=clock, max_wait_s=5.0)
    assert store.acquire_lock("v1:fake1:ETH/EUR:300:lock", 3600) is not None
    t0 = time.monotonic()
    served = p.get_or_compute("ETH/EUR", 300)
    assert 5.0 <= time.monotonic() - t0 < 60.0
    assert (served.cache, fake_models.calls) == ("miss", 1)


def test_every_failed_model_call_is_counted_once(clock: ManualClock) -> None:
    """A model's own error (a PredcacheError, passed on as it is) and any other exception
    (wrapped in one ComputeError) each count one error and one model call, every time."""
    from predcache.errors import ComputeError, ModelError

    class Failing(FakeModels):
        def __init__(self) -> None:
            super().__init__()
            self.fail: Exception = ModelError("no model for ETH/EUR")

        def compute(self, pair: str, horizon_s: int, at: float):  # type: ignore[no-untyped-def]
            raise self.fail

    models = Failing()
    p = make(MemoryStore(), models, clock)
    for expected in (1, 2):
        with pytest.raises(ModelError, match=r"^no model for ETH/EUR$"):
            p.get_or_compute("ETH/EUR", 300)
        assert (p.stats.errors, p.stats.model_calls) == (expected, expected)
    models.fail = KeyError("x")
    for expected in (3, 4):
        with pytest.raises(ComputeError, match=r"^model call failed for ETH/EUR: KeyError: 'x'$"):
            p.get_or_compute("ETH/EUR", 300)
        assert (p.stats.errors, p.stats.model_calls) == (expected, expected)
    assert (p.stats.misses, p.stats.hits) == (0, 0)


def test_the_simulated_delay_is_slept_only_when_there_is_one(
    fake_models: FakeModels, clock: ManualClock
) -> None:
    slept: list[float] = []
    for delay in (0.0, -1.0, 0.25):
        p = Predictor(
            MemoryStore(), fake_models, clock=clock, model_delay_s=delay, sleep=slept.append
        )
        p.get_or_compute("ETH/EUR", 300)  # a miss: one model call
        p.get_or_compute("ETH/EUR", 300)  # a hit: no call, no delay
    assert slept == [0.25]


def test_compute_ms_is_the_model_time_in_ms_to_the_microsecond(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    """``compute_ms`` is read off the perf counter around the call (replaced here by one that
    returns two known readings), in milliseconds rounded to 3 decimals."""
    import types

    from predcache import compute
    from predcache.served import PredictorStats

    readings = iter([500.0, 500.0123456])
    monkeypatch.setattr(compute, "time", types.SimpleNamespace(perf_counter=lambda: next(readings)))
    stats = PredictorStats()
    entry = compute.call_model(
        lambda at: {"created_at": at},  # type: ignore[typeddict-item]
        "x",
        clock=clock,
        stats=stats,
        delay_s=0.0,
        sleep=lambda s: None,
    )
    assert dict(entry) == {"created_at": clock.now(), "compute_ms": 12.346}
    assert (stats.model_calls, stats.errors) == (1, 0)


def test_a_failed_write_serves_the_computed_entry(
    fake_models: FakeModels, clock: ManualClock
) -> None:
    """The model answered, the store did not take it: that very entry is served (bypass), and
    the write failure is one Unstored error carrying it, caused by the store's error."""
    from typing import cast

    from predcache.fill import Filler, Unstored

    class WriteBroken(MemoryStore):
        def set(self, key, entry, retain_s=None):  # type: ignore[no-untyped-def]
            raise StoreError("disk full")

    p = make(WriteBroken(), fake_models, clock)
    served = p.get_or_compute("ETH/EUR", 300)
    assert (served.cache, served.detail) == ("bypass", "backend-unavailable")
    assert served.entry["predicted_price"] == 100.0 + int(clock.now() // 60) / 1000 + 0.03
    assert served.entry["created_at"] == clock.now()
    assert (p.stats.backend_errors, p.stats.bypasses, fake_models.calls) == (1, 1, 1)
    computed = cast("Entry", {"created_at": 1.0})
    with pytest.raises(Unstored) as info:
        Filler(WriteBroken(), retain_s=90.0).put("k", computed)
    assert str(info.value) == "the computed entry could not be stored"
    defaults = Filler(None, retain_s=90.0)
    assert (defaults.lock_lease_s, defaults.max_wait_s, defaults.cross_process_lock) == (
        3.0,
        30.0,
        True,
    )
    assert info.value.entry is computed
    assert str(info.value.__cause__) == "disk full"


def test_the_entry_before_the_model_call_stamps_it(clock: ManualClock) -> None:
    """:func:`prediction_entry` alone: the model's figures, ``compute_ms`` 0.0 until
    :func:`call_model` measures it."""
    from predcache.compute import WRITER, prediction_entry

    e = prediction_entry(FakeModels(), "BTC/USD", 900, 1_800_000_030.0)
    assert e == {
        "pair": "BTC/USD", "horizon_s": 900, "predicted_price": 100.0 + 30_000_000 / 1000 + 0.09,
        "last_price": 100.0, "as_of": 1_800_000_000.0, "created_at": 1_800_000_030.0,
        "model_version": "fake1", "writer": WRITER, "compute_ms": 0.0,
    }  # fmt: skip


class LockRecorder(MemoryStore):
    """A memory store that records every lock call it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.lock_calls: list[tuple[str, str]] = []

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        token = super().acquire_lock(name, lease_s)
        self.lock_calls.append(("acquire", name))
        return token

    def release_lock(self, name: str, token: str) -> None:
        self.lock_calls.append(("release", name))
        super().release_lock(name, token)

    def renew_lock(self, name: str, token: str, lease_s: float) -> bool:
        self.lock_calls.append(("renew", name))
        return super().renew_lock(name, token, lease_s)


def test_the_lease_renewed_during_a_computation_is_the_keys(clock: ManualClock) -> None:
    """While the model runs (a miss, a refresh, a refresh-ahead), the lease keeper holds the
    key's lock under the token the store gave out: the one it would renew."""
    store = LockRecorder()
    models = FakeModels()
    p = make(store, models, clock)
    key = p.key_for("ETH/EUR", 300)
    seen: list[tuple[dict[str, str], str]] = []

    class Watching(FakeModels):
        def compute(self, pair: str, horizon_s: int, at: float):  # type: ignore[no-untyped-def]
            assert p.filler.leases is not None
            seen.append((dict(p.filler.leases._held), store._leases[key + ":lock"][0]))
            return models.compute(pair, horizon_s, at)

    p.models = Watching()
    p.get_or_compute("ETH/EUR", 300)  # a miss
    p.get_or_compute("ETH/EUR", 300, refresh=True)  # a forced recomputation
    assert p.refresh_if_idle("ETH/EUR", 300, clock.now())  # refresh-ahead
    assert [held for held, _ in seen] == [{key + ":lock": token} for _, token in seen]
    assert len(seen) == 3 and p.filler.leases is not None and p.filler.leases._held == {}
    assert store.lock_calls == [("acquire", key + ":lock"), ("release", key + ":lock")] * 3


def test_without_the_cross_process_lock_the_store_sees_no_lock_call(clock: ManualClock) -> None:
    """``cross_process_lock=False`` (the simulated bench): no lock, lease or release reaches the
    store on a miss or a refresh-ahead, and the computed entry is what is stored."""
    store = LockRecorder()
    models = FakeModels()
    p = Predictor(store, models, clock=clock, ttl_s=90, cross_process_lock=False)
    p.get_or_compute("ETH/EUR", 300)
    clock.advance(30)
    assert p.refresh_if_idle("ETH/EUR", 300, clock.now() - 30)
    stored = store.get(p.key_for("ETH/EUR", 300))
    assert stored is not None and stored["created_at"] == clock.now()
    assert stored["predicted_price"] == 100.0 + int(clock.now() // 60) / 1000 + 0.03
    assert (store.lock_calls, models.calls) == ([], 2)


def test_one_lock_per_key(fake_models: FakeModels, clock: ManualClock) -> None:
    """A cached computation may ask for another key (a cached function calling another): it
    must not wait on its own key's lock. Run in a thread so a shared lock shows as a hang."""
    from predcache.fill import KeyLocks

    locks = KeyLocks()
    a, b = locks.get("a"), locks.get("b")
    assert a is not b and locks.get("a") is a and locks.get("b") is b
    p = make(MemoryStore(), fake_models, clock)
    inner: list[str] = []

    def outer_compute():  # type: ignore[no-untyped-def]
        inner.append(p.serve("inner", lambda: p.compute("BTC/USD", 300)).cache)
        return p.compute("ETH/EUR", 300)

    done: list[str] = []
    t = threading.Thread(target=lambda: done.append(p.serve("outer", outer_compute).cache))
    t.daemon = True
    t.start()
    t.join(60)  # only a bound on a hang: the calls themselves take milliseconds
    assert (done, inner) == (["miss"], ["miss"])


def test_latency_is_the_time_between_arrival_and_answer(
    monkeypatch: pytest.MonkeyPatch, fake_models: FakeModels, clock: ManualClock
) -> None:
    """``latency_ms`` of every outcome is read off the predictor's perf counter (replaced here:
    each request reads it when it arrives and when it is answered) in milliseconds."""
    import types

    from predcache import predictor

    readings = iter([100.0, 100.004, 200.0, 200.0125, 300.0, 300.5, 400.0, 400.25])
    monkeypatch.setattr(
        predictor, "time", types.SimpleNamespace(perf_counter=lambda: next(readings))
    )
    p = make(MemoryStore(), fake_models, clock)
    miss = p.get_or_compute("ETH/EUR", 300)
    hit = p.get_or_compute("ETH/EUR", 300)
    fresh = p.get_fresh("ETH/EUR", 300)
    bypass = p.serve("k", lambda: p.compute("BTC/USD", 300), use_cache=False)
    assert fresh is not None
    assert [s.cache for s in (miss, hit, fresh, bypass)] == ["miss", "hit", "hit", "bypass"]
    assert [s.latency_ms for s in (miss, hit, fresh, bypass)] == pytest.approx(
        [4.0, 12.5, 500.0, 250.0], abs=1e-6
    )


def test_max_age_zero_is_never_served_stale(fake_models: FakeModels, clock: ManualClock) -> None:
    """``max-age=0`` asks for a computation made after the request: even within
    stale-while-revalidate's grace, and even from the hit path, nothing stored is served."""
    p = Predictor(
        MemoryStore(), fake_models, clock=clock, ttl_s=10, stampede="stale-while-revalidate",
        stale_grace_s=30,
    )  # fmt: skip
    p.get_or_compute("ETH/EUR", 300)
    clock.advance(5)  # fresh (age 5 < 10), and within any grace
    assert p.get_fresh("ETH/EUR", 300, max_age_s=0) is None
    assert p.serve_fresh(p.key_for("ETH/EUR", 300), max_age_s=0) is None
    # nothing to look up, so no horizon check either (get_or_compute, which follows, checks it)
    assert p.get_fresh("ETH/EUR", 301, max_age_s=0) is None
    served = p.get_or_compute("ETH/EUR", 300, max_age_s=0)
    assert (served.cache, served.age_s, served.entry["created_at"]) == ("miss", 0.0, clock.now())
    clock.advance(12)  # expired 2 s ago, within the grace: stale for a plain request only
    assert p.get_or_compute("ETH/EUR", 300, max_age_s=0).cache == "miss"
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"  # the one it just computed
    assert (fake_models.calls, p.stats.stale, p.stats.misses) == (3, 0, 3)


def test_clock_skew_boundaries_and_episodes(fake_models: FakeModels, clock: ManualClock) -> None:
    """An entry exactly ``max_clock_skew_s`` ahead is within tolerance (a hit of age 0); past
    it, a miss, warned once per writer and episode: a within-tolerance read of that writer's
    entry ends the episode, so the next skewed entry warns again."""
    notes: list[str] = []
    store = MemoryStore()
    p = Predictor(
        store, fake_models, clock=clock, ttl_s=90, max_clock_skew_s=5, notify=notes.append
    )
    key = p.key_for("ETH/EUR", 300)
    entry = {k: v for k, v in p.get_or_compute("ETH/EUR", 300).entry.items() if k != "writer"}

    def served_after_planting(ahead: float, writer: str | None) -> str:
        planted = {**entry, "created_at": clock.now() + ahead}
        if writer is not None:
            planted["writer"] = writer
        store.set(key, planted)  # type: ignore[arg-type]
        return p.get_or_compute("ETH/EUR", 300).cache

    assert (served_after_planting(5.0, "w1"), notes) == ("hit", [])
    assert (served_after_planting(5.5, "w1"), len(notes)) == ("miss", 1)
    assert notes[0].startswith("warning: a cache entry written by w1 is stamped 5.5s ahead")
    assert (served_after_planting(6.0, "w1"), len(notes)) == ("miss", 1)  # the same episode
    assert (served_after_planting(1.0, "w1"), len(notes)) == ("hit", 1)  # w1 is back
    assert p._skewed_writers == set()
    assert (served_after_planting(7.0, "w1"), len(notes)) == ("miss", 2)  # a new episode
    assert notes[1].startswith("warning: a cache entry written by w1 is stamped 7.0s ahead")
    assert (served_after_planting(9.0, None), len(notes)) == ("miss", 3)
    assert "written by unknown is stamped 9.0s ahead" in notes[2]
    assert (served_after_planting(0.0, "other"), len(notes)) == ("hit", 3)
    assert p._skewed_writers == {"w1", "unknown"}  # only the writer read ends its episode
    assert (served_after_planting(2.0, None), p._skewed_writers) == ("hit", {"w1"})


def test_a_request_that_waited_is_never_served_stale(clock: ManualClock) -> None:
    """A request that waited for another's computation wants that computation's entry: an entry
    only within stale-while-revalidate's grace is not it, so the request computes."""
    models = FakeModels()
    p = Predictor(
        MemoryStore(), models, clock=clock, ttl_s=10, stampede="stale-while-revalidate",
        stale_grace_s=30,
    )  # fmt: skip
    p.get_or_compute("ETH/EUR", 300)
    clock.advance(12)  # stale for a plain request
    served = p.get_or_compute("ETH/EUR", 300, waited=True)
    assert (served.cache, models.calls, p.stats.stale, p.stats.collapsed) == ("miss", 2, 0, 0)


def test_a_refresh_ahead_is_superseded_only_by_a_newer_believable_entry(
    fake_models: FakeModels, clock: ManualClock
) -> None:
    store = MemoryStore()
    p = Predictor(store, fake_models, clock=clock, ttl_s=90, max_clock_skew_s=5)
    key = p.key_for("ETH/EUR", 300)
    entry = dict(p.get_or_compute("ETH/EUR", 300).entry)
    seen = clock.now()  # the entry the caller saw was created now
    for created_at, refreshed in [
        (seen + 1, False),  # newer than the caller saw: someone refreshed it
        (clock.now() + 5.0, False),  # as far ahead as the tolerance allows: still believed
        (clock.now() + 5.5, True),  # from a clock too far ahead: not a real refresh
    ]:
        store.set(key, {**entry, "created_at": created_at})  # type: ignore[typeddict-item]
        assert p.refresh_if_idle("ETH/EUR", 300, seen) is refreshed, created_at


def test_serve_any_key_under_the_same_policy(clock: ManualClock) -> None:
    """:meth:`Predictor.serve` (the Python API's path): counted like a prediction, with
    ``max_age_s``, ``refresh`` and ``use_cache`` doing what they do for one."""
    p = Predictor(MemoryStore(), FakeModels(), clock=clock, ttl_s=90)

    def compute() -> Entry:
        return p.compute("ETH/EUR", 300)

    first = p.serve("k", compute)
    assert (first.cache, first.entry["created_at"]) == ("miss", clock.now())
    clock.advance(30)
    hit = p.serve("k", compute)
    assert (hit.cache, hit.age_s, hit.entry["created_at"]) == ("hit", 30.0, clock.now() - 30)
    tighter = p.serve("k", compute, max_age_s=20)  # tighter than its age
    assert (tighter.cache, tighter.entry["created_at"]) == ("miss", clock.now())
    clock.advance(1)
    refreshed = p.serve("k", compute, refresh=True)
    assert (refreshed.cache, refreshed.entry["created_at"]) == ("miss", clock.now())
    assert p.serve("k", compute, use_cache=False).cache == "bypass"
    assert (p.stats.requests, p.stats.hits, p.stats.misses, p.stats.bypasses) == (5, 1, 3, 1)
    assert p.stats.model_calls == 4


def test_a_miss_is_as_old_as_its_computation(clock: ManualClock) -> None:
    """An entry is stamped when its computation starts; a model that takes 2 s (simulated: the
    sleep moves the fake clock) answers with an entry 2 s old, and every figure says so."""
    p = Predictor(
        MemoryStore(), FakeModels(), clock=clock, ttl_s=90, model_delay_s=2, sleep=clock.advance
    )
    start = clock.now()
    miss = p.get_or_compute("ETH/EUR", 300)
    assert (miss.cache, miss.age_s, miss.entry["created_at"]) == ("miss", 2.0, start)
    hit = p.get_or_compute("ETH/EUR", 300)
    assert (hit.cache, hit.age_s) == ("hit", 2.0)
    bypass = p.get_or_compute("ETH/EUR", 300, use_cache=False)
    assert (bypass.cache, bypass.age_s) == ("bypass", 0.0)  # a bypass is never called old


def test_put_keeps_an_entry_for_the_retain_time(clock: ManualClock) -> None:
    asked: list[float | None] = []

    class Recording(MemoryStore):
        def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
            asked.append(retain_s)
            super().set(key, entry, retain_s)

    store = Recording()
    p = Predictor(store, FakeModels(), clock=clock, ttl_s=90)
    e = p.compute("ETH/EUR", 300)
    p.put("k", e)
    assert store.get("k") == e
    swr = Predictor(
        store, FakeModels(), clock=clock, ttl_s=90, stampede="stale-while-revalidate",
        stale_grace_s=30, retain_margin_s=10,
    )  # fmt: skip
    swr.put("k", e)
    assert asked == [90 + 60, 90 + 30 + 10]


def test_a_lock_taken_over_is_held_while_computing_and_released(clock: ManualClock) -> None:
    """Another process held the key's lock when this miss arrived, then went away without an
    entry: the waiter takes the lock over, computes holding it (its lease kept) and releases it."""

    class HeldOnce(LockRecorder):
        refused = False

        def acquire_lock(self, name: str, lease_s: float) -> str | None:
            if not self.refused:
                self.refused = True
                self.lock_calls.append(("refused", name))
                return None
            return super().acquire_lock(name, lease_s)

    store = HeldOnce()
    p = make(store, FakeModels(), clock)
    lock = p.key_for("ETH/EUR", 300) + ":lock"
    held: list[dict[str, str]] = []
    models = p.models

    class Watching(FakeModels):
        def compute(self, pair: str, horizon_s: int, at: float):  # type: ignore[no-untyped-def]
            assert p.filler.leases is not None
            held.append(dict(p.filler.leases._held))
            return models.compute(pair, horizon_s, at)

    p.models = Watching()
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"
    assert store.lock_calls == [("refused", lock), ("acquire", lock), ("release", lock)]
    assert list(held[0]) == [lock] and store._leases == {}


def test_the_lease_keeper_renews_in_the_predictors_store_for_its_lease(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    """The renewal the keeper's thread makes every third of a lease, made here by hand: it
    extends the key's lock in the predictor's store by the predictor's lease (2 s here), on the
    store's fake monotonic clock."""
    import types

    from predcache.store import memory

    now = [50.0]
    monkeypatch.setattr(memory, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    store = MemoryStore()
    p = Predictor(store, FakeModels(), clock=clock, lock_lease_s=2)
    keeper = p.filler.leases
    assert keeper is not None and (keeper.lease_s, keeper.every_s) == (2.0, 2 / 3)
    token = store.acquire_lock("k:lock", 2.0)
    assert token is not None and store._leases["k:lock"] == (token, 52.0)
    now[0] = 51.5
    assert keeper.renew("k:lock", token) is True
    assert store._leases["k:lock"] == (token, 53.5)
    assert keeper.renew("k:lock", "not-the-token") is False
    assert (keeper.renewed, keeper.lost) == (1, 1)
    assert Predictor(None, FakeModels(), clock=clock).filler.leases is None  # nothing to renew


def test_a_refresh_served_by_a_computation_that_started_after_it(clock: ManualClock) -> None:
    """Refreshes that arrived (took their tickets) before another one's computation started
    are served by it: collapsed, counted, with the entry's true age, no model call of their
    own. A refresh arriving after it computes again."""
    models = FakeModels()
    p = make(MemoryStore(), models, clock)
    early = [p.ticket(), p.ticket()]
    at_once, btc_early = p.ticket(), p.ticket()
    first = p.get_or_compute("ETH/EUR", 300, refresh=True)
    now = p.get_or_compute("ETH/EUR", 300, refresh=True, arrived=at_once)
    assert (now.cache, now.age_s) == ("collapsed", 0.0)
    # another key's refresh, though it too arrived before that computation: its own flight
    btc = p.get_or_compute("BTC/USD", 300, refresh=True, arrived=btc_early)
    assert (btc.cache, btc.entry["pair"]) == ("miss", "BTC/USD")
    clock.advance(3)
    shared = [p.get_or_compute("ETH/EUR", 300, refresh=True, arrived=t) for t in early]
    for s in shared:
        assert (s.cache, s.age_s, s.key, s.entry) == ("collapsed", 3.0, first.key, first.entry)
        assert s.latency_ms >= 0.0 and not s.stored
    assert (p.stats.collapsed, p.stats.misses, models.calls) == (3, 2, 2)
    again = p.get_or_compute("ETH/EUR", 300, refresh=True)
    assert (again.cache, again.age_s, models.calls) == ("miss", 0.0, 3)
    assert [p.serve("k", lambda: p.compute("BTC/USD", 300), refresh=True).cache for _ in "ab"] == [
        "miss",
        "miss",
    ]


def test_outage_answers_are_counted_and_never_shared_across_keys(clock: ManualClock) -> None:
    """During an outage each request is a bypass of age 0, counted each time; one running for
    ETH/EUR (held in its model) does not answer a BTC/USD request."""
    gate = threading.Event()
    entered = threading.Event()

    class HeldEth(FakeModels):
        def compute(self, pair: str, horizon_s: int, at: float):  # type: ignore[no-untyped-def]
            if pair == "ETH/EUR" and not gate.is_set():
                entered.set()
                gate.wait(30)
            return super().compute(pair, horizon_s, at)

    gate.set()
    p = make(BrokenStore(), HeldEth(), clock)
    for n in (1, 2):
        s = p.get_or_compute("ETH/EUR", 300)
        assert (s.cache, s.age_s, s.key, s.detail) == (
            "bypass",
            0.0,
            "v1:fake1:ETH/EUR:300",
            "backend-unavailable",
        )
        assert s.latency_ms >= 0.0
        assert (p.stats.backend_errors, p.stats.bypasses) == (n, n)
    gate.clear()
    eth = threading.Thread(target=lambda: p.get_or_compute("ETH/EUR", 300), daemon=True)
    eth.start()
    assert entered.wait(30)
    btc: list[str] = []
    other = threading.Thread(
        target=lambda: btc.append(p.get_or_compute("BTC/USD", 300).entry["pair"]), daemon=True
    )
    other.start()
    other.join(10)  # only a bound: BTC/USD computes at once unless it waits on ETH/EUR's flight
    gate.set()
    other.join(30)
    eth.join(30)
    assert btc == ["BTC/USD"]


def test_refresh_ahead_needs_a_store_and_a_ttl(clock: ManualClock) -> None:
    """``refresh_key_if_idle`` (the API's path) checks for itself, whoever calls it."""
    for with_store, ttl, done in [(False, 90, False), (True, 0, False), (True, 1, True)]:
        for by_key in (True, False):
            p = Predictor(
                MemoryStore() if with_store else None, FakeModels(), clock=clock, ttl_s=ttl
            )
            if by_key:
                key = p.key_for("ETH/EUR", 300)
                got = p.refresh_key_if_idle(key, partial(p.compute, "ETH/EUR", 300), 0.0)
            else:
                got = p.refresh_if_idle("ETH/EUR", 300, 0.0)
            assert got is done, (with_store, ttl, by_key)


def test_one_second_limits_and_what_each_answer_says(clock: ManualClock) -> None:
    """A TTL or max-age of one second still caches; the hit path counts only what it serves;
    every bypass is counted; a stale answer says why it is stale, a hit says nothing."""
    p = Predictor(MemoryStore(), FakeModels(), clock=clock, ttl_s=1)
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"
    p = make(MemoryStore(), FakeModels(), clock)
    p.get_or_compute("ETH/EUR", 300)
    clock.advance(0.5)
    fresh = p.get_fresh("ETH/EUR", 300, max_age_s=1)
    assert fresh is not None and (fresh.cache, fresh.detail) == ("hit", None)
    by_key = p.serve_fresh(p.key_for("ETH/EUR", 300), max_age_s=1)
    assert by_key is not None and by_key.cache == "hit"
    assert p.get_fresh("BTC/USD", 300) is None
    assert p.stats.requests == 3  # the miss and the two hits, not the absent key
    for _ in range(2):
        bypass = p.get_or_compute("ETH/EUR", 300, use_cache=False)
        assert (bypass.entry["pair"], bypass.key) == ("ETH/EUR", "v1:fake1:ETH/EUR:300")
    assert (p.stats.requests, p.stats.bypasses) == (5, 2)
    unprotected = Predictor(MemoryStore(), FakeModels(), clock=clock, stampede="none")
    miss = unprotected.get_or_compute("ETH/EUR", 300)
    assert (miss.cache, miss.key, miss.stored) == ("miss", "v1:fake1:ETH/EUR:300", True)
    swr = Predictor(
        MemoryStore(), FakeModels(), clock=clock, ttl_s=10, stampede="stale-while-revalidate",
        stale_grace_s=5,
    )  # fmt: skip
    swr.get_or_compute("ETH/EUR", 300)
    clock.advance(12)
    stale = swr.get_or_compute("ETH/EUR", 300)
    assert (stale.cache, stale.detail) == ("stale", "stale-while-revalidate")
