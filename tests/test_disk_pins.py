"""The disk store's exact figures and paths, on a real diskcache directory (issue 19's mutants).

What ``test_disk_store.py`` and the store contract leave open, pinned to exact values: which
SQLite errors count as a damaged file, the quarantine's file name, cleanup and log line, the
one warning and the message of a failing operation, the guard's own messages and what it lets
through, ``stats()`` figures over several entries, lock renewal, and namespaces on delete.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import diskcache
import pytest
from diskcache.core import MODE_PICKLE

from predcache.entry import decode_entry, encode_entry
from predcache.errors import StoreError
from predcache.keys import namespaced
from predcache.store import disk as disk_module
from predcache.store import disk_reader
from predcache.store.disk import DB_NAME, LOCK_TAG, DiskStore, PickleRefused, is_corruption
from tests.test_store_contract import entry

Op = sqlite3.OperationalError


@pytest.mark.parametrize(
    ("exc", "corrupt"),
    [
        (Op("database disk image is malformed"), True),
        (Op("Database disk image is MALFORMED"), True),  # judged on the lower-cased text
        (Op("file is not a database"), True),
        (Op("File Is Not A Database"), True),
        (Op("database is locked"), False),
        (Op("database is busy"), False),
        (Op("no such table: Cache"), False),  # an operational error that is not damage
        (Op("unable to open database file"), False),
        (sqlite3.DatabaseError("database is locked"), False),  # never while locked or busy
        (sqlite3.DatabaseError("Database is BUSY"), False),
        (sqlite3.DatabaseError("file is encrypted or is not a database"), True),
        (sqlite3.IntegrityError("anything else"), True),  # a non-operational error is damage
    ],
)
def test_which_errors_mean_a_damaged_file(exc: BaseException, corrupt: bool) -> None:
    assert is_corruption(exc) is corrupt


def test_the_guard_names_what_it_refused_and_lets_json_keys_through(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("a", entry())
    store.set("b", entry())
    assert sorted(store.cache.iterkeys()) == ["a", "b"]  # str keys pass the key guard as they are
    assert store.cache.peekitem(last=False) == ("a", encode_entry(entry()))
    foreign = diskcache.Cache(str(tmp_path))  # diskcache's own pickling Disk
    foreign.set(("a", "tuple", "key"), "x")
    foreign.set("pickled", {"a": "dict"})
    foreign.close()
    with pytest.raises(PickleRefused, match=r"^pickled key$"):
        list(store.cache.iterkeys())
    with pytest.raises(PickleRefused, match=r"^pickled value$"):
        store.cache.get("pickled")
    store.close()


@pytest.fixture
def far_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone 12 hours from UTC, so a local-time stamp would show."""
    monkeypatch.setenv("TZ", "Etc/GMT-12")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_quarantine_moves_the_file_aside_with_its_stamp_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, far_zone: None
) -> None:
    assert time.localtime().tm_hour != time.gmtime().tm_hour
    store = DiskStore(tmp_path)
    store.set("k", entry())
    store.close()
    for suffix in ("-wal", "-shm"):  # left by a crashed writer, say
        (tmp_path / f"{DB_NAME}{suffix}").write_bytes(b"x")
    before = time.gmtime()
    with caplog.at_level(logging.WARNING, logger="predcache"):
        target = store.quarantine(sqlite3.DatabaseError("file is not a database"))
    after = time.gmtime()
    assert target.parent == tmp_path
    found = re.fullmatch(rf"cache\.db\.corrupt-(\d{{8}}T\d{{6}})-{os.getpid()}", target.name)
    assert found is not None, target.name
    stamps = {time.strftime("%Y%m%dT%H%M%S", t) for t in (before, after)}
    assert found.group(1) in stamps  # UTC, to the second
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # -wal and -shm gone
    [record] = [r for r in caplog.records if r.name == "predcache"]
    assert record.getMessage() == (
        f"predcache: warning: cache database {tmp_path / DB_NAME} was corrupt (file is not a "
        f"database); moved it to {target.name} and started an empty one"
    )


def test_recover_quarantines_only_damage_and_the_store_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry())
    for exc in (Op("database is locked"), diskcache.Timeout("busy"), Op("no such table: x")):
        assert store._recover(exc) is False
        assert (tmp_path / DB_NAME).exists() and store.get("k") == entry()
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="predcache"):
        assert store._recover(Op("database disk image is malformed")) is True
    assert "was corrupt (database disk image is malformed); moved it to" in caplog.text
    assert store._cache is None  # closed; the next operation opens a new database
    assert store.get("k") is None
    store.set("k", entry(2.0))
    got = store.get("k")
    assert got is not None and got["predicted_price"] == 2.0
    store.close()


def test_a_failed_operation_is_one_warning_and_a_store_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry())
    with caplog.at_level(logging.WARNING, logger="predcache"):
        for what in ("read", "write"):
            with pytest.raises(StoreError) as err:
                store._failed(Op("database is locked"), what)
            assert str(err.value) == f"cache {what} failed in {tmp_path}: database is locked"
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: cache read failed in {tmp_path}: database is locked; answering without the cache"
    ]
    assert (tmp_path / DB_NAME).exists()  # not damage: nothing quarantined
    with pytest.raises(StoreError, match=r"^cache write failed in .*: file is not a database$"):
        store._failed(sqlite3.DatabaseError("file is not a database"), "write")
    assert not (tmp_path / DB_NAME).exists()  # damage: moved aside
    store.close()


def test_an_unusable_directory_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    store = DiskStore(blocker / "cache")
    with caplog.at_level(logging.WARNING, logger="predcache"):
        for _ in range(3):
            with pytest.raises(StoreError):
                store.get("k")
    assert len(caplog.records) == 1
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(f"warning: cannot create cache dir {blocker / 'cache'}: ")
    )
    assert caplog.records[0].getMessage().endswith("; answering without the cache")
    assert store.renew_lock("k:lock", "t", 5) is False  # a lock call never raises
    store.release_lock("k:lock", "t")


def test_delete_stays_in_its_namespace(tmp_path: Path) -> None:
    plain, ns = DiskStore(tmp_path), DiskStore(tmp_path, namespace="a")
    plain.set("k", entry(1.0))
    ns.set("k", entry(2.0))
    assert ns.delete("k") is True
    assert ns.get("k") is None and plain.get("k") == entry(1.0)
    assert ns.delete("k") is False
    plain.close()
    ns.close()


def test_renew_extends_only_the_holders_lease_and_keeps_it_a_lock(tmp_path: Path) -> None:
    plain, ns = DiskStore(tmp_path), DiskStore(tmp_path, namespace="a")
    token = ns.acquire_lock("k:lock", 2)
    assert token is not None
    full = namespaced("a", "k:lock")
    assert ns.renew_lock("k:lock", token, 600) is True
    value, expire_time, tag = ns.cache.get(full, expire_time=True, tag=True)
    assert (value, tag) == (token, LOCK_TAG)
    assert 598 < expire_time - time.time() <= 600
    assert ns.renew_lock("k:lock", "not-the-token", 5) is False
    assert plain.renew_lock("k:lock", token, 5) is False  # another namespace's name
    assert plain.cache.get("k:lock") is None  # and nothing was made there
    assert (plain.stats().entries, plain.entry_keys()) == (0, [])  # a lock is no entry
    assert (ns.stats().entries, ns.entry_keys()) == (0, [])
    ns.release_lock("k:lock", token)
    assert ns.renew_lock("k:lock", token, 5) is False
    plain.close()
    ns.close()


def test_stats_figures_over_several_entries(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    values = [entry(1.0, created_at=2000.0), entry(2.0, created_at=1000.0), entry(3.0, 3000.0)]
    for i, value in enumerate(values):
        store.set(f"k{i}", value)
    store.cache.set("bad", "not an entry")
    assert store.get("bad") is None
    store.acquire_lock("k0:lock", 30)
    # a row marked pickled is never decoded, even when its bytes are an entry's JSON
    store.cache._sql(
        "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag,"
        " size, mode, filename, value) VALUES (?, 1, 0, NULL, 0, 0, NULL, 0, ?, NULL, ?)",
        ("planted", MODE_PICKLE, encode_entry(entry(created_at=5.0)).encode()),
    )
    st = store.stats()
    texts = [encode_entry(v) for v in values] + [
        "not an entry",
        encode_entry(entry(created_at=5.0)),
    ]
    assert (st.backend, st.location, st.entries, st.corrupt) == ("disk", str(tmp_path), 5, 1)
    assert st.bytes == sum(len(t.encode()) for t in texts)
    assert (st.oldest_created_at, st.newest_created_at) == (1000.0, 3000.0)
    files = sum(p.stat().st_size for p in tmp_path.iterdir() if p.name.startswith(DB_NAME))
    assert st.extra == {"files_bytes": files} and files >= 64 * 1024
    store.close()


class Ticks:
    """The disk module's monotonic clock, set by hand (the watch looks once a second)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Ticks:
    # disk.py uses its module-level `time` only for the watch's monotonic clock
    clock = Ticks(100.0)
    monkeypatch.setattr(disk_module, "time", clock)
    return clock


def put_database(d: Path, scratch: Path, price: float) -> None:
    """Another database at ``d``'s path (as a quarantine elsewhere would leave), holding k."""
    other = DiskStore(scratch)
    other.set("k", entry(price))
    other.close()  # its WAL is checkpointed into the file
    os.replace(scratch / DB_NAME, d / DB_NAME)
    for suffix in ("-wal", "-shm"):
        (d / f"{DB_NAME}{suffix}").unlink(missing_ok=True)


def watch_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "while in use" in r.getMessage()]


def test_the_watch_looks_once_a_second_at_the_database_file(
    tmp_path: Path, ticks: Ticks, caplog: pytest.LogCaptureFixture
) -> None:
    d = tmp_path / "c"
    store = DiskStore(d)
    caplog.set_level(logging.WARNING, logger="predcache")
    store.set("k", entry(1.0))  # diskcache opened at 100.0: the first look is due at 101.0
    assert store.get("k") == entry(1.0)
    put_database(d, tmp_path / "s1", 2.0)
    ticks.now = 100.999
    assert store.get("k") == entry(1.0)  # not looked yet: the open (unlinked) file serves
    assert watch_warnings(caplog) == []
    ticks.now = 101.0
    assert store.get("k") == entry(2.0)  # looked: the new file is read
    assert watch_warnings(caplog) == [
        f"warning: cache database {d / DB_NAME} was deleted or replaced while in use; "
        "re-created it (entries start empty)"
    ]
    assert store._cache is None  # diskcache's connection to the old file was closed
    ticks.now = 102.0  # a look that finds the file it has open: nothing to say
    assert store.get("k") == entry(2.0)
    put_database(d, tmp_path / "s2", 3.0)
    ticks.now = 102.999  # the last look was at 102.0
    assert store.get("k") == entry(2.0)
    ticks.now = 103.0
    assert store.get("k") == entry(3.0)
    assert len(watch_warnings(caplog)) == 2
    store.close()


def test_the_first_look_is_at_once(tmp_path: Path, ticks: Ticks) -> None:
    """A store that only reads (a CLI hit) looks as soon as its reader has a file open."""
    ticks.now = 0.5
    d = tmp_path / "c"
    writer = DiskStore(d)
    writer.set("k", entry(1.0))
    writer.close()
    store = DiskStore(d)
    assert store.get("k") == entry(1.0)
    put_database(d, tmp_path / "s", 2.0)
    assert store.get("k") == entry(2.0)
    assert store._cache is None
    store.close()


def test_a_deleted_directory_under_a_writer_is_re_created(
    tmp_path: Path, ticks: Ticks, caplog: pytest.LogCaptureFixture
) -> None:
    d = tmp_path / "c"
    store = DiskStore(d)
    caplog.set_level(logging.WARNING, logger="predcache")
    store.set("a", entry(1.0))  # only diskcache is open (no read yet): first look at 101.0
    shutil.rmtree(d)
    ticks.now = 100.5
    store.set("early", entry(1.0))  # within the first second: no look (into the unlinked file)
    assert watch_warnings(caplog) == []
    ticks.now = 101.0
    store.set("b", entry(2.0))
    assert d.stat().st_mode & 0o777 == 0o700
    assert DiskStore(d).get("b") == entry(2.0)  # written to the new file at the path
    assert DiskStore(d).get("a") is None
    assert watch_warnings(caplog) == [
        f"warning: cache directory {d} was deleted or replaced while in use; "
        "re-created it (entries start empty)"
    ]
    store.close()


def test_a_directory_that_cannot_be_re_created_is_a_store_error(
    tmp_path: Path, ticks: Ticks
) -> None:
    d = tmp_path / "p" / "c"
    store = DiskStore(d)
    store.set("a", entry())
    shutil.rmtree(tmp_path / "p")
    (tmp_path / "p").write_text("a file where the parent was")
    ticks.now = 101.0
    with pytest.raises(StoreError, match=rf"^cannot re-create cache dir {re.escape(str(d))}: "):
        store.get("a")
    store.close()


def test_a_large_entry_stays_inline_in_the_private_database(tmp_path: Path) -> None:
    big = dict(entry())
    big["pad"] = "x" * 40_000  # above diskcache's own 32 KB threshold for separate files
    store = DiskStore(tmp_path)
    store.set("k", big)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        DB_NAME,
        f"{DB_NAME}-shm",
        f"{DB_NAME}-wal",
    ]
    fresh = DiskStore(tmp_path)
    assert fresh.get("k") == big
    assert fresh._cache is None  # an inline value: served by the reader, not diskcache
    store.close()
    fresh.close()


def test_a_failing_read_names_itself_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Cache table without diskcache's columns: SQLite refuses the reader's query (an
    operational error that is not damage): a StoreError, one warning, nothing quarantined."""
    con = sqlite3.connect(str(tmp_path / DB_NAME))
    con.execute("CREATE TABLE Cache (key TEXT)")
    con.commit()
    con.close()
    store = DiskStore(tmp_path)
    caplog.set_level(logging.WARNING, logger="predcache")
    for _ in range(2):
        with pytest.raises(StoreError) as err:
            store.get("k")
        assert str(err.value) == f"cache read failed in {tmp_path}: no such column: expire_time"
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: cache read failed in {tmp_path}: no such column: expire_time; answering "
        "without the cache"
    ]
    assert (tmp_path / DB_NAME).exists()
    with pytest.raises(
        StoreError, match=rf"^cannot open the cache database in {re.escape(str(tmp_path))}: "
    ):
        store.set("k", entry())  # diskcache cannot set its indexes up on that table
    store.close()


def refuse_writes(directory: Path) -> None:
    """A trigger that makes SQLite abort every new row of diskcache's Cache table."""
    con = sqlite3.connect(str(directory / DB_NAME))
    con.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON Cache BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    con.commit()
    con.close()


@pytest.mark.parametrize("what", ["write", "lock"])
def test_a_refused_write_or_lock_names_itself(tmp_path: Path, what: str) -> None:
    """SQLite aborts the INSERT (a constraint error, which the store counts as damage): the
    operation fails as a StoreError that says which one, and the file is moved aside."""
    store = DiskStore(tmp_path)
    store.set("old", entry())
    refuse_writes(tmp_path)
    with pytest.raises(StoreError) as err:
        if what == "write":
            store.set("k", entry())
        else:
            store.acquire_lock("k:lock", 5)
    assert str(err.value) == f"cache {what} failed in {tmp_path}: refused"
    assert any(p.name.startswith(f"{DB_NAME}.corrupt-") for p in tmp_path.iterdir())
    store.close()


def test_a_file_where_the_directory_should_be(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a-file"
    path.write_text("x")
    store = DiskStore(path)
    caplog.set_level(logging.WARNING, logger="predcache")
    for _ in range(2):
        with pytest.raises(
            StoreError, match=rf"^cache dir {re.escape(str(path))} is not a directory$"
        ):
            store.set("k", entry())
    assert [r.getMessage() for r in caplog.records] == [
        f"warning: cache dir {path} is not a directory; answering without the cache"
    ]


def test_a_value_diskcache_kept_in_a_file_is_read_through_diskcache(tmp_path: Path) -> None:
    """A foreign writer with diskcache's defaults keeps a large text value in a separate file;
    the reader leaves it to diskcache (through the guard), which reads the file."""
    big = dict(entry())
    big["pad"] = "x" * 40_000
    foreign = diskcache.Cache(str(tmp_path))
    foreign.set("k", encode_entry(big))  # type: ignore[arg-type]
    blob = b"\x00" * 40_000
    foreign.set("blob", blob)
    foreign.close()
    assert len(list(tmp_path.rglob("*.val"))) == 2  # really files
    store = DiskStore(tmp_path)
    assert store.get("k") == big
    assert store.get("missing") is None
    assert store.corrupt_reads == 0
    with store.cache.get("blob", read=True) as handle:  # bytes in a file: an open file if asked
        assert handle.read() == blob
    assert store.cache.get("blob") == blob
    store.close()


def test_a_database_without_tables_is_a_plain_miss(tmp_path: Path) -> None:
    sqlite3.connect(str(tmp_path / DB_NAME)).close()
    store = DiskStore(tmp_path)
    assert store.get("k") is None
    assert store.corrupt_reads == 0  # nothing there: a miss, not a corrupt entry
    store.close()


# ---- the read path (predcache.store.disk_reader) --------------------------------------------


def test_the_reader_waits_a_minute_for_a_busy_database_from_any_thread(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    assert store.get("k") == entry(1.0)
    con = store._reader._con
    assert con is not None
    assert con.execute("PRAGMA busy_timeout").fetchone() == (60_000,)  # as diskcache's own
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(store.get("k")))  # a server thread
    worker.start()
    worker.join()
    assert got == [entry(1.0)]
    store.close()


def test_a_kept_entry_is_read_again_only_after_a_commit_and_decoded_only_if_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[object] = []

    def counting(raw: object) -> object:
        decoded.append(raw)
        return decode_entry(raw)

    monkeypatch.setattr(disk_reader, "decode_entry", counting)
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    assert store.get("k") == entry(1.0)
    con = store._reader._con
    assert con is not None
    selects: list[str] = []
    con.set_trace_callback(lambda sql: selects.append(sql) if sql.startswith("SELECT") else None)
    assert store.get("k") == entry(1.0)  # nothing committed: the kept entry, no query
    assert (len(selects), len(decoded)) == (0, 1)
    store.set("j", entry(2.0))  # a commit to another key
    assert store.get("k") == entry(1.0)  # queried again, the same text: not decoded again
    assert (len(selects), len(decoded)) == (1, 1)
    store.set("k", entry(3.0))
    assert store.get("k") == entry(3.0)
    assert (len(selects), len(decoded)) == (2, 2)
    store.close()


def test_kept_entries_are_dropped_all_at_once_when_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disk_reader, "KEEP_MAX", 3)
    store = DiskStore(tmp_path)
    for i in range(4):
        store.set(f"k{i}", entry(float(i + 1)))
    for i in range(3):
        assert store.get(f"k{i}") == entry(float(i + 1))
    assert sorted(store._reader._kept) == ["k0", "k1", "k2"]
    assert store.get("k3") == entry(4.0)
    assert sorted(store._reader._kept) == ["k3"]  # full: cleared, then the new one kept
    store.close()


def test_a_deleted_row_is_not_kept(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    assert store.get("k") == entry(1.0)
    assert "k" in store._reader._kept
    assert store.delete("k")
    assert store.get("k") is None
    assert "k" not in store._reader._kept
    store.close()


def test_the_fork_hook_gives_every_reader_a_new_lock_and_connection(tmp_path: Path) -> None:
    """What a forked child runs first (``os.register_at_fork``), run here in-process: the
    inherited connection is let go and the next read opens its own."""
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    assert store.get("k") == entry(1.0)
    reader = store._reader
    lock, con = reader._lock, reader._con
    disk_reader._after_fork_in_child()
    assert reader._con is None and reader.ino is None and reader._lock is not lock
    assert store.get("k") == entry(1.0)
    assert reader._con is not None and reader._con is not con
    store.close()


def test_after_a_quarantine_the_watch_sees_nothing_open(
    tmp_path: Path, ticks: Ticks, caplog: pytest.LogCaptureFixture
) -> None:
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    assert store.get("k") == entry(1.0)
    caplog.set_level(logging.WARNING, logger="predcache")
    assert store._recover(Op("database disk image is malformed")) is True
    assert store._reader.ino is None and store._cache is None
    ticks.now = 101.0  # a look is due: with nothing open there is nothing to look at
    assert store.get("k") is None
    assert watch_warnings(caplog) == []
    store.close()


def test_a_stale_shm_file_beside_a_rollback_journal_database_is_ignored(tmp_path: Path) -> None:
    """Only a WAL-mode connection's -shm file says whether anything was committed: a leftover
    one (from a crash while the file was in WAL mode) must not stop a read seeing a change."""
    store = DiskStore(tmp_path)
    store.set("k", entry(1.0))
    store.close()
    con = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    assert con.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    header = bytes(12) + b"\x01" + bytes(35)  # a set-up header, its two copies equal
    (tmp_path / f"{DB_NAME}-shm").write_bytes(header + header + bytes(40))
    reader = disk_reader.DiskReader(tmp_path / DB_NAME)
    assert reader.read("k") == entry(1.0)
    con.execute("UPDATE Cache SET value = ? WHERE key = 'k'", (encode_entry(entry(2.0)),))
    assert reader.read("k") == entry(2.0)
    assert reader._wal is None
    reader.close()
    con.close()


def test_opening_a_damaged_file_quarantines_it_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / DB_NAME).write_bytes(b"not a database at all" * 500)
    store = DiskStore(tmp_path)
    caplog.set_level(logging.WARNING, logger="predcache")
    store.set("k", entry())  # diskcache opens first (no read before): the open quarantines
    assert store.get("k") == entry()
    [record] = [r for r in caplog.records if r.name == "predcache"]
    assert "was corrupt (file is not a database); moved it to cache.db.corrupt-" in (
        record.getMessage()
    )
    store.close()


def test_a_directory_that_cannot_be_made_at_the_first_open(tmp_path: Path) -> None:
    d = tmp_path / "p" / "c"
    store = DiskStore(d)
    shutil.rmtree(tmp_path / "p")
    (tmp_path / "p").write_text("a file where the parent was")
    with pytest.raises(StoreError) as err:
        store.set("k", entry())
    assert str(err.value) == (
        f'cannot open cache dir {d}: Cache directory "{d}" does not exist and could not be created'
    )


def test_the_store_resets_a_foreign_caches_eviction_and_statistics(tmp_path: Path) -> None:
    """diskcache keeps its settings in the database: one made by someone else with LRU eviction
    and statistics (both write on every read) is set back to what the reader needs."""
    foreign = diskcache.Cache(str(tmp_path), eviction_policy="least-recently-used", statistics=True)
    foreign.set("x", "y")
    foreign.close()
    store = DiskStore(tmp_path)
    store.set("k", entry())
    assert store.cache.eviction_policy == "least-recently-stored"
    assert store.cache.statistics == 0
    again = diskcache.Cache(str(tmp_path))  # what the database now says for everyone
    assert (again.eviction_policy, again.statistics) == ("least-recently-stored", 0)
    again.close()
    store.close()
