"""The disk store's read path: one SQLite connection, one query, decoded entries kept.

Why not ``diskcache.Cache.get``: on a hit served over HTTP, diskcache's general lookup (its
thread-local connection property, key conversion, a ``fetchall``, ``Disk.fetch``) and then
decoding the JSON cost more than everything else predcache does per request (see
``docs/performance.md``). A hit needs much less: the row for one key, read with one prepared
statement on a connection kept open for reads.

**Decoded entries are kept, and never served stale.** Every read first asks SQLite
``PRAGMA data_version`` on this reader's connection. SQLite documents that its value changes
whenever *any other connection* -- another process, or this process's own diskcache
connections, through which every write of predcache goes -- has committed a change to the
database since the connection last asked; it does not change for changes made by the asking
connection itself, and this connection never writes (it runs only ``SELECT`` and this
``PRAGMA``). So while the value is the one an entry was read under, nothing was set, deleted,
cleared, purged, evicted or replaced anywhere, and the decoded entry kept from that read is
exactly what the query would return now; once it changes, the row is read again (a row whose
text is unchanged keeps its decoded entry, so only a changed value is parsed again). The
pragma is itself a read transaction, so a deletion committed by another process before a read
starts is always seen by that read. The retain time (diskcache's ``expire_time``) is compared
with the wall clock on every read, kept or not, by the same rule as diskcache's query.

Asking is itself a read transaction (lock calls and SQLite's virtual machine), so on a WAL-mode
database (diskcache always sets it) the reader first reads the WAL-index header from the
``-shm`` file (:mod:`predcache.store.wal_index`): every commit by anyone rewrites it, so while
its bytes equal those read just before the last ask, that answer still holds and SQLite is not
asked again. Anything unusual there (a header being written, no WAL) means: ask SQLite.

What the reader does not handle it leaves to diskcache: a value that is not stored inline as
text (a file, or a pickle, which ``JsonOnlyDisk`` refuses) and a database without diskcache's
tables yet (:data:`ASK_DISKCACHE`). A missing database file is a miss and creates nothing. The
reader needs diskcache's eviction policy to write nothing on a read (``least-recently-stored``,
statistics off); ``DiskStore`` opens diskcache that way and a test pins it. A database file
that is deleted or replaced under the reader is noticed by the store's watch
(:meth:`DiskStore._watch`), which closes this connection with diskcache's. A forked child
never uses the connection it inherited: it opens its own, as diskcache's connections do.
"""

from __future__ import annotations

import enum
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

from diskcache.core import MODE_RAW

from predcache.entry import Entry, decode_entry
from predcache.store.private import make_private_files
from predcache.store.wal_index import WalIndex

#: diskcache's lookup (``Cache.get`` for a str key) without the expiry condition, which is
#: checked in Python so that a kept entry is held to the same rule on every read
SELECT = "SELECT expire_time, mode, value FROM Cache WHERE key = ? AND raw = 1"
DATA_VERSION = "PRAGMA data_version"
#: decoded entries kept at most (cleared when full: a long-running server does not grow)
KEEP_MAX = 4096


class Found(enum.Enum):
    """What a read found besides an entry or nothing."""

    #: a row whose value is not an entry (its reader counts a corrupt read)
    NOT_AN_ENTRY = "not-an-entry"
    #: not readable here (a value kept in a file or pickled; no diskcache tables): ask diskcache
    ASK_DISKCACHE = "ask-diskcache"


NOT_AN_ENTRY: Final = Found.NOT_AN_ENTRY
ASK_DISKCACHE: Final = Found.ASK_DISKCACHE


class Kept(NamedTuple):
    """One key's row as last read, under the data version it was read at."""

    version: int
    text: object
    entry: Entry | None
    expire_time: float | None


#: every reader of this process, so that a forked child drops what it inherited
_READERS: weakref.WeakSet[DiskReader] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A child process must not use its parent's SQLite connection (sqlite.org/howtocorrupt):
    each reader closes what it inherited and opens its own on its next read (as diskcache's
    own connections do), and takes a fresh lock (another thread may have held it at the fork)."""
    for reader in list(_READERS):
        reader._lock = threading.Lock()
        reader._close()


os.register_at_fork(after_in_child=_after_fork_in_child)


class DiskReader:
    """Reads of one diskcache database file (thread-safe: one lock around the connection)."""

    def __init__(self, db: Path, *, now: Callable[[], float] = time.time) -> None:
        self.db = db
        self._now = now
        self._lock = threading.Lock()
        _READERS.add(self)
        self._con: sqlite3.Connection | None = None
        self._cur: sqlite3.Cursor | None = None
        #: the inode of the file this reader's connection opened (``None``: not open)
        self.ino: int | None = None
        self._kept: dict[str, Kept] = {}
        #: the open connection's WAL-index (``None``: not in WAL mode), the header read just
        #: before ``data_version`` was last asked, and that answer
        self._wal: WalIndex | None = None
        self._header: bytes | None = None
        self._version = 0
        #: how many times SQLite was asked for ``data_version`` (tests count them)
        self.asked = 0

    def read(self, full_key: str) -> Entry | Found | None:
        """A copy of the entry stored under ``full_key``, ``None`` when there is none (or it is
        past its retain time), or a :class:`Found` for the rest. SQLite errors propagate."""
        with self._lock:
            cur = self._cur if self._cur is not None else self._open()
            if cur is None:
                return None  # no database yet: nothing stored, and nothing is created
            try:
                version = self._data_version(cur)
                kept = self._kept.get(full_key)
                if kept is None or kept.version != version:
                    row = cur.execute(SELECT, (full_key,)).fetchone()
                    if row is None:
                        self._kept.pop(full_key, None)
                        return None
                    expire_time, mode, text = row
                    if mode != MODE_RAW:
                        return ASK_DISKCACHE
                    same = kept is not None and kept.text == text
                    entry = kept.entry if kept is not None and same else decode_entry(text)
                    if len(self._kept) >= KEEP_MAX:
                        self._kept.clear()
                    kept = self._kept[full_key] = Kept(version, text, entry, expire_time)
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                self._close()  # reopened once diskcache has set its tables (and WAL) up
                return ASK_DISKCACHE
        if kept.expire_time is not None and kept.expire_time <= self._now():
            return None
        if kept.entry is None:
            return NOT_AN_ENTRY
        return kept.entry.copy()

    def _data_version(self, cur: sqlite3.Cursor) -> int:
        """SQLite's ``data_version``; its last answer again while the WAL-index header shows
        that nothing was committed since that answer was asked (:mod:`.wal_index`)."""
        header = self._wal.header() if self._wal is not None else None
        if header is not None and header == self._header:
            return self._version
        self._version = int(cur.execute(DATA_VERSION).fetchone()[0])
        self._header = header  # read before asking: a commit in between shows as a change
        self.asked += 1
        return self._version

    def _open(self) -> sqlite3.Cursor | None:
        """Connect when the database exists (made private first, as on every open)."""
        if not make_private_files(self.db.parent, self.db.name):
            return None
        con = sqlite3.connect(
            str(self.db), timeout=60, isolation_level=None, check_same_thread=False
        )
        try:
            ino = os.stat(self.db).st_ino
            cur = con.cursor()
            # this read opens the WAL and its -shm for the connection when the file is in WAL
            # mode, and they stay open with it: the -shm file opened below is the one it uses
            wal = cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        except OSError:
            con.close()
            return None  # deleted meanwhile: nothing stored
        except sqlite3.Error:
            con.close()
            raise  # a damaged file: the store quarantines it
        self.ino = ino
        self._con, self._cur = con, cur
        self._wal = WalIndex.open(self.db) if wal else None
        self._header = None
        self._kept.clear()  # data versions are per connection
        return cur

    def _close(self) -> None:
        if self._con is not None:
            self._con.close()
        if self._wal is not None:
            self._wal.close()
        self._con = self._cur = self._wal = None
        self._header = None
        self.ino = None
        self._kept.clear()

    def close(self) -> None:
        """Close the connection and forget what was kept; the next read opens again."""
        with self._lock:
            self._close()
