"""Disk-backend specifics: privacy, planted pickles, corrupt databases, size limits."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import diskcache
import pytest

from predcache.store.disk import EVICTION_POLICY, DiskStore, PickleRefused
from tests.test_store_contract import entry


class Planted:
    """A pickle that would create a file if anything ever unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_directory_and_files_are_private(tmp_path: Path) -> None:
    d = tmp_path / "a" / "b"
    store = DiskStore(d)
    store.set("k", entry())
    assert d.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    for f in d.iterdir():
        assert f.stat().st_mode & 0o077 == 0, f
    store.close()


def test_existing_directory_mode_is_left_alone(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    DiskStore(tmp_path).close()
    assert tmp_path.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("as_key", [False, True])
def test_planted_pickle_is_never_executed(tmp_path: Path, as_key: bool) -> None:
    marker = tmp_path / "pwned"
    store = DiskStore(tmp_path / "c")
    raw = diskcache.Cache(str(tmp_path / "c"))  # a foreign writer with diskcache's pickling Disk
    if as_key:
        raw.set(Planted(marker), "x")
    else:
        raw.set("k", Planted(marker))
    raw.close()
    assert store.get("k") is None
    assert store.corrupt_reads == (0 if as_key else 1)
    st = store.stats()
    assert st.entries == 1
    if as_key:  # diskcache's own key readers go through the same guard
        with pytest.raises(PickleRefused):
            list(store.cache.iterkeys())
        with pytest.raises(PickleRefused):
            store.cache.peekitem()
    assert not marker.exists()
    # and the raw bytes were really a pickle that would have run
    pickle.loads(pickle.dumps(Planted(marker)))
    assert marker.exists()


def test_non_json_text_is_a_miss(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.cache.set("k", "{not json")
    store.cache.set("j", b"\x80\x04garbage")
    assert store.get("k") is None and store.get("j") is None
    assert store.corrupt_reads == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-header"])
def test_corrupt_database_is_quarantined(tmp_path: Path, damage: str) -> None:
    d = tmp_path / "c"
    store = DiskStore(d)
    for i in range(50):
        store.set(f"k{i}", entry(float(i + 1)))
    store.close()
    db = d / "cache.db"
    data = db.read_bytes()
    if damage == "garbage":
        db.write_bytes(os.urandom(len(data)))
    elif damage == "truncated":
        db.write_bytes(data[: len(data) // 2])
    else:
        db.write_bytes(b"\0" * 100 + data[100:])
    reopened = DiskStore(d)
    # the first operation may find the damage; either way the store keeps working
    for _ in range(2):
        try:
            reopened.get("k1")
        except Exception as exc:  # a StoreError once, while the file is moved aside
            assert type(exc).__name__ == "StoreError"
    reopened.set("k1", entry(7.0))
    got = reopened.get("k1")
    assert got is not None and got["predicted_price"] == 7.0
    assert any(p.name.startswith("cache.db.corrupt-") for p in d.iterdir())
    reopened.close()


def test_size_limit_evicts_and_keeps_serving(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, size_limit=64 * 1024)
    big = entry()
    big["pad"] = "x" * 2000
    for i in range(500):
        store.set(f"k{i}", big)
    assert store.stats().entries < 500  # evicted
    assert store.get("k499") is not None  # the newest is still there
    store.close()


# Every read of a DiskStore goes through its DiskReader (diskcache's query on its own
# connection, predcache.store.disk_reader); these pin that it answers exactly as diskcache would.


def test_reader_preconditions_hold_on_the_opened_cache(tmp_path: Path) -> None:
    """The reader equals Cache.get only while a read writes nothing: no LRU, no statistics."""
    store = DiskStore(tmp_path)
    store.set("k", entry())
    assert EVICTION_POLICY == "least-recently-stored"
    assert store.cache.eviction_policy == EVICTION_POLICY
    assert store.cache.statistics == 0
    store.close()


def test_first_read_sees_what_diskcache_wrote(tmp_path: Path) -> None:
    writer = DiskStore(tmp_path, namespace="ns")
    writer.set("k", entry(3.0), retain_s=60)
    writer.set("gone", entry(4.0), retain_s=0.0)
    writer.close()
    reader = DiskStore(tmp_path, namespace="ns")
    got = reader.get("k")
    assert got == entry(3.0)
    assert reader._cache is None  # served without opening diskcache
    fresh = DiskStore(tmp_path, namespace="ns")
    assert fresh.get("gone") is None  # expired, by the same rule as diskcache's
    assert DiskStore(tmp_path, namespace="other").get("k") is None
    assert reader.get("k") == entry(3.0)  # later reads do not open diskcache either
    assert reader._cache is None


def test_first_read_of_a_fresh_dir_creates_nothing(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c")
    assert store.get("k") is None
    assert not (tmp_path / "c" / "cache.db").exists()
    store.set("k", entry())
    assert DiskStore(tmp_path / "c").get("k") == entry()


def test_first_read_refuses_a_planted_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    raw = diskcache.Cache(str(tmp_path / "c"))
    raw.set("k", Planted(marker))
    raw.close()
    store = DiskStore(tmp_path / "c")
    assert store.get("k") is None
    assert store.corrupt_reads == 1
    assert not marker.exists()


def test_first_read_of_an_empty_sqlite_file(tmp_path: Path) -> None:
    import sqlite3

    sqlite3.connect(str(tmp_path / "cache.db")).close()  # a database without diskcache's tables
    store = DiskStore(tmp_path)
    assert store.get("k") is None
    store.set("k", entry())
    assert store.get("k") == entry()


def test_first_read_of_a_corrupt_file_is_a_miss_and_quarantines(tmp_path: Path) -> None:
    (tmp_path / "cache.db").write_bytes(os.urandom(8192))
    store = DiskStore(tmp_path)
    assert store.get("k") is None
    assert any(p.name.startswith("cache.db.corrupt-") for p in tmp_path.iterdir())
    store.set("k", entry())
    assert store.get("k") == entry()
