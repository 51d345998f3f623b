"""Find, read and check the ``summary.csv`` of bench runs, into one pandas DataFrame.

Tolerant of columns, strict about values: a summary from an older or newer predcache may lack
optional columns or carry new ones (they are kept and shown where known), but a required
column missing, a number that is not one, or an impossible value (a hit ratio of 1.7, a
negative latency) is one line naming the file, the column and the line. Every check is
vectorised, so 100,000 rows load in well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from predcache.bench.results import SUMMARY_FILE
from predcache.errors import BadDataError, BadInputError

if TYPE_CHECKING:
    import pandas as pd

#: What a summary must have for the report to make sense of it.
NEEDED = ("run_id", "requests")
_INF = math.inf
#: numeric columns and the closed range their values must lie in (an empty cell is allowed)
RANGES: dict[str, tuple[float, float]] = {
    "ttl_s": (0, _INF), "requests": (0, _INF), "hits": (0, _INF), "misses": (0, _INF),
    "collapsed": (0, _INF), "stale": (0, _INF), "bypasses": (0, _INF), "errors": (0, _INF),
    "model_calls": (0, _INF), "hit_ratio": (0, 1), "expected_hit_ratio": (0, 1),
    "speedup_vs_no_cache": (0, _INF), "mae_fresh_bps": (0, _INF), "mae_served_bps": (0, _INF),
    "added_error_bps": (-_INF, _INF), "added_error_path0_bps": (-_INF, _INF),
    "added_error_ci95_bps": (0, _INF), "drift_bps": (0, _INF), "rate": (0, _INF),
    "zipf": (0, _INF), "keys": (0, _INF),
    "seed": (0, _INF), "market_paths": (1, _INF), "throughput_rps": (0, _INF),
    "engine_rps": (0, _INF), "concurrency": (1, _INF), "backend_errors": (0, _INF),
    "failed": (0, _INF), "stale_if_error": (0, _INF), "model_fail_rate": (0, 1),
    "stale_if_error_s": (0, _INF),
}  # fmt: skip
#: suffixes of numeric columns not listed above (new latency percentiles, ages): >= 0
NONNEGATIVE_SUFFIXES = ("_ms", "_age_s", "_wall_s")
MODES = ("simulated", "live")


def find_summaries(paths: Sequence[str | Path]) -> list[Path]:
    """Every summary.csv under ``paths`` (folders are searched recursively), sorted, unique."""
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            if path.name != SUMMARY_FILE:
                raise BadInputError(f"{path} is not a {SUMMARY_FILE}; pass a results folder")
            found.add(path)
        elif path.is_dir():
            found.update(p for p in path.rglob(SUMMARY_FILE) if p.is_file())
        else:
            raise BadInputError(f"no such results folder: {path}")
    return sorted(found)


def _range_of(column: str) -> tuple[float, float] | None:
    if column in RANGES:
        return RANGES[column]
    if column.endswith(NONNEGATIVE_SUFFIXES):
        return (0, _INF)
    return None


def check_summary(frame: pd.DataFrame, source: Path | str) -> pd.DataFrame:
    """The frame with its known numeric columns as floats; :class:`BadDataError` (one line:
    file, column, CSV line) for a missing column, a non-number or an impossible value."""
    import numpy as np
    import pandas as pd

    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        raise BadDataError(
            f"{source}: not a predcache bench summary (no column {', '.join(missing)})"
        )
    out = frame.copy()

    def fail(column: str, row: int, problem: str) -> BadDataError:
        shown = str(frame[column].iloc[row])[:40]
        return BadDataError(f"{source}: column {column}, line {row + 2}: {shown!r} {problem}")

    if out["run_id"].isna().any():
        raise fail("run_id", int(np.flatnonzero(out["run_id"].isna().to_numpy())[0]), "is empty")
    for column in out.columns:
        bounds = _range_of(str(column))
        if bounds is None:
            continue
        values = pd.to_numeric(out[column], errors="coerce").astype("float64")
        given = out[column].notna().to_numpy()
        arr = values.to_numpy()
        bad = given & np.isnan(arr)
        if bad.any():
            raise fail(str(column), int(np.flatnonzero(bad)[0]), "is not a number")
        lo, hi = bounds
        with np.errstate(invalid="ignore"):
            wrong = given & ~((arr >= lo) & (arr <= hi) & np.isfinite(arr))
        if wrong.any():
            where = "finite" if math.isinf(lo) else (
                f"between {lo:g} and {hi:g}" if math.isfinite(hi) else f">= {lo:g}"
            )  # fmt: skip
            raise fail(
                str(column), int(np.flatnonzero(wrong)[0]), f"is impossible (must be {where})"
            )
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = values  # read as text (a stray cell): numbers from here on
    if "hits" in out.columns:
        over = (out["hits"] > out["requests"]).to_numpy()
        if over.any():
            raise fail("hits", int(np.flatnonzero(over)[0]), "is more than the requests")
    if "mode" in out.columns:
        odd = out["mode"].notna() & ~out["mode"].isin(MODES)
        if odd.any():
            raise fail("mode", int(np.flatnonzero(odd.to_numpy())[0]), f"is not one of {MODES}")
    else:  # summaries from before the live mode were all simulated
        out["mode"] = "simulated"
    return out


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
            frame = pd.read_csv(f, low_memory=False)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            one_line = " ".join(str(exc).split())[:160]
            raise BadDataError(f"{f}: cannot read it as CSV ({one_line})") from None
        frames.append(check_summary(frame, f))
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df["run_id"] = df["run_id"].astype(str)
    order = [c for c in ("run_id", "mode", "target", "ttl_s") if c in df.columns]
    return df.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
