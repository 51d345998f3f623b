"""The results folder of a bench run, shared by the simulated and the live mode.

Layout (``results/README.md`` explains it to users)::

    <out>/<UTC timestamp>-<label>/
        params.json    every option, versions, CPU count and platform; what was simulated
        summary.csv    one row per configuration, columns SUMMARY_COLUMNS (+ mode extras)
        requests.csv   one row per request and configuration (only with --save-requests)
        requests.partial.csv   a live run's requests as they were answered; removed when the
                               run ends well, kept (what was measured) when it did not

params.json's ``command`` is the line that repeats the run; both modes build it with
:func:`command_line`, from their validated options.

The column list lives here, once, so ``predcache report`` and both bench modes agree on it; a
mode adds its own columns (the live mode adds ``target``) by putting extra keys in its rows,
which :func:`write_summary` appends after the shared ones. Nothing machine-specific is written
beyond what the user typed: backend specs are redacted, default directories are not expanded.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from predcache.errors import BadInputError, PredcacheError
from predcache.store import redact_url

#: one value of a rebuilt command line: text, a number, a list (comma-joined), a bare flag
#: (``True``), or nothing (``None``, ``False``: the flag is left out)
FlagValue = str | int | float | Sequence[str | int | float] | None

#: The columns every summary.csv has, in this order (the issue names them exactly so).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "run_id", "ttl_s", "requests", "hits", "misses", "hit_ratio", "expected_hit_ratio",
    "model_calls", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "hit_latency_p50_ms",
    "miss_latency_p50_ms", "speedup_vs_no_cache", "mean_age_s", "p95_age_s", "max_age_s",
    "mae_fresh_bps", "mae_served_bps", "added_error_bps", "model_delay_ms", "backend", "rate",
    "zipf", "keys", "seed",
)  # fmt: skip
#: Shared extras: ``mode`` is ``simulated`` or ``live``; the engine's own speed and health; how
#: many market paths the accuracy columns average over, the added error on path 0 alone, and
#: the 95% confidence half-width of the added error from the spread between paths.
EXTRA_COLUMNS: tuple[str, ...] = (
    "mode", "workload", "latency_mean_ms", "lookup_p50_ms", "model_p50_ms", "backend_errors",
    "engine_wall_s", "engine_rps", "market_paths", "added_error_path0_bps",
    "added_error_ci95_bps",
    # the stampede strategy and what it did (docs/bench.md, "Requests in flight")
    "stampede", "collapsed", "stale", "duplicate_calls", "max_inflight",
    "served_from_cache_ratio", "expected_collapsed_ratio", "expected_miss_ratio",
    "latency_p90_ms", "latency_p999_ms", "stale_grace_s", "model_concurrency",
    # served vs fresh (bps), no realised price needed: staleness for any model (--model)
    "drift_bps",
    # simulated model failures and what answered them (docs/bench.md, "Model failures")
    "model_fail_rate", "stale_if_error_s", "failed", "stale_if_error",
    # at scale (docs/bench.md, "Bench at scale"): real model computations made for the row
    # (the no-cache row computes each key and minute once), and how percentiles were taken
    "model_runs", "percentiles",
)  # fmt: skip
SUMMARY_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + EXTRA_COLUMNS
PARAMS_FILE, SUMMARY_FILE, REQUESTS_FILE = "params.json", "summary.csv", "requests.csv"
PARTIAL_FILE = "requests.partial.csv"
_LABEL_MAX = 48


def slug(text: str) -> str:
    """A short, file-name-safe label: ``ttl 0,30,90/memory`` -> ``ttl-0-30-90-memory``."""
    cleaned = re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.")
    return cleaned[:_LABEL_MAX].rstrip("-.") or "run"


def new_run_dir(out: str | Path, label: str, *, now: datetime | None = None) -> Path:
    """Create ``<out>/<UTC timestamp>-<label>/`` (a ``-2``, ``-3``... suffix if taken)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{slug(label)}"
    if Path(out).exists() and not Path(out).is_dir():
        raise BadInputError(f"bad --out {out}: it is a file, not a folder for results")
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            path = Path(out) / (base if n == 1 else f"{base}-{n}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return path
    except OSError as exc:
        raise PredcacheError(f"cannot create the results folder in {out}: {exc}") from None
    raise PredcacheError(f"cannot create the results folder in {out}: too many runs named {base}")


def environment() -> dict[str, Any]:
    """Versions and machine facts for params.json (no host names, users or paths)."""

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "versions": {
            "predcache": version("predcache"),
            "python": platform.python_version(),
            "numpy": version("numpy"),
            "diskcache": version("diskcache"),
        },
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(terse=True)},
    }


def _clean(value: Any) -> Any:
    """JSON/CSV-safe: NaN and infinities become ``None`` (an empty CSV cell, JSON null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def command_line(flags: Sequence[tuple[str, FlagValue]]) -> str:
    """The ``predcache bench`` command line that repeats a run, one shell-quoted line.

    Both modes rebuild it from their validated options (``BenchOptions.command``,
    ``LiveOptions.command``), never from ``sys.argv``, which belongs to whoever called the CLI
    in process; defaults come out written, so the line still repeats the run after a default
    changes. ``flags`` are ``(flag, value)`` pairs in order (a flag may repeat); a number is
    written without a trailing ``.0`` and any password in a URL (a redis backend, a
    ``--target``) as ``***``, since params.json is meant to be shared.
    """
    args = ["predcache", "bench"]
    for flag, value in flags:
        if value is None or value is False:
            continue
        args.append(flag)
        if value is not True:
            args.append(redact_url(_flag_text(value)))
    return shlex.join(args)


def _flag_text(value: str | int | float | Sequence[str | int | float]) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return ",".join(_flag_text(v) for v in value)


def clean_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with NaN/inf replaced by ``None``, for ``--json`` and the CSV."""
    return [_clean(dict(row)) for row in rows]


def write_params(run_dir: Path, params: Mapping[str, Any]) -> Path:
    """params.json: the run's options and what it ran on."""
    path = run_dir / PARAMS_FILE
    body = {**_clean(dict(params)), **environment()}
    _write_text(path, json.dumps(body, indent=2, allow_nan=False) + "\n")
    return path


def summary_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """SUMMARY_COLUMNS, then any extra keys the rows carry, in first-seen order."""
    cols = list(SUMMARY_COLUMNS)
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    return cols


def write_summary(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """summary.csv: one row per configuration; a missing or NaN value is an empty cell."""
    path = run_dir / SUMMARY_FILE
    cols = summary_columns(rows)
    try:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=cols, restval="")
            writer.writeheader()
            for row in clean_rows(rows):
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
    except OSError as exc:
        raise PredcacheError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def write_requests(run_dir: Path, columns: Mapping[str, Sequence[Any]]) -> Path:
    """requests.csv from equal-length columns (one row per request and configuration)."""
    path = run_dir / REQUESTS_FILE
    try:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(list(columns))
            writer.writerows(zip(*columns.values(), strict=True))
    except OSError as exc:
        raise PredcacheError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


class RequestStream:
    """A live run's requests, appended to ``requests.partial.csv`` as they are answered.

    Why: a live run measures in real time and cannot be replayed, so what it measured must
    survive a crash or Ctrl-C; rows are flushed to the file every batch (the writer calls
    :meth:`write` a few times a second, from one thread). A run that ends well has its
    summary (and ``requests.csv`` when asked) and removes this file.
    """

    def __init__(self, run_dir: Path, columns: Sequence[str]) -> None:
        self.path = run_dir / PARTIAL_FILE
        try:
            self._fh = self.path.open("w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._fh)
            self._csv.writerow(list(columns))
            self._fh.flush()
        except OSError as exc:
            raise PredcacheError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append ``rows`` and hand them to the OS (they survive the process being killed)."""
        if not rows:
            return
        try:
            self._csv.writerows(rows)
            self._fh.flush()
        except OSError as exc:
            raise PredcacheError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self, *, keep: bool) -> None:
        """Close; remove the file unless ``keep`` (the run did not end well)."""
        self._fh.close()
        if not keep:
            self.path.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PredcacheError(f"cannot write {path}: {exc.strerror or exc}") from None
