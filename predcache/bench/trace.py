"""Reading a bench trace in chunks: CSV (pandas) or Parquet (pyarrow), validated vectorised.

A trace of an API log has millions of rows, so it is read a chunk at a time
(:data:`CHUNK_ROWS`) into two compact arrays (arrival time as float64, key id as int32: 12
bytes a request). Validation works on each chunk's columns at once: numeric timestamps are
range-checked as an array, and each *distinct* pair, horizon and non-numeric timestamp is
parsed once by the same parsers the CLI uses. The first bad row is reported with the file and
its line (CSV: the header is line 1; a blank line is counted and skipped) or its row (Parquet,
1-based), as one :class:`BadDataError`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Generator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from predcache.durations import parse_horizon
from predcache.errors import BadDataError, BadDurationError, BadHorizonError, BadPairError
from predcache.pairs import parse_pair
from predcache.timestamps import MAX_EPOCH_S, parse_timestamp

TRACE_COLUMNS = ("timestamp", "pair", "horizon")
CHUNK_ROWS = 262_144
Key = tuple[str, int]


class _RowError(Exception):
    """A bad value at chunk offset ``at`` (the reader adds file and line)."""

    def __init__(self, at: int, message: str) -> None:
        super().__init__(message)
        self.at = at


def read_trace(name: str) -> tuple[np.ndarray, np.ndarray, list[Key]]:
    """(arrival times, key ids, keys in order of first appearance), in file order."""
    parquet = name.lower().endswith(".parquet")
    if not Path(name).is_file():
        raise BadDataError(f"{name}: cannot read the trace (no such file)")
    keys: dict[Key, int] = {}
    parsed: dict[str, dict[Any, Any]] = {"pair": {}, "horizon": {}, "timestamp": {}}
    out = _Arrays(_parquet_rows(name) if parquet else None)
    where = "row" if parquet else "line"
    first = 1 if parquet else 2  # the number of the chunk's first row
    chunks = _parquet_chunks(name) if parquet else _csv_chunks(name)
    with closing(chunks):
        for columns in chunks:
            try:
                t, k = _validate(columns, keys, parsed)
            except _RowError as exc:
                raise BadDataError(f"{name} {where} {first + exc.at}: {exc}") from None
            out.append(t, k)
            first += len(columns["timestamp"])
    if not out.n:
        raise BadDataError(f"{name}: no requests: the trace has a header but no rows")
    times, ids = out.arrays()
    return times, ids, list(keys)


class _Arrays:
    """The trace's two columns as they are read: filled in place when the row count is known
    (Parquet), else gathered by chunk and joined once (CSV)."""

    def __init__(self, rows: int | None) -> None:
        self.n = 0
        self.full = None if rows is None else (np.empty(rows), np.empty(rows, dtype=np.int32))
        self.times: list[np.ndarray] = []
        self.ids: list[np.ndarray] = []

    def append(self, times: np.ndarray, ids: np.ndarray) -> None:
        if self.full is not None:
            self.full[0][self.n : self.n + len(times)] = times
            self.full[1][self.n : self.n + len(ids)] = ids
        else:
            self.times.append(times)
            self.ids.append(ids)
        self.n += len(times)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.full is not None:
            return self.full[0][: self.n], self.full[1][: self.n]
        times = np.concatenate(self.times)
        self.times.clear()  # the chunks go before the ids are joined: a lower peak
        return times, np.concatenate(self.ids)


def _parquet_rows(name: str) -> int | None:
    try:
        import pyarrow.parquet as pq

        rows: int = pq.ParquetFile(name).metadata.num_rows
        return rows
    except Exception:  # not readable: _parquet_chunks says why
        return None


def _csv_chunks(name: str) -> Generator[dict[str, Any]]:
    import pandas as pd

    try:
        with open(name, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except OSError as exc:
        raise BadDataError(f"{name}: cannot read the trace ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise BadDataError(f"{name}: not UTF-8 text") from None
    except csv.Error as exc:
        raise BadDataError(f"{name} line 1: malformed CSV ({exc})") from None
    if header is None:
        raise BadDataError(
            f"{name} line 0: the file is empty; expected a header timestamp,pair,horizon"
        )
    fields = [h.strip().lower() for h in header]
    missing = [c for c in TRACE_COLUMNS if c not in fields]
    if missing:
        raise BadDataError(
            f"{name} line 1: missing column {', '.join(missing)}; need timestamp,pair,horizon"
        )
    positions = [fields.index(c) for c in TRACE_COLUMNS]
    # timestamps parse as numbers when they all are (pandas >= 3 parses exactly as Python's
    # float(), so a CSV and a Parquet file of the same trace agree), else as text; pairs and
    # horizons as categories: each distinct text once, and a small code per row
    text = {header[positions[1]]: "category", header[positions[2]]: "category"}
    exact: dict[str, Any] = {}
    if int(pd.__version__.split(".")[0]) < 3:
        exact["float_precision"] = "round_trip"
    try:
        with pd.read_csv(
            name, usecols=positions, header=0, dtype=text, keep_default_na=False,
            skip_blank_lines=False, chunksize=CHUNK_ROWS, encoding="utf-8-sig",
            engine="c", **exact,
        ) as reader:  # fmt: skip
            for frame in reader:
                cols = [frame.iloc[:, sorted(positions).index(p)] for p in positions]
                out: dict[str, Any] = {"width": max(positions) + 1}
                t, p, h = cols
                numeric = pd.api.types.is_numeric_dtype(t.dtype)
                out["timestamp"] = (
                    t.to_numpy(dtype=np.float64)
                    if numeric
                    else t.to_numpy(dtype=object, na_value="")
                )
                for c, col in (("pair", p), ("horizon", h)):
                    out[c] = (col.cat.codes.to_numpy(), list(col.cat.categories))
                yield out
    except UnicodeDecodeError:
        raise BadDataError(f"{name}: not UTF-8 text") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise BadDataError(f"{name}: malformed CSV ({str(exc).strip()})") from None


def _parquet_chunks(name: str) -> Generator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BadDataError(f"{name}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        pf = pq.ParquetFile(name)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise BadDataError(f"{name}: not a readable Parquet file ({exc})") from None
    fields = {f.strip().lower(): f for f in pf.schema_arrow.names}
    missing = [c for c in TRACE_COLUMNS if c not in fields]
    if missing:
        raise BadDataError(
            f"{name}: missing column {', '.join(missing)}; need timestamp,pair,horizon"
        )
    names = [fields[c] for c in TRACE_COLUMNS]
    for batch in pf.iter_batches(batch_size=CHUNK_ROWS, columns=names):
        t, p, h = batch.columns
        yield {"width": 0, "timestamp": _arrow_times(t), "pair": _codes(p), "horizon": _codes(h)}


def _codes(col: Any) -> tuple[np.ndarray, list[Any]]:
    """(a code per row, -1 for a missing value; the distinct values), without a Python object
    per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = col if pa.types.is_dictionary(col.type) else col.dictionary_encode()
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    return codes, enc.dictionary.to_pylist()


def _arrow_times(col: Any) -> np.ndarray:
    """Numbers as float64 (a timestamp type as epoch seconds), anything else as objects."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(col.type):
        us = pc.cast(pc.cast(col, pa.timestamp("us", tz="UTC")), pa.int64())
        out: np.ndarray = us.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
        if col.null_count:
            out[np.asarray(col.is_null())] = np.nan
        return out
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        floats: np.ndarray = col.to_numpy(zero_copy_only=False).astype(np.float64)
        return floats
    return np.asarray(col.to_pylist(), dtype=object)


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _validate(
    cols: dict[str, Any], keys: dict[Key, int], parsed: dict[str, dict[Any, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """One chunk's times and key ids (blank rows dropped); a :class:`_RowError` at the first
    bad row."""

    raw_t = cols["timestamp"]
    p_codes, p_uniques = cols["pair"]
    h_codes, h_uniques = cols["horizon"]
    # code -1 (a missing value) indexes the last entry of each table: blank
    empty = [
        _blank(raw_t),
        np.array([_is_blank(u) for u in p_uniques] + [True])[p_codes],
        np.array([_is_blank(u) for u in h_uniques] + [True])[h_codes],
    ]
    blank_row = empty[0] & empty[1] & empty[2]
    partial = (empty[0] | empty[1] | empty[2]) & ~blank_row
    problems: list[tuple[int, str]] = []
    if partial.any():
        i = _first(partial)
        gone = [c for c, e in zip(TRACE_COLUMNS, empty, strict=True) if e[i]]
        width = cols.get("width") or len(TRACE_COLUMNS)
        problems.append((i, f"expected at least {width} fields, with {', '.join(gone)} missing"))
    times = _times(raw_t, empty[0], parsed["timestamp"], problems)
    pairs = _parse_each(p_uniques, p_codes, empty[1], parsed["pair"], parse_pair, problems)
    horizons = _parse_each(h_uniques, h_codes, empty[2], parsed["horizon"], parse_horizon, problems)
    if problems:
        raise _RowError(*min(problems))
    keep = ~blank_row
    combo = p_codes[keep].astype(np.int64) * (len(h_uniques) + 1) + h_codes[keep]
    unique, first, inverse = np.unique(combo, return_index=True, return_inverse=True)
    ids = np.empty(len(unique), dtype=np.int32)
    for u in np.argsort(first, kind="stable").tolist():  # keys in order of first appearance
        pc, hc = divmod(int(unique[u]), len(h_uniques) + 1)
        ids[u] = keys.setdefault((pairs[pc], horizons[hc]), len(keys))
    return times[keep], ids[inverse.reshape(-1)]


def _is_blank(value: Any) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    return isinstance(value, str) and not value.strip()


def _parse_each(
    uniques: list[Any],
    codes: np.ndarray,
    skip: np.ndarray,
    cache: dict[Any, Any],
    parse: Callable[[Any], Any],
    problems: list[tuple[int, str]],
) -> list[Any]:
    """Each distinct value parsed once (a failure kept in ``cache`` as the exception); the
    first row with a bad value, not in ``skip``, goes to ``problems``."""
    out, bad = [], []
    for u, raw in enumerate(uniques):
        if raw not in cache:
            try:
                cache[raw] = parse(_plain(raw))
            except (BadPairError, BadDurationError, BadHorizonError, ValueError) as exc:
                cache[raw] = exc
        got = cache[raw]
        if isinstance(got, Exception):
            bad.append(u)
            got = None
        out.append(got)
    if bad:
        rows = np.isin(codes, bad) & ~skip
        if rows.any():
            at = _first(rows)
            problems.append((at, str(cache[uniques[codes[at]]])))
    return out


def _times(
    raw: np.ndarray, skip: np.ndarray, cache: dict[Any, Any], problems: list[tuple[int, str]]
) -> np.ndarray:
    """Epoch seconds: numbers range-checked as an array, other text parsed once per value."""
    import pandas as pd

    if raw.dtype != object:
        times = np.array(raw, dtype=np.float64)
    else:
        text = pd.Series(raw, dtype=object).str.strip()
        times = np.array(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
        other = np.isnan(times) & ~skip
        if other.any():
            rows = np.flatnonzero(other)
            codes, uniques = pd.factorize(raw[rows])
            found: list[tuple[int, str]] = []
            table = _parse_each(list(uniques), codes, ~other[rows], cache, parse_timestamp, found)
            if found:
                at, message = min(found)
                problems.append((int(rows[at]), message))
            times[rows] = np.array([np.nan if v is None else v for v in table])[codes]
            if len(cache) > 100_000:  # ISO times are mostly distinct: do not keep them all
                cache.clear()
    out_of_range = ~skip & ~((times >= 0) & (times < MAX_EPOCH_S)) & ~np.isnan(times)
    if out_of_range.any():
        i = _first(out_of_range)
        try:
            parse_timestamp(str(raw[i]))
            message = f"timestamp {raw[i]!r} is out of range (epoch seconds expected)"
        except ValueError as exc:
            message = str(exc)
        problems.append((i, message))
    return times


def _blank(col: np.ndarray) -> np.ndarray:
    if col.dtype != object:
        out: np.ndarray = np.isnan(col)
        return out
    import pandas as pd

    s = pd.Series(col, dtype=object)
    return (s.isna() | (s.astype(str).str.strip() == "")).to_numpy(dtype=bool)


def _plain(value: Any) -> Any:
    """A float that is a whole number as int (Parquet horizons in seconds)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
