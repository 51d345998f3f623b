"""Write a file so that readers see the old one or the whole new one, never a half.

The temporary file is created first, next to the target (the same file system, so the final
``os.replace`` is atomic), which also proves early that the folder is writable: a command can
reserve its output before long work and fail at once on a bad path. Until :meth:`commit`, the
target is untouched; on any failure or exit without commit, the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from types import TracebackType


class AtomicFile:
    """``with AtomicFile(path) as f: ...; f.commit(text)``; raises ``OSError`` like ``open``."""

    def __init__(self, path: str | Path, *, mode: int | None = None) -> None:
        self.path = Path(path)
        self.mode = mode
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        self._fd: int | None = fd
        self.tmp = Path(tmp)

    def commit(self, text: str) -> Path:
        """Write ``text`` (UTF-8), flush it to disk and move it into place."""
        if self._fd is None:
            raise ValueError(f"{self.path}: already committed or discarded")
        fd, self._fd = self._fd, None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            if self.mode is not None:
                self.tmp.chmod(self.mode)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        with contextlib.suppress(OSError):  # make the rename durable; best effort
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (the target stays as it was)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()


def shared_mode() -> int:
    """The mode ``open`` would give a new file (0666 less the umask), for files meant to be
    shared, such as a report; ``mkstemp`` alone makes them private (0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
