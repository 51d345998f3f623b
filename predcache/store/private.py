"""File modes of a store on disk: a private directory (0700) and private database files (0600).

A cache holds what a model computed for someone; on a shared machine nobody else should read
it. Modes are set on every open, not only on creation, because the moment between a file's
creation (with the umask's mode) and its chmod can be interrupted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700; leave existing directories alone."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue
        os.chmod(d, PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def make_private_files(directory: Path, db_name: str) -> bool:
    """Set the database and its -wal/-shm siblings to 0600 when this user owns them.

    On every open, not only when the file is new: a crash between SQLite creating the file
    (with the umask's mode) and the chmod, or a full disk, can leave a 0644 file behind that
    later fills with entries. False when the database does not exist (yet).
    """
    uid = os.geteuid()
    found = False
    for suffix in ("", "-wal", "-shm"):
        try:
            st = os.stat(directory / f"{db_name}{suffix}")
        except FileNotFoundError:
            continue
        found = found or not suffix
        if st.st_uid == uid and stat.S_IMODE(st.st_mode) != PRIVATE_FILE:
            os.chmod(directory / f"{db_name}{suffix}", PRIVATE_FILE)
    return found
