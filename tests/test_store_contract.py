"""The store contract, written once and run against every backend (see ``conftest.BACKENDS``),
against Redis Cluster, Sentinel and Valkey (real ones, ``tests/fixtures/redis_cluster.py``),
and against :class:`ProxyStore`, the pass-through base every store wrapper builds on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from predcache.entry import Entry
from predcache.store.base import Store
from tests.conftest import BACKENDS, backend_url, make_store

#: shared backends: they keep namespaces apart (memory stores share nothing by design)
SHARED = ["disk", "redis", "redis+cluster", "redis+sentinel", "valkey"]


@pytest.fixture(params=[*BACKENDS, "redis+cluster", "redis+sentinel", "valkey", "proxy"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = make_store(request.param, tmp_path, redis_url=backend_url(request.param, request))
    yield s
    s.close()


def entry(price: float = 123.5, created_at: float = 1_800_000_000.0) -> Entry:
    return {
        "pair": "ETH/EUR",
        "horizon_s": 300,
        "predicted_price": price,
        "as_of": 1_799_999_940.0,
        "created_at": created_at,
        "model_version": "abc123",
        "compute_ms": 1.5,
    }


def test_missing_key_is_none(store: Store) -> None:
    assert store.get("nope") is None


def test_set_then_get_roundtrip(store: Store) -> None:
    store.set("k", entry())
    assert store.get("k") == entry()


def test_get_returns_a_copy(store: Store) -> None:
    store.set("k", entry())
    got = store.get("k")
    assert got is not None
    got["predicted_price"] = -1
    assert store.get("k") == entry()


def test_overwrite(store: Store) -> None:
    store.set("k", entry(1.0))
    store.set("k", entry(2.0))
    got = store.get("k")
    assert got is not None and got["predicted_price"] == 2.0


def test_delete(store: Store) -> None:
    store.set("k", entry())
    assert store.delete("k") is True
    assert store.get("k") is None
    assert store.delete("k") is False


def test_clear_counts_and_empties(store: Store) -> None:
    for i in range(5):
        store.set(f"k{i}", entry(float(i + 1)))
    assert store.clear() == 5
    assert store.get("k0") is None
    assert store.stats().entries == 0


def test_stats_bytes_are_the_entries_own(store: Store) -> None:
    """Every backend counts the same bytes: the stored JSON, none for an empty store."""
    from predcache.entry import encode_entry

    assert store.stats().bytes == 0
    store.set("a", entry())
    assert store.stats().bytes == len(encode_entry(entry()).encode())


def test_stats(store: Store) -> None:
    store.set("a", entry(created_at=100.0))
    store.set("b", entry(created_at=200.0))
    st = store.stats()
    assert st.entries == 2
    assert st.backend == store.name
    assert st.oldest_created_at == 100.0
    assert st.newest_created_at == 200.0


def test_non_entry_values_rejected_on_write(store: Store) -> None:
    with pytest.raises(ValueError):
        store.set("k", {"x": float("nan")})


def test_unicode_and_long_keys(store: Store) -> None:
    key = "v1:" + "x" * 500 + ":ETH/EUR:300"
    store.set(key, entry())
    assert store.get(key) == entry()


def test_retain_zero_expires(store: Store) -> None:
    store.set("k", entry(), retain_s=0.0)
    assert store.get("k") is None


@pytest.mark.parametrize("kind", SHARED)
def test_namespaces_are_separate(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = backend_url(kind, request)
    store = make_store(kind, tmp_path, namespace="one", redis_url=url)
    other = make_store(kind, tmp_path, namespace="other", redis_url=url)
    store.set("k", entry(1.0))
    other.set("k", entry(2.0))
    got_a, got_b = store.get("k"), other.get("k")
    assert got_a is not None and got_a["predicted_price"] == 1.0
    assert got_b is not None and got_b["predicted_price"] == 2.0
    assert other.clear() == 1
    assert store.get("k") is not None
    assert store.stats().entries == 1
    other.close()
    store.close()


def test_lock_is_exclusive_until_released(store: Store) -> None:
    token = store.acquire_lock("k:lock", 30)
    assert token is not None
    assert store.acquire_lock("k:lock", 30) is None
    store.release_lock("k:lock", "not-the-token")
    assert store.acquire_lock("k:lock", 30) is None
    store.release_lock("k:lock", token)
    again = store.acquire_lock("k:lock", 30)
    assert again is not None
    store.release_lock("k:lock", again)


def test_lock_lease_expires(store: Store) -> None:
    assert store.acquire_lock("k:lock", 0.0) is not None
    assert store.acquire_lock("k:lock", 30) is not None  # a crashed holder's lease is over


def test_locks_are_not_entries(store: Store) -> None:
    store.acquire_lock("k:lock", 30)
    assert store.stats().entries == 0
    assert store.get("k:lock") is None


def test_entry_keys_and_purge(store: Store) -> None:
    keys = ["v1:aaa:ETH/EUR:300", "v1:aaa:ETH/EUR:60", "v1:aaa:BTC/USD:300", "v1:old:ETH/EUR:300"]
    for k in keys:
        store.set(k, entry())
    store.acquire_lock(keys[0] + ":lock", 30)
    assert sorted(store.entry_keys()) == sorted(keys)  # locks are not entries
    assert store.purge(lambda k: k.split(":")[2] == "ETH/EUR") == 3
    assert store.entry_keys() == ["v1:aaa:BTC/USD:300"]
    assert store.get("v1:aaa:ETH/EUR:300") is None
    assert store.purge(lambda k: False) == 0


@pytest.mark.parametrize("kind", ["disk", "redis"])
def test_entry_keys_stay_in_their_namespace(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    plain = make_store(kind, tmp_path, redis_url=url)
    other = make_store(kind, tmp_path, namespace="bench", redis_url=url)
    plain.set("v1:a:ETH/EUR:300", entry())
    other.set("v1:a:ETH/EUR:60", entry())
    assert other.entry_keys() == ["v1:a:ETH/EUR:60"]
    assert "v1:a:ETH/EUR:300" in plain.entry_keys()
    assert "v1:a:ETH/EUR:60" not in plain.entry_keys()
    other.close()
    plain.close()
