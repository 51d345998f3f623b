"""Model artifacts on disk, seen from the predictor: versions cheaply, predictions lazily.

The predictor needs the model *version* on every request (it is part of the cache key) but the
model itself only on a miss. :class:`ModelRegistry` reads a pair's artifact header with the
standard ``json`` module and keeps it, so a cache hit never imports numpy; the numpy model and
the market are imported and loaded on the first miss.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from predcache.artifact import ModelArtifact, ModelHeader, artifact_path, read_header
from predcache.config import display_path
from predcache.durations import format_duration
from predcache.errors import BadHorizonError, ModelError

if TYPE_CHECKING:
    from predcache.market import Market

__all__ = [
    "Computed",
    "ModelHeader",
    "ModelRegistry",
    "ModelSource",
    "artifact_path",
    "read_header",
]


class Computed(NamedTuple):
    """One fresh model output."""

    predicted_price: float
    as_of: float
    last_price: float


class ModelSource(Protocol):
    """What the predictor needs from models: a version per pair, and predictions on a miss."""

    def version(self, pair: str) -> str: ...

    def check_horizon(self, pair: str, horizon_s: int) -> None: ...

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed: ...


class ModelRegistry:
    """Artifacts under one directory; trains a missing pair on first use when allowed."""

    def __init__(
        self,
        models_dir: Path,
        *,
        auto_train: bool = True,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.auto_train = auto_train
        self._notify = notify
        self._headers: dict[str, ModelHeader] = {}
        self._models: dict[str, ModelArtifact] = {}
        self._markets: dict[int, Market] = {}
        self._lock = threading.Lock()

    def header(self, pair: str) -> ModelHeader:
        header = self._headers.get(pair)
        if header is not None:
            return header
        with self._lock:
            header = self._read_header(pair)
            if header is None:
                if not self.auto_train:
                    raise ModelError(
                        f"no model for {pair} in {self.models_dir}; run `predcache train`"
                    )
                path = artifact_path(self.models_dir, pair)
                self._train_default(pair, path)
                header = read_header(path, pair)
                self._headers[pair] = header
            return header

    def _read_header(self, pair: str) -> ModelHeader | None:
        """The pair's header, read once and kept; ``None`` when no artifact exists yet.

        One read, no separate existence check: a CLI hit does this once per process."""
        header = self._headers.get(pair)
        if header is None:
            try:
                header = read_header(artifact_path(self.models_dir, pair), pair)
            except FileNotFoundError:
                return None
            self._headers[pair] = header
        return header

    def trained(self, pair: str) -> ModelHeader | None:
        """The pair's model header if an artifact exists; never trains (the front page asks)."""
        return self._read_header(pair)

    def _train_default(self, pair: str, path: Path) -> None:
        from predcache.training import train_default

        if self._notify is not None:
            self._notify(
                f"no trained model for {pair} yet: training the default model once "
                f"({display_path(path)})"
            )
        train_default(pair, path)

    def version(self, pair: str) -> str:
        return self.header(pair).version

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        """Raise :class:`BadHorizonError` for an untrained horizon, before anything is written."""
        header = self._read_header(pair)
        if header is None:
            from predcache.config import DEFAULT_HORIZONS_S

            horizons: tuple[int, ...] = DEFAULT_HORIZONS_S  # what auto-training would fit
        else:
            horizons = header.horizons_s
        if horizon_s not in horizons:
            trained = ", ".join(format_duration(h) for h in horizons)
            shown = format_duration(horizon_s)
            fix = (
                f"`predcache train --pairs {pair} --horizons {shown}` adds it"
                if horizon_s % 60 == 0
                else "the model is trained for whole minutes only"
            )
            raise BadHorizonError(
                f"horizon {shown} was not trained for {pair}: trained horizons are {trained}; {fix}"
            )

    def artifact(self, pair: str) -> ModelArtifact:
        """The full, validated model (JSON only; numpy comes with the first prediction)."""
        art = self._models.get(pair)
        if art is None:
            from predcache.artifact import load_artifact

            art = load_artifact(self.header(pair).path)
            if art.version != self.version(pair):
                raise ModelError(
                    f"model file for {pair} changed while in use; restart to reload it"
                )
            self._models[pair] = art
        return art

    def market(self, seed: int) -> Market:
        market = self._markets.get(seed)
        if market is None:
            from predcache.market import Market

            market = self._markets[seed] = Market(seed)
        return market

    def live_market(self, art: ModelArtifact) -> Market:
        """The price feed a model predicts from at request time.

        predcache has no live exchange feed: a model trained on the synthetic market reads the
        market it was trained on; one trained on real one-minute candles reads the default
        synthetic market (seed 0), since its coefficients only need recent one-minute returns.
        """
        if art.step_s != 60:
            raise ModelError(
                f"the model for {art.pair} was trained on {art.step_s}s candles; predictions "
                "read one-minute prices, so retrain it on one-minute candles"
            )
        seed = art.training.get("market_seed")
        return self.market(seed if isinstance(seed, int) else 0)

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        from predcache import model

        art = self.artifact(pair)
        market = self.live_market(art)
        minute = math.floor(at / 60)
        window = market.prices(pair, minute - art.k, art.k + 1)
        price = model.predict_from_prices(art, window, horizon_s)
        return Computed(float(price), float(minute * 60), float(window[-1]))
