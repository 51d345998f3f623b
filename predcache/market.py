"""A deterministic synthetic price feed per pair, and a loader for real candles in CSV.

Why synthetic: experiments must be reproducible, so "the price of ETH/EUR at minute m" has to be
the same number in every process, on every machine, today and next year, with no data files and
no network. Definitions: the minute index is ``m = epoch_seconds // 60`` and ``P(m)`` is the
price at the instant ``m * 60`` (the price at minute boundary ``m``).

Construction (log price, per UTC day ``d`` of 1440 minutes, no replay from an epoch):

* a *fair value*: day anchors ``a_d = log(base) + sigma_day * z_d`` drawn i.i.d. per day (so no
  history is needed and prices stay near ``base_price`` forever), joined inside the day by a
  Gaussian random walk pinned with a Brownian-bridge linear term so it ends exactly at
  ``a_{d+1}`` (continuous across midnight);
* plus a *transient*: an Ornstein-Uhlenbeck deviation with a time scale of 2 minutes (think
  overreaction / order-flow pressure that fades). Its state at midnight comes from a burn-in over
  the previous day's last innovations, regenerated from that day's seed, so it is continuous too.

The transient is the weak predictable structure: a linear model on the last 16 one-minute log
returns beats "the price stays the same" by a few percent MAE at 1m-15m horizons. The walk and
transient are scaled so the one-minute log returns have std ``PairInfo.vol_per_minute``.

Every day block is drawn from ``numpy.random.Generator(PCG64(seed))`` where the seed is a
SHA-256 of ``f"{seed}:{pair}:{day}"`` (never Python's ``hash()`` or global random state), and
prices are rounded to ~10 significant digits so last-ulp differences of ``exp`` between CPUs do
not show. Streams are stable for a given numpy release series (NumPy's policy for ``Generator``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predcache.errors import BadDataError, BadInputError
from predcache.pairs import CATALOGUE, PairInfo, parse_pair
from predcache.timestamps import parse_timestamp

MINUTES_PER_DAY = 1440
#: OU time scale (minutes) and variance in units of the walk's one-minute variance.
OU_TAU_MIN = 2.0
OU_VAR_RATIO = 8.0
#: Minutes of the previous day replayed to start the OU state (exp(-240/2) is 0 in float64).
BURN_IN = 240
#: Day anchors are clipped at this many sigmas: a sane price range forever.
ANCHOR_CLIP = 4.0
CACHE_BLOCKS = 64

_PHI = math.exp(-1.0 / OU_TAU_MIN)


@dataclass(frozen=True)
class _Block:
    """One generated UTC day: prices and the candle noise for its 1440 minutes."""

    prices: np.ndarray
    high_noise: np.ndarray
    low_noise: np.ndarray
    volume_noise: np.ndarray


@dataclass(frozen=True)
class _Draws:
    anchor_z: float
    walk: np.ndarray  # standard normals for steps 1..1440 of the day
    ou: np.ndarray  # standard normals for steps 1..1440 of the day


def _rng(seed: int, pair: str, day: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{pair}:{day}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "big")))


def _anchor_z(rng: np.random.Generator) -> float:
    """A day's first draw: its anchor (so a neighbour can read it without the rest)."""
    return float(np.clip(rng.standard_normal(), -ANCHOR_CLIP, ANCHOR_CLIP))


def _draws(rng: np.random.Generator) -> _Draws:
    """The day's price innovations, always drawn first and in this order (prefix-stable)."""
    z = _anchor_z(rng)
    return _Draws(z, rng.standard_normal(MINUTES_PER_DAY), rng.standard_normal(MINUTES_PER_DAY))


def _ou(noise: np.ndarray, start: float) -> np.ndarray:
    """x_i = phi * x_{i-1} + noise_i. A plain loop over Python floats: exact IEEE arithmetic,
    identical on every machine, and fast enough for a day of minutes (a BLAS scan would not be
    bit-identical everywhere)."""
    out = [0.0] * len(noise)
    x = start
    for i, v in enumerate(noise.tolist()):
        x = _PHI * x + v
        out[i] = x
    return np.array(out, dtype=np.float64)


def _scales(info: PairInfo) -> tuple[float, float, float]:
    """(walk step std, OU innovation std, day-anchor std) so one-minute returns have std
    ``vol_per_minute``: var(r) = s_w^2 + 2 var(x) (1 - phi), var(x) = OU_VAR_RATIO * s_w^2."""
    s_w = info.vol_per_minute / math.sqrt(1.0 + 2.0 * OU_VAR_RATIO * (1.0 - _PHI))
    s_ou = math.sqrt(OU_VAR_RATIO * (1.0 - _PHI**2)) * s_w
    # Var(a_{d+1} - a_d) = 2 sigma_day^2 equals the walk's daily variance: the bridge is mild.
    return s_w, s_ou, s_w * math.sqrt(MINUTES_PER_DAY / 2.0)


def _decimals(base_price: float) -> int:
    return max(0, 9 - math.floor(math.log10(base_price)))


class Market:
    """The synthetic market for one ``seed``; day blocks are cached (LRU of 64 per instance)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self._blocks: OrderedDict[tuple[str, int], _Block] = OrderedDict()
        self._lock = threading.Lock()

    def prices(self, pair: str, start_minute: int, n: int) -> np.ndarray:
        """``P(start_minute .. start_minute + n - 1)`` as a new float64 array of length ``n``."""
        return self._gather(parse_pair(pair), start_minute, n, "prices")

    def price_at(self, pair: str, t: float) -> float:
        """The price at the last minute boundary at or before epoch time ``t``."""
        if not math.isfinite(t):
            raise BadInputError(f"bad market time {t!r}: must be a finite epoch time")
        m = int(t // 60)
        block = self._block(parse_pair(pair), m // MINUTES_PER_DAY)
        return float(block.prices[m % MINUTES_PER_DAY])

    def candles(self, pair: str, start_minute: int, n: int) -> dict[str, np.ndarray]:
        """One-minute candles for minutes ``start_minute ..``: open = P(m), close = P(m+1),
        high/low a little outside them, volume higher when the minute moved more."""
        pair = parse_pair(pair)
        info = CATALOGUE[pair]
        p = self._gather(pair, start_minute, n + 1, "prices")
        o, c = p[:-1], p[1:]
        step = info.vol_per_minute
        dec = _decimals(info.base_price)
        hi_n = self._gather(pair, start_minute, n, "high_noise")
        lo_n = self._gather(pair, start_minute, n, "low_noise")
        top, bottom = np.maximum(o, c), np.minimum(o, c)
        high = np.maximum(np.round(top * np.exp(0.3 * step * hi_n), dec), top)
        low = np.minimum(np.round(bottom * np.exp(-0.3 * step * lo_n), dec), bottom)
        moved = np.abs(np.log(c / o)) / step
        base_volume = 1e5 / info.base_price
        volume = base_volume * self._gather(pair, start_minute, n, "volume_noise") * (1.0 + moved)
        return {
            "timestamp": (np.arange(n, dtype=np.int64) + int(start_minute)) * 60,
            "open": o,
            "high": high,
            "low": low,
            "close": c,
            "volume": np.round(volume, 6),
        }

    def _gather(self, pair: str, start_minute: int, n: int, field: str) -> np.ndarray:
        if n < 0:
            raise BadInputError(f"bad number of minutes {n}: must be >= 0")
        out = np.empty(n, dtype=np.float64)
        m, filled = int(start_minute), 0
        while filled < n:
            day, offset = divmod(m, MINUTES_PER_DAY)
            take = min(n - filled, MINUTES_PER_DAY - offset)
            source: np.ndarray = getattr(self._block(pair, day), field)
            out[filled : filled + take] = source[offset : offset + take]
            filled += take
            m += take
        return out

    def _block(self, pair: str, day: int) -> _Block:
        key = (pair, day)
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
                return block
        block = self._generate(pair, day)  # outside the lock: a duplicate is harmless
        with self._lock:
            self._blocks[key] = block
            while len(self._blocks) > CACHE_BLOCKS:
                self._blocks.popitem(last=False)
        return block

    def _generate(self, pair: str, day: int) -> _Block:
        """Draw day ``day`` from its own seed, the previous day's (OU burn-in) and the next
        day's (its anchor only): a few thousand normals, well under a millisecond each."""
        info = CATALOGUE[pair]
        s_w, s_ou, s_day = _scales(info)
        rng = _rng(self.seed, pair, day)
        today = _draws(rng)
        before = _draws(_rng(self.seed, pair, day - 1))
        next_z = _anchor_z(_rng(self.seed, pair, day + 1))
        log_base = math.log(info.base_price)
        a0, a1 = log_base + s_day * today.anchor_z, log_base + s_day * next_z

        walk = np.cumsum(s_w * today.walk)  # W_1 .. W_1440
        steps = np.arange(1, MINUTES_PER_DAY + 1, dtype=np.float64) / MINUTES_PER_DAY
        bridge = walk - steps * (walk[-1] - (a1 - a0))  # ends exactly at a1 - a0
        x0 = float(_ou(s_ou * before.ou[-BURN_IN:], 0.0)[-1])
        x = _ou(s_ou * today.ou[:-1], x0)  # x_1 .. x_1439; the last draw feeds tomorrow's x_0
        log_p = a0 + np.concatenate(([0.0], bridge[:-1])) + np.concatenate(([x0], x))
        prices = np.round(np.exp(log_p), _decimals(info.base_price))

        # Candle noise: drawn after the price draws, so prices never depend on it.
        high_noise = np.abs(rng.standard_normal(MINUTES_PER_DAY))
        low_noise = np.abs(rng.standard_normal(MINUTES_PER_DAY))
        volume_noise = rng.lognormal(0.0, 0.5, MINUTES_PER_DAY)
        for arr in (prices, high_noise, low_noise, volume_noise):
            arr.flags.writeable = False
        return _Block(prices, high_noise, low_noise, volume_noise)


# --------------------------------------------------------------------------- CSV candles

_REQUIRED = ("timestamp", "open", "high", "low", "close")


@dataclass(frozen=True)
class Candles:
    """Validated candles from a CSV: strictly increasing ``timestamp`` (int64 epoch seconds)."""

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None
    path: str


def _parse_timestamp(text: str) -> int:
    """Candle timestamps are whole epoch seconds; raises ValueError with the reason."""
    value = parse_timestamp(text)
    if value != math.floor(value):
        raise ValueError(f"timestamp is not a whole number of seconds ({text.strip()[:40]!r})")
    return int(value)


def _parse_number(name: str, text: str, *, allow_zero: bool) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{name} is not a number ({text!r})") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} is not a finite number ({text!r})")
    if value < 0 or (value == 0 and not allow_zero):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} is not {kind} number ({text!r})")
    return value


def load_candles_csv(path: str | Path, *, min_rows: int = 200) -> Candles:
    """Load and validate a candles CSV; any problem is one :class:`BadDataError` line naming the
    file and the line of the first bad row (so the user can open the file right there)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BadDataError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BadDataError(f"{name} line {line}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _read_candles(reader, name, min_rows)
    except ValueError as exc:
        raise BadDataError(f"{name} line {max(reader.line_num, 1)}: {exc}") from None
    except csv.Error as exc:
        raise BadDataError(f"{name} line {reader.line_num}: malformed CSV ({exc})") from None


def _read_candles(reader: Iterator[list[str]], name: str, min_rows: int) -> Candles:
    """The row loop of :func:`load_candles_csv`; a ValueError means "this row is bad"."""
    header = next(reader, None)
    if header is None:
        raise ValueError("the file is empty; expected a header timestamp,open,high,low,close")
    fields = [h.strip().lower() for h in header]
    missing = [c for c in _REQUIRED if c not in fields]
    if missing or len(set(fields)) != len(fields):
        what = f"missing column {', '.join(missing)}" if missing else "duplicate columns"
        raise ValueError(f"{what}; the header must name timestamp,open,high,low,close[,volume]")
    index = {f: i for i, f in enumerate(fields)}
    has_volume = "volume" in index
    cols: dict[str, list[float]] = {c: [] for c in (*_REQUIRED[1:], "volume")}
    stamps: list[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(fields):
            raise ValueError(f"expected {len(fields)} fields, got {len(row)}")
        ts = _parse_timestamp(row[index["timestamp"]])
        if stamps and ts == stamps[-1]:
            raise ValueError(f"duplicate timestamp ({row[index['timestamp']].strip()!r})")
        if stamps and ts < stamps[-1]:
            raise ValueError("timestamp is earlier than the previous row's; sort rows by time")
        o, h, lo, c = (
            _parse_number(k, row[index[k]], allow_zero=False)
            for k in ("open", "high", "low", "close")
        )
        if not lo <= min(o, c) <= max(o, c) <= h:
            raise ValueError(
                "inconsistent candle: need low <= open, close <= high "
                f"(open={o:g} high={h:g} low={lo:g} close={c:g})"
            )
        if has_volume:
            cols["volume"].append(_parse_number("volume", row[index["volume"]], allow_zero=True))
        stamps.append(ts)
        for k, v in (("open", o), ("high", h), ("low", lo), ("close", c)):
            cols[k].append(v)
    if len(stamps) < min_rows:
        raise ValueError(f"only {len(stamps)} data rows; need at least {min_rows}")
    return Candles(
        timestamp=np.array(stamps, dtype=np.int64),
        open=np.array(cols["open"]),
        high=np.array(cols["high"]),
        low=np.array(cols["low"]),
        close=np.array(cols["close"]),
        volume=np.array(cols["volume"]) if has_volume else None,
        path=name,
    )


# -- The helper for your own model (``--model SPEC``) ---------------------------------------------
#: the market a plugged-in model reads: the default synthetic market, the one the toy model and
#: the bench's realised prices use, so a plugged model is judged against the same feed it reads
_DEFAULT = Market(0)


def history(pair: str, as_of: float, minutes: int = 60) -> list[float]:
    """The last ``minutes`` one-minute prices of ``pair`` up to market time ``as_of``, oldest first.

    For a model passed with ``--model`` (``function(pair, horizon_s, as_of) -> float``): the
    last value is the price at the minute boundary at or before ``as_of``; nothing after
    ``as_of`` is visible, so a model cannot peek at the price it is asked to predict.
    """
    if not math.isfinite(as_of):
        raise BadInputError(f"bad market time {as_of!r}: must be a finite epoch time")
    if minutes < 1:
        raise BadInputError(f"bad number of minutes {minutes}: must be >= 1")
    last = int(as_of // 60)
    return [float(p) for p in _DEFAULT.prices(pair, last - minutes + 1, minutes)]


def price(pair: str, as_of: float) -> float:
    """The price of ``pair`` at the minute boundary at or before market time ``as_of``."""
    return _DEFAULT.price_at(pair, as_of)
