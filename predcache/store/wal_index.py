"""Has any connection committed to a WAL-mode SQLite database? Read from its WAL-index header.

Why: the disk store's reader asks SQLite ``PRAGMA data_version`` before serving a kept entry
(:mod:`predcache.store.disk_reader`). That is a read transaction -- two ``fcntl`` lock calls
and a pass through SQLite's virtual machine -- and inside a busy server it was most of what a
disk hit costs beyond a memory hit (``docs/performance.md``). When nothing was committed, the
answer is already in shared memory: the WAL-index header that SQLite keeps at the start of the
database's ``-shm`` file, the header every SQLite reader itself checks to learn whether the
database changed (https://www.sqlite.org/walformat.html, "The WAL-Index Header").

What the reader relies on, all from that documented, cross-version file format:

- Every commit rewrites the header, and its ``iChange`` counter (bytes 8-11) goes up by one; a
  checkpoint that restarts the WAL changes its salts. So while the header's bytes equal those
  read before the last ``data_version`` was asked, nothing was committed since, and that answer
  still holds. A header read is one ``pread`` and never takes a lock.
- The header is kept twice (bytes 0-47 and 48-95); a writer writes the second copy, then the
  first. Two copies that differ are a write in progress, and a header whose ``isInit`` byte
  (12) is not 1 is not set up yet: either answer is "unknown", and the reader asks SQLite.
- Only while the reader's own connection is open in WAL mode: a WAL connection keeps a shared
  lock on the database, so no one can take it out of WAL mode (writes would then bypass the
  header) and SQLite never deletes or recreates the ``-shm`` file under it. The reader opens
  this file after its connection has read the database, and closes it with the connection.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the header's size, and where its second copy starts
HEADER_BYTES = 48
#: offset of ``isInit`` (1 once the WAL-index has been built)
IS_INIT = 12


class WalIndex:
    """The ``-shm`` file of one open WAL-mode connection, read without locks."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def open(cls, db: Path) -> WalIndex | None:
        """The WAL-index of ``db``, or ``None`` when there is none to read."""
        try:
            return cls(os.open(f"{db}-shm", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            return None

    def header(self) -> bytes | None:
        """The WAL-index header now, or ``None`` when it is being written or not set up."""
        try:
            both = os.pread(self._fd, 2 * HEADER_BYTES, 0)
        except OSError:
            return None
        first = both[:HEADER_BYTES]
        if len(both) != 2 * HEADER_BYTES or first != both[HEADER_BYTES:] or first[IS_INIT] != 1:
            return None
        return first

    def close(self) -> None:
        os.close(self._fd)
