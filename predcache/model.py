"""The toy price model: ridge regression on recent log returns (fitting and prediction).

The model exists so the cache has something real to cache and the bench has a real accuracy
cost to measure: features are the last ``k`` one-step log returns ending at ``as_of`` (most
recent first) plus an intercept; the target is ``log(P(as_of + h) / P(as_of))``; one closed-form
ridge fit per horizon. Pure numpy, so training a pair takes milliseconds. Coefficients and
metrics are rounded so last-bit BLAS differences between machines rarely change the version.

The artifact format lives in :mod:`predcache.artifact`; where the training data comes from
(synthetic market or candles) and where artifacts are saved, in :mod:`predcache.training`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from predcache.artifact import ModelArtifact
from predcache.durations import format_duration
from predcache.errors import BadDataError, BadHorizonError, BadInputError

DEFAULT_K = 16
#: Relative ridge: the penalty is this times the mean feature energy, so it is scale-free;
#: 1e-3 only guards against ill-conditioning (flat prices), it barely shrinks real fits.
DEFAULT_RIDGE = 1e-3
TRAIN_FRACTION = 0.8


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
