"""HTTP caching headers for the Python API, and the FastAPI example under a real uvicorn."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx

from predcache import cached
from predcache.clock import ManualClock
from predcache.headers import cache_headers
from tests.fixtures.server import free_port

ROOT = Path(__file__).resolve().parent.parent
UVICORN = Path(sysconfig.get_path("scripts")) / "uvicorn"


def test_headers_for_a_miss_then_a_hit_on_a_fake_clock() -> None:
    clock = ManualClock(1_800_000_000.0)

    @cached(ttl="90s", backend="memory", clock=clock)
    def f(x: int) -> int:
        return x

    assert cache_headers(f.lookup(1)) == {
        "Cache-Status": "predcache; fwd=miss; stored",
        "Cache-Control": "max-age=90",
    }
    clock.advance(30.5)
    assert cache_headers(f.lookup(1)) == {
        "Cache-Status": "predcache; hit; ttl=59",
        "Age": "30",
        "Cache-Control": "max-age=59",
    }
    assert cache_headers(f.lookup(1, max_age="40s"))["Cache-Status"] == "predcache; hit; ttl=9"


def test_fastapi_example_under_uvicorn_says_hit_the_second_time(tmp_path: Path) -> None:
    port = free_port()
    exe = [str(UVICORN)] if UVICORN.exists() else [sys.executable, "-m", "uvicorn"]
    env = dict(os.environ, PREDCACHE_CACHE_DIR=str(tmp_path / "cache"), EXAMPLE_MODEL_DELAY_S="0")
    env.pop("PREDCACHE_BACKEND", None)
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [*exe, "examples.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/predict"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
            try:
                first = httpx.post(url, json={"product_id": "ETH/EUR"}, timeout=30)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "uvicorn did not answer"
                time.sleep(0.1)
        second = httpx.post(url, json={"product_id": "ETH/EUR"}, timeout=30)
        bad = httpx.post(url, json={"product_id": "XX/EUR"}, timeout=30)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert first.status_code == second.status_code == 200
    assert first.headers["cache-status"] == "predcache; fwd=miss; stored"
    assert "age" not in first.headers
    hit = re.fullmatch(r"predcache; hit; ttl=(\d+)", second.headers["cache-status"])
    assert hit is not None, second.headers
    assert second.headers["cache-control"] == f"max-age={hit.group(1)}"
    assert int(hit.group(1)) + int(second.headers["age"]) in (89, 90)  # wall clock: 90 s TTL
    assert second.json() == first.json()
    assert list(first.json()) == ["product_id", "predicted_price", "timestamp", "timestamp_sec"]
    assert (bad.status_code, bad.headers["content-type"]) == (422, "application/problem+json")
    assert bad.json()["code"] == "bad_pair"
