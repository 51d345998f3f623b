"""The toy price model: ridge regression on recent log returns, saved as versioned JSON.

The model exists so the cache has something real to cache and the bench has a real accuracy
cost to measure: features are the last ``k`` one-step log returns ending at ``as_of`` (most
recent first) plus an intercept; the target is ``log(P(as_of + h) / P(as_of))``; one closed-form
ridge fit per horizon. Pure numpy, so training a pair takes milliseconds.

Artifacts are JSON (never pickle: loading one must not execute code). ``version`` is the first
12 hex digits of SHA-256 over the canonical JSON of every other field, so identical training
gives the identical version, any change gives a new one, and cache keys built on the version
invalidate themselves on retraining. Nothing wall-clock is stored. Coefficients and metrics are
rounded before hashing so last-bit BLAS differences between machines rarely change the version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from predcache import config
from predcache.durations import format_duration
from predcache.errors import BadDataError, BadHorizonError, BadInputError, ModelError
from predcache.market import MINUTES_PER_DAY, Candles, Market
from predcache.pairs import parse_pair

SCHEMA = "predcache.model/1"
MODEL_VERSION_LEN = 12
DEFAULT_HORIZONS_S = config.DEFAULT_HORIZONS_S
DEFAULT_K = 16
#: Relative ridge: the penalty is this times the mean feature energy, so it is scale-free;
#: 1e-3 only guards against ill-conditioning (flat prices), it barely shrinks real fits.
DEFAULT_RIDGE = 1e-3
TRAIN_FRACTION = 0.8
_RETRAIN = "retrain with `predcache train`"


@dataclass(frozen=True)
class ModelArtifact:
    """A trained model. Build with :func:`make_artifact` (it computes ``version``)."""

    schema: str
    pair: str
    k: int
    horizons_s: list[int]
    #: str(horizon_s) -> [intercept, w_lag1 (latest return), ..., w_lagk]
    coefficients: dict[str, list[float]]
    features: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    version: str

    @property
    def step_s(self) -> int:
        return int(self.features["step_s"])


def compute_version(content: Mapping[str, Any]) -> str:
    """SHA-256 prefix of the canonical JSON of every field except ``version``."""
    body = {key: value for key, value in content.items() if key != "version"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:MODEL_VERSION_LEN]


def make_artifact(
    pair: str,
    k: int,
    coefficients: dict[str, list[float]],
    metrics: dict[str, dict[str, float]],
    training: dict[str, Any],
    *,
    step_s: int = 60,
) -> ModelArtifact:
    """Assemble an artifact and stamp its content version."""
    content: dict[str, Any] = {
        "schema": SCHEMA,
        "pair": pair,
        "k": k,
        "horizons_s": sorted(int(h) for h in coefficients),
        "coefficients": coefficients,
        "features": {"kind": "log_returns", "k": k, "step_s": step_s},
        "training": training,
        "metrics": metrics,
    }
    return ModelArtifact(**content, version=compute_version(content))


# --------------------------------------------------------------------------- fitting


def _design(log_p: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Rows ``[1, r_i, r_{i-1}, ..., r_{i-k+1}]`` with ``r_j = log_p[j] - log_p[j-1]``."""
    pos = idx[:, None] - np.arange(k)[None, :]
    return np.hstack([np.ones((len(idx), 1)), log_p[pos] - log_p[pos - 1]])


def _ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    gram = x.T @ x
    scale = float(np.mean(np.diag(gram)[1:])) or 1.0
    penalty = np.eye(gram.shape[0]) * ridge * scale
    penalty[0, 0] = 0.0  # never shrink the intercept
    try:
        return np.asarray(np.linalg.solve(gram + penalty, x.T @ y), dtype=np.float64)
    except np.linalg.LinAlgError as exc:
        raise BadDataError(f"cannot fit the model: {exc}") from None


def _sig(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def _horizon_steps(horizons_s: Iterable[int], step_s: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for h in horizons_s:
        if isinstance(h, bool) or int(h) != h or h <= 0 or int(h) % step_s:
            raise BadHorizonError(
                f"bad horizon {format_duration(float(h))}: must be a positive multiple of the "
                f"data's step ({format_duration(step_s)})"
            )
        out.append((int(h), int(h) // step_s))
    if not out:
        raise BadHorizonError("no horizons given")
    return sorted(set(out))


def fit_prices(
    prices: np.ndarray,
    horizons_s: Iterable[int],
    *,
    k: int = DEFAULT_K,
    ridge: float = DEFAULT_RIDGE,
    step_s: int = 60,
    gaps: np.ndarray | None = None,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Fit one ridge vector per horizon on an evenly spaced price series.

    Metrics come from a chronological split: fit on the first 80% of rows (minus the last ``h``
    rows, whose targets would overlap the holdout), score on the last 20% against the naive
    "price stays the same" forecast, MAE in basis points of log return. The stored
    coefficients are then refit on all rows: the holdout measures the procedure, and the
    newest data is the most relevant to serve from. ``gaps`` (bool per price: a missing step
    just before it) drops rows whose features or target span a gap.
    """
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or not np.all(p > 0):
        raise BadDataError("prices must be a 1-D series of finite, positive numbers")
    if k < 1:
        raise BadInputError(f"bad k {k}: need at least one lagged return")
    log_p = np.log(p)
    bad_before = None
    if gaps is not None:
        if np.shape(gaps) != p.shape:
            raise BadInputError("gaps must have one flag per price")
        bad_before = np.concatenate(([0], np.cumsum(np.asarray(gaps, dtype=np.int64))))
    coefficients: dict[str, list[float]] = {}
    metrics: dict[str, dict[str, float]] = {}
    for h_s, steps in _horizon_steps(horizons_s, step_s):
        idx = np.arange(k, len(p) - steps)
        if bad_before is not None and len(idx):
            # a gap at positions idx-k+1 .. idx+steps (price j has gaps[j]) spoils the row
            idx = idx[bad_before[idx + steps + 1] == bad_before[idx - k + 1]]
        need = 20 * (k + 1)
        if len(idx) < need:
            raise BadDataError(
                f"too few rows for horizon {format_duration(h_s)}: {len(idx)} usable, need "
                f"{need}; use more data or shorter horizons"
            )
        x, y = _design(log_p, idx, k), log_p[idx + steps] - log_p[idx]
        cut = int(len(idx) * TRAIN_FRACTION)
        train = idx[:cut] + steps <= idx[cut]  # purge rows whose target reaches the holdout
        w_train = _ridge(x[:cut][train[:cut]], y[:cut][train[:cut]], ridge)
        mae_model = float(np.mean(np.abs(x[cut:] @ w_train - y[cut:]))) * 1e4
        mae_naive = float(np.mean(np.abs(y[cut:]))) * 1e4
        gain = 100.0 * (mae_naive - mae_model) / mae_naive if mae_naive > 0 else 0.0
        coefficients[str(h_s)] = [_sig(v, 12) for v in _ridge(x, y, ridge)]
        metrics[str(h_s)] = {
            "rows": int(np.count_nonzero(train[:cut])),
            "holdout_rows": len(idx) - cut,
            "mae_model_bps": round(mae_model, 4),
            "mae_naive_bps": round(mae_naive, 4),
            "improvement_pct": round(gain, 3),
        }
    return coefficients, metrics


def train_synthetic(
    pair: str,
    *,
    horizons_s: Iterable[int] = DEFAULT_HORIZONS_S,
    days: int = 7,
    end_minute: int | None = None,
    market_seed: int = 0,
    k: int = DEFAULT_K,
    progress: Callable[[float], None] | None = None,
) -> ModelArtifact:
    """Train on ``days`` of the synthetic market ending at ``end_minute`` (default: the start
    of the current UTC day, so every run on the same day trains the same model)."""
    pair = parse_pair(pair)
    if days < 1:
        raise BadInputError(f"bad days {days}: must be at least 1")
    if end_minute is None:
        end_minute = int(time.time() // 86400) * MINUTES_PER_DAY
    start = end_minute - days * MINUTES_PER_DAY
    market = Market(market_seed)
    chunks = []
    for d in range(days):  # a day at a time, only to report progress
        chunks.append(market.prices(pair, start + d * MINUTES_PER_DAY, MINUTES_PER_DAY))
        if progress is not None:
            progress(0.9 * (d + 1) / days)
    chunks.append(market.prices(pair, end_minute, 1))
    coefficients, metrics = fit_prices(np.concatenate(chunks), horizons_s, k=k)
    training = {
        "source": "synthetic",
        "market_seed": market_seed,
        "start": start * 60,
        "end": end_minute * 60,
        "rows": days * MINUTES_PER_DAY + 1,
    }
    art = make_artifact(pair, k, coefficients, metrics, training)
    if progress is not None:
        progress(1.0)
    return art


def train_csv(
    pair: str,
    candles: Candles,
    *,
    horizons_s: Iterable[int] = DEFAULT_HORIZONS_S,
    k: int = DEFAULT_K,
) -> ModelArtifact:
    """Train on the close prices of real candles. The step is the median candle spacing; rows
    whose window or target spans a missing candle are skipped rather than mis-timed."""
    pair = parse_pair(pair)
    ts = candles.timestamp
    if len(ts) < 2:
        raise BadDataError(f"{candles.path}: need at least two candles")
    spacing = np.diff(ts)
    step = int(np.median(spacing))
    gaps = np.concatenate(([False], spacing != step))
    coefficients, metrics = fit_prices(candles.close, horizons_s, k=k, step_s=step, gaps=gaps)
    training = {
        "source": "csv",
        "market_seed": None,
        "start": int(ts[0]),
        "end": int(ts[-1]),
        "rows": len(ts),
        "csv": Path(candles.path).name,
    }
    return make_artifact(pair, k, coefficients, metrics, training, step_s=step)


# --------------------------------------------------------------------------- predicting


def _weights(art: ModelArtifact, horizon_s: float) -> np.ndarray:
    key = str(int(horizon_s)) if float(horizon_s).is_integer() else ""
    if key not in art.coefficients:
        trained = ", ".join(format_duration(h) for h in art.horizons_s)
        raise BadHorizonError(
            f"horizon {format_duration(float(horizon_s))} is not trained: model "
            f"{art.version} for {art.pair} has {trained}"
        )
    return np.asarray(art.coefficients[key], dtype=np.float64)


def predict_series(
    art: ModelArtifact, prices: np.ndarray, idx: np.ndarray, horizon_s: float
) -> np.ndarray:
    """Predicted prices ``horizon_s`` after each position ``idx`` (each ``>= k``) of one series
    spaced ``art.step_s`` apart; one matrix product for all positions (bench counterfactuals)."""
    w = _weights(art, horizon_s)
    p = np.asarray(prices, dtype=np.float64)
    at = np.asarray(idx, dtype=np.int64)
    if p.ndim != 1 or at.ndim != 1:
        raise BadInputError("prices and idx must be 1-D")
    if not len(at):
        return np.empty(0, dtype=np.float64)
    if at.min() < art.k or at.max() >= len(p):
        raise BadInputError(f"positions must be in [{art.k}, {len(p) - 1}] (k prior returns)")
    base = int(at.min()) - art.k
    used = p[base : int(at.max()) + 1]  # only the prices the features read
    if not (np.all(np.isfinite(used)) and np.all(used > 0)):
        raise BadInputError("prices must be finite and positive")
    predicted: np.ndarray = p[at] * np.exp(_design(np.log(used), at - base, art.k) @ w)
    return predicted


def predict_from_prices(art: ModelArtifact, window: np.ndarray, horizon_s: float) -> float:
    """Predicted price ``horizon_s`` after the last of ``window`` (its last ``k + 1`` prices)."""
    w = np.asarray(window, dtype=np.float64)
    if w.ndim != 1 or len(w) < art.k + 1:
        raise BadInputError(f"need the last {art.k + 1} prices, got {w.size}")
    tail = w[-(art.k + 1) :]
    return float(predict_series(art, tail, np.array([art.k]), horizon_s)[0])


# --------------------------------------------------------------------------- persistence


def artifact_to_dict(art: ModelArtifact) -> dict[str, Any]:
    """A deep copy as plain JSON types (what :func:`save_artifact` writes)."""
    return asdict(art)


def _check(ok: bool, problem: str) -> None:
    if not ok:
        raise ValueError(problem)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_float(v: object) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def _validate(d: object) -> ModelArtifact:
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    _check(d.get("schema") == SCHEMA, f"schema is {d.get('schema')!r}, expected {SCHEMA!r}")
    expected = {f.name for f in fields(ModelArtifact)}
    _check(set(d) == expected, f"fields {sorted(set(d) ^ expected)} missing or unexpected")
    pair, k, horizons = d["pair"], d["k"], d["horizons_s"]
    _check(isinstance(pair, str) and parse_pair(pair) == pair, f"bad pair {pair!r}")
    _check(_is_int(k) and 1 <= k <= 1024, f"bad k {k!r}")
    _check(isinstance(horizons, list) and len(horizons) > 0, "horizons_s is not a list")
    _check(all(_is_int(h) and h > 0 for h in horizons), "horizons_s holds a non-positive int")
    _check(len(set(horizons)) == len(horizons), "horizons_s has duplicates")
    features = d["features"]
    _check(isinstance(features, dict), "features is not an object")
    step = features.get("step_s")
    _check(_is_int(step) and step > 0, "features.step_s is not a positive int")
    _check(features == {"kind": "log_returns", "k": k, "step_s": step}, "unknown features")
    coefs = d["coefficients"]
    _check(isinstance(coefs, dict), "coefficients is not an object")
    _check(sorted(coefs) == sorted(str(h) for h in horizons), "coefficients != horizons_s")
    for h, vec in coefs.items():
        _check(isinstance(vec, list) and len(vec) == k + 1, f"coefficients[{h}]: need {k + 1}")
        _check(all(_is_float(v) for v in vec), f"coefficients[{h}] holds a non-float")
    _check(isinstance(d["training"], dict) and isinstance(d["metrics"], dict), "bad training")
    version = d["version"]
    _check(
        isinstance(version, str) and re.fullmatch(r"[0-9a-f]{12}", version) is not None,
        "bad version",
    )
    actual = compute_version(d)
    _check(actual == version, f"content does not match its version ({version} != {actual})")
    return ModelArtifact(**d)


def artifact_from_dict(d: object, *, source: str = "model artifact") -> ModelArtifact:
    """Validate a decoded artifact; any problem is a one-line :class:`ModelError`."""
    try:
        return _validate(d)
    except (ValueError, TypeError, RecursionError, BadInputError) as exc:
        raise ModelError(f"{source}: {exc}; {_RETRAIN}") from None


def load_artifact(path: str | Path) -> ModelArtifact:
    """Read and validate an artifact written by :func:`save_artifact`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"no model artifact at {path}; train one with `predcache train`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read model artifact {path} ({exc}); {_RETRAIN}") from None
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"model artifact {path} is not valid JSON ({exc}); {_RETRAIN}") from None
    return artifact_from_dict(d, source=f"model artifact {path}")


def save_artifact(art: ModelArtifact, path: str | Path) -> Path:
    """Write the artifact atomically: a reader sees the old file or the new one, never half."""
    d = artifact_to_dict(art)
    if compute_version(d) != art.version:
        raise ModelError(f"refusing to save model {art.version}: content does not match version")
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(d, fh, indent=2, allow_nan=False)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ModelError(f"cannot write model artifact {target} ({exc})") from None
    with contextlib.suppress(OSError):  # make the rename durable; best effort (not on Windows)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target
