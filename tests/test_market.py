"""The synthetic market is a pure function of (seed, pair, minute); bad CSV names its line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from predcache.errors import BadDataError, BadInputError, BadPairError
from predcache.market import MINUTES_PER_DAY, Market, load_candles_csv
from predcache.pairs import CATALOGUE, DEFAULT_PAIRS

ROOT = Path(__file__).resolve().parents[1]
#: 2024-06-01 00:00 UTC as a minute index: a day boundary.
MIDNIGHT = 1_717_200_000 // 60
SAMPLE = (("ETH/EUR", MIDNIGHT - 3, 7), ("BTC/USD", 17, 5), ("SOL/USD", -MINUTES_PER_DAY - 2, 4))


def _prices_in_subprocess(hash_seed: str) -> list[list[float]]:
    code = (
        "import json, sys\n"
        "from predcache.market import Market\n"
        "m = Market(0)\n"
        f"print(json.dumps([m.prices(p, s, n).tolist() for p, s, n in {SAMPLE!r}]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: list[list[float]] = json.loads(out.stdout)
    return result


def test_identical_across_processes() -> None:
    here = [Market(0).prices(p, s, n).tolist() for p, s, n in SAMPLE]
    # different PYTHONHASHSEEDs: nothing may depend on Python's hash()
    assert _prices_in_subprocess("1") == here
    assert _prices_in_subprocess("4242") == here


def test_independent_of_cache_and_access_order() -> None:
    forward = Market(7).prices("ETH/EUR", MIDNIGHT - 100, 300)
    backward = Market(7)
    tail = backward.prices("ETH/EUR", MIDNIGHT, 200)  # the later day first
    head = backward.prices("ETH/EUR", MIDNIGHT - 100, 100)
    np.testing.assert_array_equal(forward, np.concatenate([head, tail]))
    one_by_one = [Market(7).price_at("ETH/EUR", (MIDNIGHT - 100 + i) * 60 + 59.5) for i in (0, 150)]
    assert one_by_one == [forward[0], forward[150]]


@pytest.mark.parametrize("pair", sorted(CATALOGUE))
def test_positive_near_base_and_vol_as_catalogued(pair: str) -> None:
    info = CATALOGUE[pair]
    p = Market(0).prices(pair, MIDNIGHT - 30 * MINUTES_PER_DAY, 30 * MINUTES_PER_DAY)
    assert p.dtype == np.float64 and p.shape == (30 * MINUTES_PER_DAY,)
    assert np.all(p > 0)
    assert 0.7 * info.base_price < p.min() and p.max() < 1.4 * info.base_price
    r = np.diff(np.log(p))
    assert r.std() == pytest.approx(info.vol_per_minute, rel=0.1)


@pytest.mark.parametrize("pair", DEFAULT_PAIRS)
def test_continuous_across_midnight(pair: str) -> None:
    market = Market(3)
    vol = CATALOGUE[pair].vol_per_minute
    jumps = []
    for d in range(60):
        p = market.prices(pair, MIDNIGHT + d * MINUTES_PER_DAY - 1, 2)  # 23:59 -> 00:00
        jumps.append(np.log(p[1] / p[0]))
    # the midnight step is an ordinary one-minute return, not a re-anchoring jump
    assert np.abs(jumps).max() < 5 * vol
    assert 0.6 * vol < np.std(jumps) < 1.5 * vol


def test_seeds_and_pairs_differ() -> None:
    a = Market(0).prices("ETH/EUR", MIDNIGHT, 100)
    assert not np.array_equal(a, Market(1).prices("ETH/EUR", MIDNIGHT, 100))
    b = Market(0).prices("ETH/USD", MIDNIGHT, 100)  # same parameters, different pair
    assert not np.allclose(np.diff(np.log(a)), np.diff(np.log(b)))


def test_price_at_is_the_last_minute_boundary() -> None:
    m = Market(0)
    p = m.prices("BTC/USD", MIDNIGHT - 1, 2)
    assert m.price_at("BTC/USD", MIDNIGHT * 60 - 0.001) == p[0]
    assert m.price_at("BTC/USD", MIDNIGHT * 60) == p[1]
    assert m.price_at("btc/usd", MIDNIGHT * 60 + 59.999) == p[1]


def test_bad_arguments() -> None:
    m = Market(0)
    assert m.prices("ETH/EUR", 0, 0).shape == (0,)
    with pytest.raises(BadInputError):
        m.prices("ETH/EUR", 0, -1)
    with pytest.raises(BadInputError):
        m.price_at("ETH/EUR", float("nan"))
    with pytest.raises(BadPairError, match="known pairs"):
        m.prices("DOGE/XYZ", 0, 1)


def test_block_cache_is_bounded() -> None:
    m = Market(0)
    m.prices("SOL/USD", 0, 100 * MINUTES_PER_DAY)
    assert len(m._blocks) <= 64


@pytest.mark.parametrize("pair", DEFAULT_PAIRS)
def test_candles_are_consistent(pair: str) -> None:
    c = Market(0).candles(pair, MIDNIGHT - 500, 1000)
    assert c["timestamp"].dtype == np.int64
    np.testing.assert_array_equal(c["timestamp"], (np.arange(1000) + MIDNIGHT - 500) * 60)
    np.testing.assert_array_equal(c["open"], Market(0).prices(pair, MIDNIGHT - 500, 1000))
    np.testing.assert_array_equal(c["close"][:-1], c["open"][1:])
    assert np.all(c["high"] >= np.maximum(c["open"], c["close"]))
    assert np.all(c["low"] <= np.minimum(c["open"], c["close"]))
    assert np.all(c["low"] > 0) and np.all(c["volume"] > 0)


# --------------------------------------------------------------------------- CSV loader

HEADER = "timestamp,open,high,low,close,volume"


def _rows(n: int, start: int = 1_717_200_000) -> list[str]:
    return [f"{start + 60 * i},{100 + i},{101 + i},{99 + i},{100.5 + i},{10 + i}" for i in range(n)]


def _write(tmp_path: Path, lines: list[str], name: str = "candles.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loads_epoch_seconds(tmp_path: Path) -> None:
    c = load_candles_csv(_write(tmp_path, [HEADER, *_rows(250)]))
    assert c.timestamp.dtype == np.int64 and len(c.timestamp) == 250
    assert c.timestamp[0] == 1_717_200_000 and c.close[0] == 100.5
    assert c.volume is not None and c.volume[-1] == 259
    assert c.path.endswith("candles.csv")


@pytest.mark.parametrize(
    "stamp", ["2024-06-01T00:00:00Z", "2024-06-01T02:00:00+02:00", "2024-06-01 00:00:00"]
)
def test_loads_iso_timestamps_as_utc(tmp_path: Path, stamp: str) -> None:
    rows = [HEADER.replace(",volume", ""), f"{stamp},1,2,0.5,1.5", "2024-06-01T00:01:00Z,1,2,1,1"]
    c = load_candles_csv(_write(tmp_path, rows), min_rows=2)
    assert c.timestamp.tolist() == [1_717_200_000, 1_717_200_060]
    assert c.volume is None


def _replace(row: int, column: int, value: str) -> list[str]:
    """A valid file of 10 rows whose data row ``row`` (file line row + 2) has one bad cell."""
    rows = _rows(10)
    cells = rows[row].split(",")
    cells[column] = value
    rows[row] = ",".join(cells)
    return [HEADER, *rows]


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        ([], 1, "empty"),
        (["timestamp,open,high,low", *_rows(10)], 1, "missing column close"),
        ([HEADER, *_rows(3)], 4, "only 3 data rows; need at least 5"),
        (_replace(4, 4, "abc"), 6, "close is not a number ('abc')"),
        (_replace(6, 4, "-3"), 8, "close is not a positive number ('-3')"),
        (_replace(2, 1, "0"), 4, "open is not a positive number"),
        (_replace(3, 2, "nan"), 5, "high is not a finite number"),
        (_replace(3, 3, "inf"), 5, "low is not a finite number"),
        (_replace(5, 5, "-1"), 7, "volume is not a non-negative number"),
        (_replace(7, 0, "1717200000"), 9, "earlier than the previous row"),
        (_replace(7, 0, "1717200360"), 9, "duplicate timestamp"),
        (_replace(1, 0, "yesterday"), 3, "neither epoch seconds nor ISO 8601"),
        (_replace(1, 0, "1717200060000"), 3, "milliseconds"),
        (_replace(2, 2, "50"), 4, "inconsistent candle"),
        ([HEADER, *_rows(4), "1717300000,1,2,0.5"], 6, "expected 6 fields, got 4"),
    ],
)
def test_rejects_bad_csv(tmp_path: Path, lines: list[str], line: int, fragment: str) -> None:
    path = tmp_path / "candles.csv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    with pytest.raises(BadDataError) as err:
        load_candles_csv(path, min_rows=5)
    message = str(err.value)
    assert message.startswith(f"{path} line {line}: "), message
    assert fragment in message
    assert "\n" not in message


def test_too_few_rows_by_default(tmp_path: Path) -> None:
    with pytest.raises(BadDataError, match=r"line 200: only 199 data rows; need at least 200"):
        load_candles_csv(_write(tmp_path, [HEADER, *_rows(199)]))


def test_rejects_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(BadDataError, match=r"missing\.csv: cannot read"):
        load_candles_csv(tmp_path / "missing.csv")
    with pytest.raises(BadDataError, match="cannot read"):
        load_candles_csv(tmp_path)  # a directory
    binary = tmp_path / "latin1.csv"
    binary.write_bytes(("\n".join([HEADER, *_rows(3)]) + "\n").encode() + b"\xff\xfe,1,2\n")
    with pytest.raises(BadDataError, match=r"latin1.csv line 5: not UTF-8"):
        load_candles_csv(binary, min_rows=1)
