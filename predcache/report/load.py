"""Find and read the ``summary.csv`` of bench runs into one pandas DataFrame."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from predcache.bench.results import SUMMARY_FILE
from predcache.errors import BadDataError, BadInputError

if TYPE_CHECKING:
    import pandas as pd

#: What a summary must have for the report to make sense of it.
NEEDED = ("run_id", "requests")


def find_summaries(paths: Sequence[str | Path]) -> list[Path]:
    """Every summary.csv under ``paths`` (folders are searched recursively), sorted, unique."""
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            if path.name != SUMMARY_FILE:
                raise BadInputError(f"{path} is not a {SUMMARY_FILE}; pass a results folder")
            found.add(path)
        elif path.is_dir():
            found.update(p for p in path.rglob(SUMMARY_FILE) if p.is_file())
        else:
            raise BadInputError(f"no such results folder: {path}")
    return sorted(found)


def load_summaries(paths: Sequence[str | Path]) -> pd.DataFrame:
    """All rows of all runs, sorted by configuration (run) and TTL; a clear error when there
    is nothing to read or a file is not a bench summary."""
    import pandas as pd

    files = find_summaries(paths)
    if not files:
        shown = ", ".join(str(p) for p in paths)
        raise BadInputError(
            f"no bench results under {shown}: run `predcache bench` first "
            f"(each run writes <out>/<run>/{SUMMARY_FILE})"
        )
    frames = []
    for f in files:
        try:
            frame = pd.read_csv(f)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise BadDataError(f"{f}: cannot read it as CSV ({exc})") from None
        missing = [c for c in NEEDED if c not in frame.columns]
        if missing:
            raise BadDataError(f"{f}: not a predcache bench summary (no {', '.join(missing)})")
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    for col in ("ttl_s", "hit_ratio", "added_error_bps", "speedup_vs_no_cache"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    order = [c for c in ("run_id", "mode", "target", "ttl_s") if c in df.columns]
    return df.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
