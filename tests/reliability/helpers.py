"""Small helpers the reliability tests share: the real console script, state snapshots."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sysconfig.get_path("scripts")) / "predcache"


class _Cli:
    """``cli(*args)`` runs the installed ``predcache`` as a real process."""

    command: tuple[str, ...] = (
        (str(_SCRIPT),) if _SCRIPT.exists() else (sys.executable, "-m", "predcache")
    )

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else dict(os.environ),
        )


cli = _Cli()


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``roots``: path -> (size, mtime_ns); a missing root is empty."""
    state: dict[str, tuple[int, int]] = {}
    for root in roots:
        if not root.exists():
            continue
        for p in sorted(root.rglob("*")):
            st = p.stat()
            state[str(p)] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
        st = root.stat()
        state[str(root)] = (-1, st.st_mtime_ns)
    return state
