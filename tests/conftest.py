"""Shared fixtures: private dirs per test, a fake clock, a numpy-free model source, stores."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from predcache.clock import ManualClock
from predcache.errors import BadHorizonError
from predcache.registry import Computed
from predcache.store.base import ProxyStore, Store
from predcache.store.disk import DiskStore
from predcache.store.memory import MemoryStore

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.redis_cluster",
    "tests.fixtures.server",
    "tests.fixtures.threaded",
    "tests.fixtures.browser",
]


class FakeModels:
    """A deterministic model source: price = 100 + minute/1000 + horizon/1e4; counts calls."""

    def __init__(self, version: str = "fake1", horizons: tuple[int, ...] = (60, 300, 900)) -> None:
        self.current_version = version
        self.horizons = horizons
        self.calls = 0

    def version(self, pair: str) -> str:
        return self.current_version

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        if horizon_s not in self.horizons:
            raise BadHorizonError(f"horizon {horizon_s} not trained")

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        self.calls += 1
        minute = int(at // 60)
        return Computed(100.0 + minute / 1000 + horizon_s / 1e4, float(minute * 60), 100.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
def fake_models() -> FakeModels:
    return FakeModels()


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own cache and model dirs (never the user's)."""
    monkeypatch.setenv("PREDCACHE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PREDCACHE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("PREDCACHE_BACKEND", raising=False)


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real artifacts for the default pairs, trained once per session (2 days: quick)."""
    from predcache.artifact import artifact_path, save_artifact
    from predcache.pairs import DEFAULT_PAIRS
    from predcache.training import train_synthetic

    out = tmp_path_factory.mktemp("trained-models")
    for pair in DEFAULT_PAIRS:
        art = train_synthetic(pair, days=2)
        save_artifact(art, artifact_path(out, pair))
    return out


@pytest.fixture
def models_dir(trained_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained artifacts, wired in through PREDCACHE_MODELS_DIR."""
    dest = tmp_path / "models"
    shutil.copytree(trained_models, dest)
    monkeypatch.setenv("PREDCACHE_MODELS_DIR", str(dest))
    return dest


BACKENDS = ["memory", "disk", "redis"]
#: Redis-protocol backends and the fixture that hands a test an empty one's URL
REDIS_URL_FIXTURES = {
    "redis": "redis_url",
    "redis+cluster": "cluster_url",
    "redis+sentinel": "sentinel_url",
    "valkey": "valkey_url",
}


def backend_url(kind: str, request: pytest.FixtureRequest) -> str | None:
    """The URL of an empty server for a Redis-protocol ``kind`` (started once per session)."""
    fixture = REDIS_URL_FIXTURES.get(kind)
    return None if fixture is None else str(request.getfixturevalue(fixture))


def make_store(
    kind: str, tmp_path: Path, namespace: str = "", redis_url: str | None = None
) -> Store:
    if kind == "memory":
        return MemoryStore(namespace=namespace)
    if kind == "disk":
        return DiskStore(tmp_path / "store", namespace=namespace)
    if kind == "proxy":  # the pass-through base of store wrappers, over a real disk store
        return ProxyStore(DiskStore(tmp_path / "store", namespace=namespace))
    if kind in REDIS_URL_FIXTURES:  # real servers: tests/fixtures/redis*.py, see backend_url
        from predcache.store.redis import open_redis_store

        assert redis_url is not None, f"the {kind} backend needs the {REDIS_URL_FIXTURES[kind]}"
        return open_redis_store(redis_url, namespace=namespace)
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every backend, for the contract suite and the predictor tests."""
    s = make_store(request.param, tmp_path, redis_url=backend_url(request.param, request))
    yield s
    s.close()
