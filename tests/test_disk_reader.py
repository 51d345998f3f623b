"""The disk store's read path (predcache.store.disk_reader): kept decoded entries are never stale.

A reader keeps decoded entries while SQLite's ``PRAGMA data_version`` is unchanged. These tests
pin what that must never break: a write, delete, clear or purge by a real second process (or by
another store object, or by the same store) is seen by the very next read; the retain time holds
for a kept entry too; a corrupt value is counted on every read; a replaced database file is
reopened.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from predcache.store.disk import DB_NAME, DiskStore
from predcache.store.disk_reader import NOT_AN_ENTRY, DiskReader
from predcache.store.wal_index import WalIndex
from tests.test_store_contract import entry

#: a second process: opens the same store and applies the operations given as JSON
OTHER = """
import json, sys
from predcache.store.disk import DiskStore
from tests.test_store_contract import entry
d, ns, ops = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
store = DiskStore(d, namespace=ns)
for op, *args in ops:
    if op == "set":
        store.set(args[0], entry(args[1]), retain_s=args[2] if len(args) > 2 else None)
    elif op == "delete":
        assert store.delete(args[0])
    elif op == "clear":
        print(store.clear())
    elif op == "purge":
        print(store.purge(lambda key: key.startswith(args[0])))
store.close()
"""


def other_process(d: Path, *ops: list[object], namespace: str = "ns") -> str:
    """Run ``ops`` in a fresh Python process on the store in ``d``; its stdout."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", OTHER, str(d), namespace, json.dumps(ops)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def price(store: DiskStore, key: str) -> float | None:
    got = store.get(key)
    return None if got is None else float(got["predicted_price"])


def test_another_process_writes_are_seen_by_the_very_next_read(tmp_path: Path) -> None:
    d = tmp_path / "c"
    store = DiskStore(d, namespace="ns")
    store.set("k", entry(1.0))
    store.set("k2", entry(10.0))
    assert price(store, "k") == 1.0
    assert price(store, "k") == 1.0  # now kept, decoded
    other_process(d, ["set", "k", 2.0])
    assert price(store, "k") == 2.0  # replaced
    other_process(d, ["delete", "k"])
    assert price(store, "k") is None  # deleted
    other_process(d, ["set", "k", 3.0])
    assert price(store, "k") == 3.0
    assert price(store, "k2") == 10.0
    assert other_process(d, ["clear"]) == "2"
    assert price(store, "k") is None  # cleared
    assert price(store, "k2") is None
    other_process(d, ["set", "k", 4.0], ["set", "j", 5.0])
    assert (price(store, "k"), price(store, "j")) == (4.0, 5.0)
    assert other_process(d, ["purge", "k"]) == "1"
    assert (price(store, "k"), price(store, "j")) == (None, 5.0)  # purged, the other kept
    other_process(d, ["set", "k", 6.0, 0.0])  # stored already past its retain time
    assert price(store, "k") is None
    assert store.corrupt_reads == 0
    store.close()


def test_another_store_objects_and_own_writes_are_seen(tmp_path: Path) -> None:
    reader, writer = DiskStore(tmp_path), DiskStore(tmp_path)
    writer.set("k", entry(1.0))
    assert price(reader, "k") == 1.0
    writer.set("k", entry(2.0))
    assert price(reader, "k") == 2.0
    reader.set("k", entry(3.0))  # through the reader store's own diskcache connection
    assert price(reader, "k") == 3.0
    assert writer.delete("k")
    assert price(reader, "k") is None
    reader.set("k", entry(4.0))
    assert reader.delete("k")
    assert price(reader, "k") is None
    writer.set("k", entry(5.0))
    assert price(reader, "k") == 5.0
    assert reader.clear() == 1
    assert price(reader, "k") is None
    reader.close()
    writer.close()


def test_a_kept_entry_is_held_to_its_retain_time(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0), retain_s=100)
    expire_time = (
        sqlite3.connect(tmp_path / DB_NAME)
        .execute("SELECT expire_time FROM Cache WHERE key = 'k'")
        .fetchone()[0]
    )
    store.close()
    now = [expire_time - 0.001]
    reader = DiskReader(tmp_path / DB_NAME, now=lambda: now[0])
    assert reader.read("k") == entry(1.0)
    assert reader.read("k") == entry(1.0)  # kept
    now[0] = expire_time  # diskcache's rule: live while expire_time > now
    assert reader.read("k") is None
    now[0] = expire_time - 0.001
    assert reader.read("k") == entry(1.0)
    reader.close()


def test_a_kept_entry_is_a_copy(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    got = store.get("k")
    assert got is not None
    got["predicted_price"] = -1.0
    assert store.get("k") == entry(1.0)
    store.close()


def test_a_corrupt_value_counts_on_every_read(tmp_path: Path) -> None:
    d = tmp_path / "c"
    store = DiskStore(d, namespace="ns")
    planter = DiskStore(d)
    planter.cache.set("ns:k", "{not json")
    for _ in range(3):
        assert store.get("k") is None
    assert store.corrupt_reads == 3
    assert store._reader.read("ns:k") is NOT_AN_ENTRY
    other_process(d, ["set", "k", 7.0])  # overwritten by a valid entry
    assert price(store, "k") == 7.0
    assert store.corrupt_reads == 3
    store.close()
    planter.close()


def test_a_replaced_database_file_is_reopened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d, elsewhere = tmp_path / "c", tmp_path / "new"
    store = DiskStore(d)
    store.set("k", entry(1.0))
    assert price(store, "k") == 1.0
    other = DiskStore(elsewhere)
    other.set("k", entry(2.0))
    other.close()  # the last connection: its WAL is checkpointed into cache.db
    os.replace(elsewhere / DB_NAME, d / DB_NAME)  # as a quarantine elsewhere replaces it:
    for suffix in ("-wal", "-shm"):  # with the old file's journal gone
        (d / f"{DB_NAME}{suffix}").unlink()
    store._next_watch = 0.0  # the next operation checks (instead of waiting a second)
    assert price(store, "k") == 2.0
    assert "was deleted or replaced while in use" in caplog.text
    store.close()


def test_a_deleted_database_file_is_a_miss_and_creates_nothing(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    assert price(store, "k") == 1.0
    store.close()
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    reader = DiskReader(tmp_path / DB_NAME)
    assert reader.read("k") is None
    assert not (tmp_path / DB_NAME).exists()


def test_sqlite_data_version_changes_only_for_other_connections(tmp_path: Path) -> None:
    """The SQLite rule the reader stands on (sqlite.org/pragma.html#pragma_data_version)."""
    db = str(tmp_path / "t.db")
    a = sqlite3.connect(db, isolation_level=None)
    a.execute("PRAGMA journal_mode=wal")  # as diskcache opens it
    a.execute("CREATE TABLE t (v)")
    b = sqlite3.connect(db, isolation_level=None)

    def version(con: sqlite3.Connection) -> int:
        return int(con.execute("PRAGMA data_version").fetchone()[0])

    before = version(a)
    a.execute("INSERT INTO t VALUES (1)")
    assert version(a) == before  # its own commit: unchanged
    seen = version(b)
    assert version(b) == seen  # nothing committed since
    a.execute("INSERT INTO t VALUES (2)")
    assert version(b) != seen  # another connection's commit
    seen = version(b)
    a.execute("DELETE FROM t")
    assert version(b) != seen
    a.close()
    b.close()


def test_reads_under_a_writing_process_never_go_back(tmp_path: Path) -> None:
    """While another process overwrites a key with rising prices, no read here returns a price
    older than the previous read's, and the last one written is seen once it is done."""
    d = tmp_path / "c"
    store = DiskStore(d, namespace="ns")
    store.set("k", entry(1.0))
    ops = [["set", "k", float(i)] for i in range(2, 302)]
    root = Path(__file__).resolve().parent.parent
    writer = subprocess.Popen(
        [sys.executable, "-c", OTHER, str(d), "ns", json.dumps(ops)],
        cwd=root,
        stdout=subprocess.DEVNULL,
    )
    seen = [1.0]
    deadline = time.monotonic() + 60
    while writer.poll() is None and time.monotonic() < deadline:
        got = price(store, "k")
        assert got is not None and got >= seen[-1]
        seen.append(got)
    assert writer.wait(60) == 0
    assert price(store, "k") == 301.0
    store.close()


# ---- the WAL-index shortcut (predcache.store.wal_index) -----------------------------------


def test_quiet_reads_skip_sqlite_and_any_commit_brings_it_back(tmp_path: Path) -> None:
    d = tmp_path / "c"
    store = DiskStore(d, namespace="ns")
    store.set("k", entry(1.0))
    for _ in range(11):
        assert price(store, "k") == 1.0
    reader = store._reader
    assert reader._wal is not None
    assert reader.asked == 1  # the first read asked data_version; ten more read the header only
    other_process(d, ["set", "other", 9.0])  # a commit elsewhere, to another key
    assert price(store, "k") == 1.0
    assert reader.asked == 2
    other_process(d, ["set", "k", 2.0])
    assert price(store, "k") == 2.0
    assert reader.asked == 3
    for _ in range(5):
        assert price(store, "k") == 2.0
    store.set("k", entry(3.0))  # this process's own diskcache connection commits too
    assert price(store, "k") == 3.0
    assert reader.asked == 4
    store.close()


def test_an_open_reader_keeps_the_database_in_wal_mode(tmp_path: Path) -> None:
    """What the shortcut stands on: while the reader's connection is open, no one can switch
    the database out of WAL mode (writes would then bypass the WAL-index)."""
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    assert price(store, "k") == 1.0
    store.cache.close()  # only the reader's connection is left open
    other = sqlite3.connect(tmp_path / DB_NAME, timeout=0.1, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("PRAGMA journal_mode=DELETE")
    store.close()
    assert other.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    other.close()


def test_a_database_not_in_wal_mode_is_read_right_without_the_shortcut(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    store.close()
    con = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    assert con.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    reader = DiskReader(tmp_path / DB_NAME)
    assert reader.read("k") == entry(1.0)
    assert reader._wal is None
    con.execute("UPDATE Cache SET value = ? WHERE key = 'k'", (json.dumps(entry(2.0)),))
    assert reader.read("k") == entry(2.0)
    con.execute("DELETE FROM Cache WHERE key = 'k'")
    assert reader.read("k") is None
    assert reader.asked == 3  # every read asked SQLite
    reader.close()
    con.close()


def header_file(path: Path, first: bytes, second: bytes) -> WalIndex:
    path.write_bytes(first + second + b"\0" * 40)
    index = WalIndex.open(path.with_name(path.name.removesuffix("-shm")))
    assert index is not None
    return index


def test_wal_index_header_is_unknown_while_written_or_not_set_up(tmp_path: Path) -> None:
    shm = tmp_path / "x.db-shm"
    good = bytes(12) + b"\x01" + bytes(35)
    other = bytes(8) + b"\x05" + bytes(3) + b"\x01" + bytes(35)  # iChange moved on
    assert header_file(shm, good, good).header() == good
    assert header_file(shm, other, good).header() is None  # copies differ: being written
    not_set_up = bytes(48)
    assert header_file(shm, not_set_up, not_set_up).header() is None
    shm.write_bytes(good + good[:20])  # too short
    index = WalIndex.open(tmp_path / "x.db")
    assert index is not None and index.header() is None
    assert WalIndex.open(tmp_path / "missing.db") is None


def test_a_forked_child_reads_through_its_own_connection(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    assert price(store, "k") == 1.0
    inherited = store._reader._con
    assert inherited is not None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it read and whether the connection was its own
        try:
            got = price(store, "k")
            own = store._reader._con is not None and store._reader._con is not inherited
            os.write(write_end, json.dumps([got, own]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        assert json.loads(f.read()) == [1.0, True]
    assert os.waitpid(pid, 0)[1] == 0
    assert store._reader._con is inherited  # the parent's is untouched
    store.set("k", entry(2.0))
    assert price(store, "k") == 2.0
    store.close()
