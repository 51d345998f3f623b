"""Round-two reliability (issue #17) against real ``predcache serve`` processes on loopback:
a model retrained under load through two workers."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx

from predcache.artifact import artifact_path, save_artifact
from tests.fixtures.server import RunningServer, ServerFactory


def _predict(server: RunningServer, horizon: str = "5m", **headers: str) -> httpx.Response:
    return httpx.get(
        server.predict_url,
        params={"pair": "ETH/EUR", "horizon": horizon},
        headers=headers,
        timeout=60,
    )


def test_retrain_under_load_with_two_workers(
    serve: ServerFactory, trained_models: Path, tmp_path: Path
) -> None:
    from predcache.training import train_synthetic

    models = tmp_path / "own-models"
    shutil.copytree(trained_models, models)
    server = serve("--workers", "2", "--ttl", "90s", "--models-dir", str(models))
    old = _predict(server).json()["model_version"]
    seen: list[tuple[float, int, str | None]] = []
    cap = time.monotonic() + 120
    stop = [cap]  # moved to 5 s after the new artifact is saved

    def load() -> None:
        i = 0
        while time.monotonic() < stop[0] and len(seen) < 20_000:
            r = _predict(server, ("1m", "5m", "15m")[i % 3])
            seen.append((time.monotonic(), r.status_code, r.json().get("model_version")))
            i += 1
            time.sleep(0.01)

    clients = [threading.Thread(target=load) for _ in range(3)]
    for c in clients:
        c.start()
    time.sleep(2)
    art = train_synthetic("ETH/EUR", days=2, market_seed=7)
    save_artifact(art, artifact_path(models, "ETH/EUR"))
    saved_at = time.monotonic()
    stop[0] = saved_at + 5
    for c in clients:
        c.join()
    assert art.version != old
    assert [s for s in seen if s[1] != 200] == []
    after = [s for s in seen if s[0] > saved_at + 3]  # a check a second, per worker
    assert after and {s[2] for s in after} == {art.version}
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert f'predcache_model_info{{pair="ETH/EUR",version="{art.version}"}} 1.0' in metrics
    assert f'predcache_model_info{{pair="ETH/EUR",version="{old}"}} 0.0' in metrics
    log = server.log.read_text()
    line = f"version {old} -> {art.version}; new predictions use it"
    assert 1 <= log.count(line) <= 2  # one line per worker that had loaded the pair
