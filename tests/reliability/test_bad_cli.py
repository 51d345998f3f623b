"""Bad CLI input, table-driven: every case exits 2 with one line on stderr and changes nothing.

Each case runs the installed console script as a real process. Before and after, the cache
directory, the models directory and the results directory are snapshotted (file list, sizes,
mtimes): bad input must be refused before anything is written. CSV cases use files made in a
separate data directory first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability import figures
from tests.reliability.helpers import cli, snapshot

GOOD_CANDLE = "{t},100,101,99,100.5,10"


def _candles(rows: list[str]) -> str:
    return "\n".join(["timestamp,open,high,low,close,volume", *rows]) + "\n"


def _sorted_rows(n: int = 300, start: int = 1_750_000_000) -> list[str]:
    return [GOOD_CANDLE.format(t=start + 60 * i) for i in range(n)]


DATA: dict[str, str | bytes] = {
    "empty.csv": b"",
    "garbage.csv": b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\n" * 50,
    "header-only.csv": _candles([]),
    "unsorted.csv": _candles(list(reversed(_sorted_rows()))),
    "negative.csv": _candles([*_sorted_rows(250), "1750090000,-5,-4,-6,-5,10"]),
    "nan-price.csv": _candles([*_sorted_rows(250), "1750090000,nan,nan,nan,nan,1"]),
    "trace-empty.csv": b"",
    "trace-garbage.csv": b"\xff\xfe\x00\x01" * 100,
    "trace-header-only.csv": "timestamp,pair,horizon\n",
    "trace-bad-pair.csv": "timestamp,pair,horizon\n1750000000,ETH/EUR,5m\n1750000001,../x,5m\n",
    "trace-negative-time.csv": "timestamp,pair,horizon\n-5,ETH/EUR,5m\n",
    "trace-bad-horizon.csv": "timestamp,pair,horizon\n1750000000,ETH/EUR,-1m\n",
    "trace-no-columns.csv": "when,what\n1,2\n",
}
PW = "redis://:hunter2secret@127.0.0.1:1/0"

#: (kind, args); ``{data}`` is the data directory
CASES: list[tuple[str, list[str]]] = [
    # pairs
    ("pair", ["predict", "DOGE/EUR"]),
    ("pair", ["predict", "ETH"]),
    ("pair", ["predict", ""]),
    ("pair", ["predict", "../../etc/passwd"]),
    ("pair", ["predict", "ETH/EUR\r\nX-Injected: 1"]),
    ("pair", ["predict", "ETH/EUR/BTC"]),
    ("pair", ["predict", "E" * 5000 + "/EUR"]),
    ("pair", ["predict", "ETH/EUR;rm -rf ~"]),
    ("pair", ["bench", "--pairs", "ETH/EUR,NOPE/X"]),
    ("pair", ["bench", "--pairs", ","]),
    ("pair", ["train", "--pairs", "ETH/EUR,../../x"]),
    # durations
    ("duration", ["predict", "ETH/EUR", "--horizon", "0"]),
    ("duration", ["predict", "ETH/EUR", "--horizon", "-5m"]),
    ("duration", ["predict", "ETH/EUR", "--horizon", "nan"]),
    ("duration", ["predict", "ETH/EUR", "--horizon", "inf"]),
    ("duration", ["predict", "ETH/EUR", "--horizon", "1e309"]),
    ("duration", ["predict", "ETH/EUR", "--horizon", "2m"]),
    ("duration", ["predict", "ETH/EUR", "--horizon", "5 parsecs"]),
    ("duration", ["predict", "ETH/EUR", "--ttl", "-1"]),
    ("duration", ["predict", "ETH/EUR", "--ttl", "NaN"]),
    ("duration", ["predict", "ETH/EUR", "--ttl", "9" * 400]),
    ("duration", ["predict", "ETH/EUR", "--ttl", "400d"]),
    ("duration", ["predict", "ETH/EUR", "--max-age", "-0.5s"]),
    ("duration", ["predict", "ETH/EUR", "--model-delay", "10y"]),
    ("duration", ["bench", "--ttl", "0,-1"]),
    ("duration", ["bench", "--ttl", ""]),
    ("duration", ["train", "--horizons", "90s"]),
    ("duration", ["serve", "--ttl", "forever"]),
    # backends
    ("backend", ["predict", "ETH/EUR", "--backend", "mongo://x"]),
    ("backend", ["predict", "ETH/EUR", "--backend", "redis://"]),
    ("backend", ["predict", "ETH/EUR", "--backend", "redis://127.0.0.1:notaport/0"]),
    ("backend", ["predict", "ETH/EUR", "--backend", "redis://127.0.0.1:6379/abc"]),
    ("backend", ["predict", "ETH/EUR", "--backend", "redis://127.0.0.1:6379/0?evil=1"]),
    ("backend", ["predict", "ETH/EUR", "--backend", "disk://"]),
    ("backend", ["cache", "stats", "--backend", "ftp://x"]),
    ("backend", ["bench", "--backend", PW.replace(":1/0", ":99999/0")]),
    # CSVs for train
    ("csv (train)", ["train", "--data", "{data}/missing.csv", "--pair", "ETH/EUR"]),
    ("csv (train)", ["train", "--data", "{data}/empty.csv", "--pair", "ETH/EUR"]),
    ("csv (train)", ["train", "--data", "{data}/garbage.csv", "--pair", "ETH/EUR"]),
    ("csv (train)", ["train", "--data", "{data}/header-only.csv", "--pair", "ETH/EUR"]),
    ("csv (train)", ["train", "--data", "{data}/unsorted.csv", "--pair", "ETH/EUR"]),
    ("csv (train)", ["train", "--data", "{data}/negative.csv", "--pair", "ETH/EUR"]),
    ("csv (train)", ["train", "--data", "{data}/nan-price.csv", "--pair", "ETH/EUR"]),
    ("csv (train)", ["train", "--data", "{data}/empty.csv"]),
    # CSVs for trace
    ("csv (trace)", ["bench", "--trace", "{data}/missing.csv"]),
    ("csv (trace)", ["bench", "--trace", "{data}/trace-empty.csv"]),
    ("csv (trace)", ["bench", "--trace", "{data}/trace-garbage.csv"]),
    ("csv (trace)", ["bench", "--trace", "{data}/trace-header-only.csv"]),
    ("csv (trace)", ["bench", "--trace", "{data}/trace-bad-pair.csv"]),
    ("csv (trace)", ["bench", "--trace", "{data}/trace-negative-time.csv"]),
    ("csv (trace)", ["bench", "--trace", "{data}/trace-bad-horizon.csv"]),
    ("csv (trace)", ["bench", "--trace", "{data}/trace-no-columns.csv"]),
    # bench options
    ("bench option", ["bench", "--requests", "0"]),
    ("bench option", ["bench", "--requests", "-5"]),
    ("bench option", ["bench", "--requests", "99999999999"]),
    ("bench option", ["bench", "--rate", "-1"]),
    ("bench option", ["bench", "--rate", "0"]),
    ("bench option", ["bench", "--rate", "nan"]),
    ("bench option", ["bench", "--zipf", "-1"]),
    ("bench option", ["bench", "--zipf", "inf"]),
    ("bench option", ["bench", "--seed", "-3"]),
    ("bench option", ["bench", "--start", "yesterday-ish"]),
    ("bench option", ["bench", "--trace", "{data}/trace-bad-pair.csv", "--rate", "5"]),
    ("bench option", ["bench", "--target", "ftp://127.0.0.1/predict"]),
    ("bench option", ["bench", "--target", "http://127.0.0.1:1/predict", "--concurrency", "0"]),
    ("bench option", ["bench", "--concurrency", "4"]),
    # ports
    ("port", ["serve", "--port", "0"]),
    ("port", ["serve", "--port", "70000"]),
    ("port", ["serve", "--port", "-1"]),
    ("port", ["serve", "--port", "http"]),
    # other usage
    ("usage", ["train", "--days", "0"]),
    ("usage", ["train", "--seed", "-1"]),
    ("usage", ["predict"]),
    ("usage", ["nosuchcommand"]),
    ("path", ["report", "{data}/no-such-folder"]),
    ("usage", ["report", "{data}", "--format", "nope"]),
    ("usage", ["report", "{data}", "--error-budget", "abc"]),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad-data")
    for name, content in DATA.items():
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return d


def test_every_command_has_bad_input_cases() -> None:
    """Against the CLI itself, not this table: a command added without a bad-input case here,
    or one whose cases were dropped, turns this red."""
    import predcache.cli  # noqa: F401 - registers the commands
    from predcache.cli.app import LAZY_COMMANDS

    covered = {args[0] for _, args in CASES}
    assert set(LAZY_COMMANDS) - covered == set()
    assert {kind for kind, _ in CASES} >= {"pair", "duration", "backend", "port", "bench option"}


@pytest.mark.parametrize(("kind", "args"), CASES, ids=[f"{k}:{' '.join(a)[:60]}" for k, a in CASES])
def test_bad_cli_input(
    kind: str, args: list[str], data_dir: Path, models_dir: Path, tmp_path: Path
) -> None:
    cache_dir, results = tmp_path / "cache", tmp_path / "results"
    argv = [a.replace("{data}", str(data_dir)) for a in args]
    if argv[0] == "bench":
        argv += ["--out", str(results)]
    env = dict(os.environ, PREDCACHE_CACHE_DIR=str(cache_dir), PREDCACHE_MODELS_DIR=str(models_dir))
    before = snapshot(cache_dir, models_dir, results)
    out = cli(*argv, env=env, timeout=60)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("predcache: error:"), lines[0]
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    assert "hunter2secret" not in out.stderr + out.stdout
    assert len(lines[0]) < 600, "an error line must stay readable"
    assert snapshot(cache_dir, models_dir, results) == before
    figures.add("bad CLI input (exit 2, one line, no state change)", **{kind: 1})
