"""A server loads its trained models before its first request (``ModelRegistry.warm``).

Without it, the first miss per pair also read the artifact, imported numpy and built the
market, and every request collapsed behind it waited that much longer: the live-vs-simulated
check of issue #10 (docs/bench.md) saw the start-up wave wait well past the simulated delay.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from predcache.pairs import DEFAULT_PAIRS
from predcache.registry import ModelRegistry
from tests.fixtures.server import ServerFactory
from tests.test_server_metrics import samples


def test_warm_loads_every_trained_pair_and_skips_what_does_not_load(models_dir: Path) -> None:
    (models_dir / "NOT-A-PAIR-FILE.json").write_text("{}")  # not a pair's slug: skipped
    (models_dir / "ADA-EUR.json").write_text("{not json")  # a pair's name, corrupt: skipped
    (models_dir / "notes.txt").write_text("not an artifact")
    registry = ModelRegistry(models_dir, auto_train=False)
    seen: list[tuple[str, str]] = []
    registry.watch(lambda pair, version: seen.append((pair, version)))

    warmed = registry.warm()

    assert warmed == sorted(DEFAULT_PAIRS, key=lambda p: p.replace("/", "-"))
    assert [pair for pair, _ in seen] == warmed  # each header loaded once
    assert sorted(registry._models) == sorted(DEFAULT_PAIRS)  # the models themselves too
    assert (models_dir / "ADA-EUR.json").read_text() == "{not json"  # left as it was


def test_warm_on_an_empty_directory_trains_nothing(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path, auto_train=True)
    assert registry.warm() == []
    assert list(tmp_path.iterdir()) == []


def test_a_server_has_its_models_loaded_before_the_first_request(serve: ServerFactory) -> None:
    server = serve("--backend", "memory")
    s = samples(httpx.get(f"{server.url}/metrics", timeout=5).text)
    loaded = sorted(dict(labels)["pair"] for name, labels in s if name == "predcache_model_info")
    assert loaded == sorted(DEFAULT_PAIRS)
    assert s[("predcache_model_calls_total", ())] == 0  # warming is not a counted model call
    r = httpx.post(server.predict_url, json={"product_id": "ETH/EUR"}, timeout=10)
    assert r.headers["cache-status"] == "predcache; fwd=miss; stored"
