"""The toy model: recovers known structure, beats naive, versions by content, loads defensively."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from predcache.artifact import (
    ModelArtifact,
    artifact_from_dict,
    artifact_to_dict,
    compute_version,
    load_artifact,
    save_artifact,
)
from predcache.errors import BadDataError, BadHorizonError, BadInputError, ModelError
from predcache.market import Market, load_candles_csv
from predcache.model import fit_prices, predict_from_prices, predict_series
from predcache.pairs import DEFAULT_PAIRS
from predcache.training import train_csv, train_synthetic

#: 2024-06-01 00:00 UTC as a minute index: a fixed training window, so results are stable.
END = 1_717_200_000 // 60


def _ar1_prices(phi: float, n: int = 20_000, seed: int = 5) -> np.ndarray:
    eps = np.random.default_rng(seed).standard_normal(n) * 1e-3
    r = np.empty(n)
    r[0] = eps[0]
    for t in range(1, n):
        r[t] = phi * r[t - 1] + eps[t]
    return np.asarray(100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)])))


@pytest.fixture(scope="module")
def trained() -> dict[str, ModelArtifact]:
    return {pair: train_synthetic(pair, end_minute=END) for pair in DEFAULT_PAIRS}


@pytest.fixture
def art(trained: dict[str, ModelArtifact]) -> ModelArtifact:
    return trained["ETH/EUR"]


def test_fit_recovers_a_known_ar_coefficient() -> None:
    coefficients, metrics = fit_prices(_ar1_prices(0.3), [60, 300], k=4)
    one = coefficients["60"]  # [intercept, lag1, lag2, lag3, lag4]
    assert one[1] == pytest.approx(0.3, abs=0.03)
    assert np.allclose(one[2:], 0.0, atol=0.03) and abs(one[0]) < 1e-4
    # five steps ahead an AR(1) carries phi (1 - phi^5) / (1 - phi) of the last return
    assert coefficients["300"][1] == pytest.approx(0.3 * (1 - 0.3**5) / 0.7, abs=0.05)
    assert metrics["60"]["improvement_pct"] > 0


def test_fit_on_pure_noise_finds_nothing() -> None:
    coefficients, metrics = fit_prices(_ar1_prices(0.0), [60], k=4)
    assert np.allclose(coefficients["60"][1:], 0.0, atol=0.03)
    assert abs(metrics["60"]["improvement_pct"]) < 1.0


@pytest.mark.parametrize(
    ("prices", "horizons", "error", "fragment"),
    [
        (np.full(100, 10.0), [60], BadDataError, "too few rows for horizon 1m"),
        (np.full(2000, 10.0), [90], BadHorizonError, "multiple"),
        (np.full(2000, 10.0), [], BadHorizonError, "no horizons"),
        (np.array([1.0, -1.0] * 1000), [60], BadDataError, "positive"),
        (np.array([1.0, np.nan] * 1000), [60], BadDataError, "finite"),
    ],
)
def test_fit_rejects(
    prices: np.ndarray, horizons: list[int], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        fit_prices(prices, horizons)


def test_flat_prices_fit_without_warnings() -> None:
    coefficients, metrics = fit_prices(np.full(2000, 10.0), [60])
    assert coefficients["60"] == [0.0] * 17
    assert metrics["60"]["improvement_pct"] == 0.0


def test_beats_naive_on_the_synthetic_market(trained: dict[str, ModelArtifact]) -> None:
    print("\npair     horizon   rows  model_bps  naive_bps  improvement_%")
    for pair, art in trained.items():
        for h, m in art.metrics.items():
            print(
                f"{pair}  {h:>6}s  {m['rows']:>5}  {m['mae_model_bps']:>9.3f}"
                f"  {m['mae_naive_bps']:>9.3f}  {m['improvement_pct']:>8.2f}"
            )
        for h in ("60", "300", "900"):
            assert art.metrics[h]["improvement_pct"] > 0, (pair, h)


def test_artifact_content(art: ModelArtifact) -> None:
    assert art.schema == "predcache.model/1" and art.pair == "ETH/EUR" and art.k == 16
    assert art.horizons_s == [60, 300, 900, 3600]
    assert all(len(v) == 17 for v in art.coefficients.values())
    assert art.features == {"kind": "log_returns", "k": 16, "step_s": 60}
    assert art.training == {
        "source": "synthetic",
        "market_seed": 0,
        "start": (END - 7 * 1440) * 60,
        "end": END * 60,
        "rows": 7 * 1440 + 1,
    }
    assert set(art.metrics["60"]) == {
        "rows",
        "holdout_rows",
        "mae_model_bps",
        "mae_naive_bps",
        "improvement_pct",
    }
    assert len(art.version) == 12 and int(art.version, 16) >= 0


def test_version_is_deterministic_and_tracks_content(art: ModelArtifact) -> None:
    again = train_synthetic("ETH/EUR", end_minute=END)
    assert again == art and again.version == art.version
    assert train_synthetic("ETH/EUR", end_minute=END + 1440).version != art.version
    assert train_synthetic("ETH/EUR", end_minute=END, market_seed=1).version != art.version
    d = artifact_to_dict(art)
    d["coefficients"]["60"][3] += 1e-9
    assert compute_version(d) != art.version


def test_progress_is_reported() -> None:
    seen: list[float] = []
    train_synthetic("SOL/USD", days=3, end_minute=END, horizons_s=(60,), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3


def test_predict_series_matches_predict_from_prices(art: ModelArtifact) -> None:
    prices = Market(0).prices("ETH/EUR", END, 3000)
    idx = np.array([16, 17, 500, 1234, 2999])
    for h in (60, 300, 900, 3600):
        series = predict_series(art, prices, idx, h)
        one_by_one = [predict_from_prices(art, prices[i - 16 : i + 1], h) for i in idx]
        np.testing.assert_allclose(series, one_by_one, rtol=1e-12)
        assert np.all(np.abs(series / prices[idx] - 1) < 0.02)
    # a longer window uses its last k + 1 prices
    assert predict_from_prices(art, prices[:501], 300) == pytest.approx(
        predict_series(art, prices, np.array([500]), 300)[0], rel=1e-12
    )
    assert predict_series(art, prices, np.array([], dtype=np.int64), 60).shape == (0,)


def test_untrained_horizon_lists_the_trained_ones(art: ModelArtifact) -> None:
    window = Market(0).prices("ETH/EUR", END, 17)
    for horizon in (120, 90.5):
        with pytest.raises(BadHorizonError, match=r"has 1m, 5m, 15m, 1h"):
            predict_from_prices(art, window, horizon)
    assert predict_from_prices(art, window, 300.0) == predict_from_prices(art, window, 300)


def test_prediction_input_errors(art: ModelArtifact) -> None:
    prices = Market(0).prices("ETH/EUR", END, 100)
    with pytest.raises(BadInputError, match="last 17 prices"):
        predict_from_prices(art, prices[:10], 60)
    with pytest.raises(BadInputError, match="positions"):
        predict_series(art, prices, np.array([15]), 60)
    with pytest.raises(BadInputError, match="positions"):
        predict_series(art, prices, np.array([100]), 60)
    bad = prices.copy()
    bad[50] = 0.0
    with pytest.raises(BadInputError, match="positive"):
        predict_series(art, bad, np.array([60]), 60)


def test_save_load_round_trip(art: ModelArtifact, tmp_path: Path) -> None:
    path = save_artifact(art, tmp_path / "deep" / "er" / "model.json")
    assert load_artifact(path) == art
    assert [p.name for p in path.parent.iterdir()] == ["model.json"]  # no temp file left
    assert json.loads(path.read_text())["version"] == art.version
    save_artifact(art, path)  # overwriting is fine
    assert artifact_from_dict(artifact_to_dict(art)) == art


def _tamper(d: dict[str, Any], how: str) -> Any:
    if how == "coefficient":
        d["coefficients"]["300"][2] *= 1.5
    elif how == "short-vector":
        d["coefficients"]["60"] = d["coefficients"]["60"][:-1]
        d["version"] = compute_version(d)  # consistent version: the length check must catch it
    elif how == "int-coefficient":
        d["coefficients"]["60"][0] = 0
        d["version"] = compute_version(d)
    elif how == "schema":
        d["schema"] = "someone.else/1"
    elif how == "missing-horizon":
        del d["coefficients"]["900"]
        d["version"] = compute_version(d)
    elif how == "foreign":
        return {"weights": [1, 2, 3]}
    elif how == "list":
        return [1, 2, 3]
    return d


@pytest.mark.parametrize(
    ("how", "fragment"),
    [
        ("coefficient", "does not match its version"),
        ("short-vector", "coefficients[60]: need 17"),
        ("int-coefficient", "non-float"),
        ("schema", "schema is 'someone.else/1'"),
        ("missing-horizon", "coefficients != horizons_s"),
        ("foreign", "schema is None"),
        ("list", "not a JSON object"),
    ],
)
def test_load_rejects_tampered_or_foreign(
    art: ModelArtifact, tmp_path: Path, how: str, fragment: str
) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(_tamper(artifact_to_dict(art), how)))
    with pytest.raises(ModelError) as err:
        load_artifact(path)
    message = str(err.value)
    assert str(path) in message and fragment in message and "predcache train" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "content", [b"", b'{"schema": "predcache.model/1", ', b"\xff\xfe garbage", b"[" * 100_000]
)
def test_load_rejects_corrupt_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=r"model artifact .*model\.json.*predcache train"):
        load_artifact(path)


def test_load_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model artifact at .*nope.json; train one"):
        load_artifact(tmp_path / "nope.json")


def test_train_on_csv_candles_with_a_gap(tmp_path: Path) -> None:
    c = Market(0).candles("BTC/USD", END - 3 * 1440, 3 * 1440)
    keep = np.ones(len(c["timestamp"]), dtype=bool)
    keep[2000:2010] = False  # ten missing candles
    lines = ["timestamp,open,high,low,close,volume"] + [
        ",".join(repr(float(c[col][i])) if col != "timestamp" else str(c[col][i]) for col in c)
        for i in np.flatnonzero(keep)
    ]
    path = tmp_path / "btc.csv"
    path.write_text("\n".join(lines) + "\n")
    art = train_csv("BTC/USD", load_candles_csv(path), horizons_s=(60, 300))
    assert art.features["step_s"] == 60 and art.horizons_s == [60, 300]
    assert art.training["source"] == "csv" and art.training["csv"] == "btc.csv"
    assert art.metrics["60"]["improvement_pct"] > 0
    with pytest.raises(BadHorizonError, match="multiple"):
        train_csv("BTC/USD", load_candles_csv(path), horizons_s=(90,))


def test_no_pickle_anywhere() -> None:
    root = Path(__file__).resolve().parents[1] / "predcache"
    for name in ("market.py", "model.py"):
        source = (root / name).read_text()
        assert "import pickle" not in source and "allow_pickle" not in source
