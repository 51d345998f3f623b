"""The memory store's own behaviour, pinned on a fake monotonic clock.

The contract (``tests/test_store_contract.py``) runs on every backend; this file pins what only
the memory store does: its bound and eviction order, the retain deadline and the lease, both on
the store's monotonic clock (replaced here by one the test moves, so nothing sleeps), namespaces
inside one store, and the exact figures of ``stats()``.
"""

from __future__ import annotations

import types

import pytest

from predcache.entry import Entry, encode_entry
from predcache.store import memory
from predcache.store.memory import DEFAULT_MAX_ENTRIES, MemoryStore


class Monotonic:
    """The store's ``time.monotonic``, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    fake = Monotonic()
    monkeypatch.setattr(memory, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def entry(price: float = 1.0, created_at: float = 1_800_000_000.0) -> Entry:
    return {
        "pair": "ETH/EUR",
        "horizon_s": 300,
        "predicted_price": price,
        "as_of": created_at - 60.0,
        "created_at": created_at,
        "model_version": "abc123",
        "compute_ms": 1.5,
    }


def test_the_bound_evicts_the_least_recently_stored() -> None:
    assert DEFAULT_MAX_ENTRIES == 1_000_000
    assert MemoryStore()._max_entries == DEFAULT_MAX_ENTRIES
    store = MemoryStore(max_entries=3)
    for i, key in enumerate("abc"):
        store.set(key, entry(float(i)))
    store.set("a", entry(9.0))  # rewritten: now the most recent
    assert store.entry_keys() == ["b", "c", "a"]
    store.set("d", entry(4.0))  # one over the bound: the oldest write goes
    assert store.entry_keys() == ["c", "a", "d"]
    assert store.get("b") is None
    got = store.get("a")
    assert got is not None and got["predicted_price"] == 9.0
    assert store.stats().entries == 3


def test_an_entry_lives_exactly_its_retain_time(clock: Monotonic) -> None:
    store = MemoryStore()
    store.set("k", entry(), retain_s=30.0)
    store.set("forever", entry())  # no retain time: kept until evicted or deleted
    clock.now += 29.999
    assert store.get("k") == entry()
    clock.now += 0.001  # the deadline itself is past it
    assert store.get("k") is None
    clock.now += 10**9
    assert store.get("forever") == entry()


def test_a_lease_lasts_exactly_its_length_and_renewal_restarts_it(clock: Monotonic) -> None:
    store = MemoryStore()
    token = store.acquire_lock("k:lock", 5.0)
    assert token is not None and len(token) == 32
    clock.now += 4.999
    assert store.acquire_lock("k:lock", 5.0) is None
    assert store.renew_lock("k:lock", token, 5.0) is True  # until now + 5
    clock.now += 4.999
    assert store.acquire_lock("k:lock", 5.0) is None
    assert store.renew_lock("k:lock", "not-the-token", 5.0) is False
    assert store.renew_lock("other:lock", token, 5.0) is False  # never held
    clock.now += 0.001  # the renewed lease ends: taken over
    other = store.acquire_lock("k:lock", 5.0)
    assert other is not None and other != token
    assert store.renew_lock("k:lock", token, 5.0) is False  # the old holder lost it
    store.release_lock("k:lock", token)  # not its lease any more: nothing happens
    assert store.acquire_lock("k:lock", 5.0) is None
    store.release_lock("k:lock", other)
    assert store.acquire_lock("k:lock", 5.0) is not None


def test_namespaces_share_one_store_without_meeting() -> None:
    plain, bench = MemoryStore(), MemoryStore("bench")
    bench._data = plain._data  # one dict, as if both views were of one process's memory
    bench._lock, bench._leases = plain._lock, plain._leases
    plain.set("v1:a", entry(1.0))
    bench.set("v1:a", entry(2.0))
    bench.set("v1:b", entry(3.0))
    assert sorted(plain._data) == ["bench:v1:a", "bench:v1:b", "v1:a"]
    assert bench.entry_keys() == ["v1:a", "v1:b"]
    got = bench.get("v1:a")
    assert got is not None and got["predicted_price"] == 2.0
    assert bench.delete("v1:a") is True
    assert bench.delete("v1:a") is False
    assert bench.stats().entries == 1
    assert bench.clear() == 1
    assert sorted(plain._data) == ["v1:a"]
    got = plain.get("v1:a")
    assert got is not None and got["predicted_price"] == 1.0
    # leases too are kept under the namespaced name: one view's lock never blocks the other's
    token = bench.acquire_lock("v1:a:lock", 5.0)
    assert token is not None and sorted(plain._leases) == ["bench:v1:a:lock"]
    mine = plain.acquire_lock("v1:a:lock", 5.0)
    assert mine is not None
    assert plain.renew_lock("v1:a:lock", token, 5.0) is False
    assert bench.renew_lock("v1:a:lock", token, 5.0) is True
    plain.release_lock("v1:a:lock", mine)
    assert sorted(plain._leases) == ["bench:v1:a:lock"]
    bench.release_lock("v1:a:lock", token)
    assert plain._leases == {}


def test_stats_figures_and_corrupt_values() -> None:
    store = MemoryStore()
    empty = store.stats()
    assert (empty.backend, empty.location, empty.entries, empty.bytes) == (
        "memory",
        "(process memory)",
        0,
        0,
    )
    assert (empty.oldest_created_at, empty.newest_created_at, empty.corrupt) == (None, None, 0)
    middle, old, new = entry(created_at=200.0), entry(created_at=100.0), entry(created_at=300.0)
    store.set("m", middle)
    store.set("o", old)
    store.set("n", new)
    store.set_raw("bad", "not json")
    stats = store.stats()
    assert stats.entries == 4
    assert stats.bytes == sum(len(encode_entry(e)) for e in (middle, old, new)) + len("not json")
    assert (stats.oldest_created_at, stats.newest_created_at) == (100.0, 300.0)
    assert stats.corrupt == 0  # counted when read, not when listed
    assert store.get("bad") is None
    assert store.get("bad") is None
    assert store.stats().corrupt == 2
    assert store.get("missing") is None
    assert store.stats().corrupt == 2  # a plain miss is not corrupt
