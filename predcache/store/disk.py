"""Disk backend: diskcache (SQLite) in a private directory, JSON values only.

diskcache unpickles values it stored as pickles. A store shared on disk can be written by
someone else, so :class:`JsonOnlyDisk` refuses to unpickle: a pickled value (planted or
foreign) reads as a corrupt entry, a miss, and is never executed.

Reads go through :class:`~predcache.store.disk_reader.DiskReader`: one SQLite connection that
runs diskcache's lookup as one prepared query and keeps decoded entries while SQLite's
``data_version`` says no connection has committed anything since (see that module for why this
never serves an entry that another process deleted, purged or replaced). It is also why a
``predcache predict`` hit never opens the ``diskcache.Cache``: opening one rewrites every
setting and pragma, which would be most of a CLI hit (check c of ``benchmarks/perf.py``).
Writes, locks, listings and anything the reader cannot read go through diskcache, opened lazily.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

import diskcache
from diskcache.core import MODE_PICKLE

from predcache.entry import Entry, decode_entry, encode_entry
from predcache.errors import StoreError
from predcache.keys import namespaced
from predcache.store.base import Store, StoreStats
from predcache.store.breaker import warn
from predcache.store.disk_reader import ASK_DISKCACHE, NOT_AN_ENTRY, DiskReader
from predcache.store.private import make_private_dir, make_private_files

DEFAULT_SIZE_LIMIT = 256 * 1024 * 1024
LOCK_TAG = "__lock__"
DB_NAME = "cache.db"
#: how diskcache evicts: by store time, so a read changes nothing (what the reader relies on)
EVICTION_POLICY = "least-recently-stored"
#: diskcache writes values above ``disk_min_file_size`` (32 KB) to separate files, created
#: with the umask's modes (0755 dirs, 0644 files): world-readable. Predictions are a few
#: hundred bytes, so every value stays inside the private (0600) SQLite file instead.
INLINE_VALUES_UP_TO = 1 << 30
#: how often an open store checks that its database file is still the one it opened (a stat)
WATCH_EVERY_S = 1.0


def is_corruption(exc: BaseException) -> bool:
    """True for SQLite errors that mean a damaged file, not a busy one."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return False
    return (
        not isinstance(exc, sqlite3.OperationalError)
        or "malformed" in text
        or ("not a database" in text)
    )


class PickleRefused(Exception):
    """Raised inside diskcache when a value would need unpickling."""


class JsonOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache ``Disk`` that never unpickles keys or values."""

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise PickleRefused("pickled key")
        return super().get(key, raw)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            raise PickleRefused("pickled value")
        return super().fetch(mode, filename, value, read)


class DiskStore(Store):
    """A diskcache-backed store; survives restarts and is shared by processes on one host."""

    name = "disk"

    def __init__(
        self,
        directory: str | Path,
        namespace: str = "",
        size_limit: int = DEFAULT_SIZE_LIMIT,
    ) -> None:
        super().__init__(namespace)
        self.directory = Path(directory).expanduser()
        self._size_limit = size_limit
        self._prefix = namespaced(namespace, "") if namespace else ""  # the hot read's key prefix
        self._cache: diskcache.Cache | None = None
        self._opening = threading.Lock()  # server threads may all want the first open
        self._reader = DiskReader(self.directory / DB_NAME)
        self._db_ino: int | None = None  # the database file diskcache opened
        self._next_watch = 0.0
        self._warned = False
        #: why the directory cannot be used (not creatable, not a directory); every operation
        #: then fails as a StoreError, which predict and serve answer as a bypass, like any
        #: other backend failure (a read-only directory fails the same way on its first write)
        self._unusable: str | None = None
        try:
            make_private_dir(self.directory)
        except OSError as exc:
            self._unusable = f"cannot create cache dir {self.directory}: {exc.strerror}"
        else:
            if not self.directory.is_dir():
                self._unusable = f"cache dir {self.directory} is not a directory"

    @property
    def cache(self) -> diskcache.Cache:
        """The underlying diskcache, opened on first use (a corrupt file is quarantined)."""
        if self._cache is not None:
            return self._cache
        if self._unusable is not None:
            raise StoreError(self._unusable)
        with self._opening:
            if self._cache is None:
                self._cache = self._open_or_quarantine()
        return self._cache

    def _open_or_quarantine(self) -> diskcache.Cache:
        try:
            try:
                return self._open()
            except sqlite3.DatabaseError as exc:
                if not is_corruption(exc):
                    raise
                self.quarantine(exc)
                return self._open()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the cache database in {self.directory}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot open cache dir {self.directory}: {exc.strerror}") from exc

    def _open(self) -> diskcache.Cache:
        db = self.directory / DB_NAME
        cache = diskcache.Cache(
            str(self.directory),
            disk=JsonOnlyDisk,
            size_limit=self._size_limit,
            eviction_policy=EVICTION_POLICY,
            statistics=False,
            disk_min_file_size=INLINE_VALUES_UP_TO,
        )
        make_private_files(
            self.directory, DB_NAME
        )  # later -wal/-shm files take the main file's mode
        self._db_ino = os.stat(db).st_ino
        self._next_watch = time.monotonic() + WATCH_EVERY_S
        return cache

    def _watch(self) -> None:
        """At most once a second: is the open database still the file at its path?

        Someone may delete the cache directory (or the file) under a running server. SQLite
        keeps writing to the unlinked file, so the server and the CLI would silently use two
        different caches. When the file is gone or replaced, close it, re-create the private
        directory, say so once, and let the next operation open a new database.
        """
        now = time.monotonic()
        if now < self._next_watch:
            return
        self._next_watch = now + WATCH_EVERY_S
        try:
            ino: int | None = os.stat(self.directory / DB_NAME).st_ino
        except OSError:
            ino = None
        opened = {self._db_ino if self._cache is not None else None, self._reader.ino} - {None}
        if opened <= {ino}:
            return
        with self._opening:
            self._reader.close()
            if self._cache is not None:
                self._cache.close()
                self._cache = None
            gone = not self.directory.exists()
            try:
                make_private_dir(self.directory)
            except OSError as exc:
                raise StoreError(f"cannot re-create cache dir {self.directory}: {exc}") from exc
        what = "directory" if gone else "database"
        warn(
            f"warning: cache {what} {self.directory if gone else self.directory / DB_NAME} "
            "was deleted or replaced while in use; re-created it (entries start empty)"
        )

    def quarantine(self, exc: BaseException) -> Path:
        """Move a corrupt database aside (kept for a post-mortem) so a new one can be built.

        A cache holds nothing that cannot be recomputed, so serving on with an empty store is
        better than failing every request; the move is announced once as a warning.
        """
        import logging
        import time

        self._reader.close()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.directory / f"{DB_NAME}.corrupt-{stamp}-{os.getpid()}"
        os.replace(self.directory / DB_NAME, target)
        for suffix in ("-wal", "-shm"):
            (self.directory / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
        logging.getLogger("predcache").warning(
            "predcache: warning: cache database %s was corrupt (%s); moved it to %s and "
            "started an empty one",
            self.directory / DB_NAME,
            exc,
            target.name,
        )
        return target

    def _recover(self, exc: BaseException) -> bool:
        """Quarantine a corrupt database (True), so the next operation starts a new one."""
        if not (isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc)):
            return False
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        self.quarantine(exc)
        return True

    def _failed(self, exc: BaseException, what: str) -> NoReturn:
        """Turn a backend error into StoreError (after quarantining a corrupt file)."""
        if not self._recover(exc):
            self._warn_once(f"cache {what} failed in {self.directory}: {exc}")
        raise StoreError(f"cache {what} failed in {self.directory}: {exc}") from exc

    def _warn_once(self, message: str) -> None:
        """One warning per store for a directory it cannot use; requests then bypass it."""
        if not self._warned:
            self._warned = True
            warn(f"warning: {message}; answering without the cache")

    def _usable(self) -> None:
        """Raise (and warn once) when the directory cannot be used; else check it still is."""
        if self._unusable is not None:
            self._warn_once(self._unusable)
            raise StoreError(self._unusable)
        if self._cache is not None or self._reader.ino is not None:
            self._watch()

    def get(self, key: str) -> Entry | None:
        full = self._prefix + key if self._prefix else key
        self._usable()
        try:
            found = self._reader.read(full)
            if found is ASK_DISKCACHE:
                raw = self.cache.get(full)  # a file or a pickle: diskcache (JsonOnlyDisk) decides
                return None if raw is None else self._decode(raw)
        except PickleRefused:
            self._note_corrupt()
            return None
        except (sqlite3.Error, diskcache.Timeout) as exc:
            if self._recover(exc):
                return None  # a corrupt database holds nothing: a miss, recomputed and stored
            self._failed(exc, "read")
        if found is NOT_AN_ENTRY:
            self._note_corrupt()
            return None
        return found

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        self._usable()
        try:
            self.cache.set(
                namespaced(self.namespace, key),
                encode_entry(entry),
                expire=retain_s,
                tag=self.namespace or None,
            )
        except (sqlite3.Error, diskcache.Timeout) as exc:
            self._failed(exc, "write")

    def delete(self, key: str) -> bool:
        return bool(self.cache.delete(namespaced(self.namespace, key)))

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        """diskcache's ``add`` is atomic across processes; the expiry is the lease."""
        import uuid

        token = uuid.uuid4().hex
        self._usable()
        try:
            added = self.cache.add(
                namespaced(self.namespace, name), token, expire=lease_s, tag=LOCK_TAG
            )
        except (sqlite3.Error, diskcache.Timeout) as exc:
            self._failed(exc, "lock")
        return token if added else None

    def renew_lock(self, name: str, token: str, lease_s: float) -> bool:
        """Extend the lease to ``lease_s`` from now, only while ``token`` still holds it."""
        full = namespaced(self.namespace, name)
        try:
            cache = self.cache
            with cache.transact():
                if cache.get(full) != token:
                    return False
                return bool(cache.set(full, token, expire=lease_s, tag=LOCK_TAG))
        except (sqlite3.Error, diskcache.Timeout, PickleRefused, StoreError):
            return False

    def release_lock(self, name: str, token: str) -> None:
        full = namespaced(self.namespace, name)
        try:
            cache = self.cache
            with cache.transact():
                if cache.get(full) == token:
                    cache.delete(full)
        except (sqlite3.Error, diskcache.Timeout, PickleRefused, StoreError):
            pass  # the lease expires on its own

    def clear(self) -> int:
        if self.namespace:
            return int(self.cache.evict(self.namespace))
        return int(self.cache.clear())

    def entry_keys(self) -> list[str]:
        start = len(namespaced(self.namespace, ""))
        return [str(key)[start:] for key, *_ in self._rows() if isinstance(key, str)]

    def _rows(self) -> list[tuple[Any, Any, int, str | None]]:
        """(key, value, mode, filename) for this namespace, read with SQL so nothing unpickles."""
        con = self.cache._sql  # diskcache's own (private) SQL helper; only SELECTs here
        if self.namespace:
            rows = con(
                "SELECT key, value, mode, filename FROM Cache WHERE tag = ?", (self.namespace,)
            )
        else:
            rows = con(
                "SELECT key, value, mode, filename FROM Cache WHERE tag IS NOT ?", (LOCK_TAG,)
            )
        return list(rows.fetchall())

    def stats(self) -> StoreStats:
        created = []
        rows = self._rows()
        stored = 0
        for _key, value, mode, _filename in rows:
            entry = decode_entry(value) if mode != MODE_PICKLE else None
            if entry is not None:
                created.append(float(entry["created_at"]))
            if isinstance(value, str | bytes):
                stored += len(value.encode() if isinstance(value, str) else value)
        # the entries' own bytes, as the other backends count them; the files (SQLite pages,
        # journal) cost more and are shown apart: an empty store still has a 64 KiB database
        files = sum(f.stat().st_size for f in self.directory.rglob("*") if f.is_file())
        return StoreStats(
            backend=self.name,
            location=str(self.directory),
            entries=len(rows),
            bytes=stored,
            extra={"files_bytes": files},
            oldest_created_at=min(created, default=None),
            newest_created_at=max(created, default=None),
            corrupt=self.corrupt_reads,
        )

    def close(self) -> None:
        self._reader.close()
        if self._cache is not None:
            self._cache.close()
