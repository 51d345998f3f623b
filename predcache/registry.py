"""Model artifacts on disk, seen from the predictor: versions cheaply, predictions lazily.

The predictor needs the model *version* on every request (it is part of the cache key) but the
model itself only on a miss. :class:`ModelRegistry` reads a pair's artifact header with the
standard ``json`` module and keeps it, so a cache hit never imports numpy; the numpy model and
the market are imported and loaded on the first miss.

**A model retrained under a running process** is picked up without a restart: at most every
:data:`RELOAD_CHECK_S` (one ``stat`` per loaded pair, on whichever request comes first) the
registry compares the artifact's identity (inode, mtime, size) with the one it read. A new
version is loaded whole (header and model swapped together), logged once, and misses use it:
its keys are new, so the old version's entries simply age out. A file that is unreadable or
invalid at that moment is not loaded (one warning); the loaded model keeps serving.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from predcache.artifact import ModelArtifact, ModelHeader, artifact_path, read_header
from predcache.config import display_path
from predcache.durations import format_duration
from predcache.errors import BadHorizonError, ModelError, PredcacheError
from predcache.pairs import parse_pair

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


#: seconds between checks of the loaded artifacts for a new version
RELOAD_CHECK_S = 1.0


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten: inode, mtime (ns), size."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


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
        self._idents: dict[str, tuple[int, int, int] | None] = {}
        self._due = time.monotonic() + RELOAD_CHECK_S
        self._watchers: list[Callable[[str, str], None]] = []
        #: versions loaded since this registry was made, after the first (one per reload)
        self.reloads = 0

    def watch(self, on_version: Callable[[str, str], None]) -> None:
        """Call ``on_version(pair, version)`` for every version loaded (first and reloads)."""
        self._watchers.append(on_version)
        for pair, header in list(self._headers.items()):
            on_version(pair, header.version)

    def _loaded(self, header: ModelHeader) -> None:
        self._headers[header.pair] = header
        for on_version in self._watchers:
            on_version(header.pair, header.version)

    def _check_reload(self) -> None:
        """Every :data:`RELOAD_CHECK_S`: swap in any artifact that changed on disk."""
        with self._lock:
            if time.monotonic() < self._due:
                return
            for pair, header in list(self._headers.items()):
                ident = _identity(header.path)
                if ident is None or ident == self._idents.get(pair):
                    continue  # unchanged, or removed (the loaded model keeps serving)
                self._idents[pair] = ident
                self._reload(pair, header)
            self._due = time.monotonic() + RELOAD_CHECK_S

    def _reload(self, pair: str, old: ModelHeader) -> None:
        from predcache.artifact import load_artifact

        try:
            new = read_header(old.path, pair)
            art = load_artifact(old.path) if new.version != old.version else None
        except (ModelError, OSError) as exc:
            self._say(
                f"warning: not reloading the model for {pair}: {exc}; still serving {old.version}"
            )
            return
        if art is None:
            return  # rewritten with the same content
        if art.version != new.version:  # replaced again between the two reads: next check
            self._idents[pair] = None
            return
        self._models[pair] = art  # model and header swap together: one version at a time
        self.reloads += 1
        self._loaded(new)
        self._say(
            f"model for {pair} changed on disk ({old.path.name}): version {old.version} -> "
            f"{new.version}; new predictions use it"
        )

    def _say(self, message: str) -> None:
        if self._notify is not None:
            self._notify(message)

    def header(self, pair: str) -> ModelHeader:
        header = self._headers.get(pair)
        if header is not None:
            if time.monotonic() < self._due:
                return header
            self._check_reload()
            return self._headers[pair]
        with self._lock:
            header = self._read_header(pair)
            if header is None:
                if not self.auto_train:
                    raise ModelError(
                        f"no model for {pair} in {self.models_dir}; run `predcache train`"
                    )
                path = artifact_path(self.models_dir, pair)
                self._train_default(pair, path)
                self._idents[pair] = _identity(path)
                header = read_header(path, pair)
                self._loaded(header)
            return header

    def _read_header(self, pair: str) -> ModelHeader | None:
        """The pair's header, read once and kept; ``None`` when no artifact exists yet.

        One read, no separate existence check: a CLI hit does this once per process."""
        header = self._headers.get(pair)
        if header is None:
            path = artifact_path(self.models_dir, pair)
            ident = _identity(path)  # before the read: a later change is then always seen
            try:
                header = read_header(path, pair)
            except FileNotFoundError:
                return None
            self._idents[pair] = ident
            self._loaded(header)
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

    def warm(self) -> list[str]:
        """Load every trained pair's model and make one prediction with it; the pairs warmed.

        A server calls this before it takes requests, so its first miss per pair costs what
        every later miss costs: without it, that miss also reads and validates the artifact,
        imports numpy and builds the market, and every request that arrives meanwhile waits
        behind it (the live-vs-simulated check in docs/bench.md saw the start-up wave of
        collapsed requests wait that much longer than the simulation said). Nothing is stored
        and no model call is counted. A file that does not load is skipped here and reported
        by the first request for its pair, as before.
        """
        warmed: list[str] = []
        for path in sorted(self.models_dir.glob("*.json")):
            try:
                pair = parse_pair(path.stem.replace("-", "/", 1))
                if artifact_path(self.models_dir, pair) != path:
                    continue
                header = self.header(pair)
                self.compute(pair, min(header.horizons_s), time.time())
            except (PredcacheError, OSError, ValueError):
                continue
            warmed.append(pair)
        return warmed

    def artifact(self, pair: str) -> ModelArtifact:
        """The full, validated model (JSON only; numpy comes with the first prediction)."""
        art = self._models.get(pair)
        if art is None:
            from predcache.artifact import load_artifact

            header = self.header(pair)
            art = load_artifact(header.path)
            if art.version != header.version:
                # replaced since its header was read, before the next check saw it: take the
                # new one now (model and header together), as a reload would
                with self._lock:
                    self._idents[pair] = _identity(header.path)
                    self._models[pair] = art
                    self.reloads += 1
                    self._loaded(
                        header._replace(version=art.version, horizons_s=tuple(art.horizons_s))
                    )
                self._say(
                    f"model for {pair} changed on disk ({header.path.name}): version "
                    f"{header.version} -> {art.version}; new predictions use it"
                )
                return art
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
