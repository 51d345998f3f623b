"""The Python API: ``@cached`` and ``Cache`` over real stores, threads, processes and asyncio."""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing as mp
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from predcache import Cache, cached
from predcache.clock import ManualClock
from predcache.errors import BadBackendError, BadDurationError, BadInputError
from predcache.store.memory import MemoryStore

THREADS = 16
PROCESSES = 4
SLOW_S = 0.3  # long enough for the other callers to arrive while the first computes


def _disk(tmp_path: Path) -> str:
    return f"disk://{tmp_path / 'store'}"


def test_sixteen_threads_on_one_cold_key_run_the_function_once(tmp_path: Path) -> None:
    calls: list[str] = []

    @cached(ttl="1h", backend=_disk(tmp_path))
    def predict(pair: str, horizon: str) -> dict[str, Any]:
        calls.append(pair)
        time.sleep(SLOW_S)
        return {"pair": pair, "horizon": horizon, "price": 2000.5}

    gate = threading.Barrier(THREADS)
    got: list[dict[str, Any]] = []

    def one() -> None:
        gate.wait()
        got.append(predict("ETH/EUR", "5m"))

    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert calls == ["ETH/EUR"]
    assert got == [{"pair": "ETH/EUR", "horizon": "5m", "price": 2000.5}] * THREADS
    info = predict.cache_info()
    assert (info.misses, info.model_calls, info.errors) == (1, 1, 0)
    assert (info.hits, info.collapsed) == (0, THREADS - 1)  # each waited for the one call


def slow_in_a_process(path: str) -> dict[str, int]:
    """Appends one line per call to ``path`` (the count every process can see)."""
    with open(path, "a") as f:
        f.write("call\n")
    time.sleep(SLOW_S)
    return {"answer": 42}


def process_worker(store: str, calls: str, start: Any, out: Any) -> None:
    fn = cached(ttl="1h", backend=store, version="p1")(slow_in_a_process)
    start.wait()  # every process is up before any calls
    value = fn(calls)
    out.put((value, fn.cache_info()._asdict()))


def test_four_processes_on_one_disk_store_run_it_once(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(PROCESSES), ctx.Queue()
    calls = tmp_path / "calls.txt"
    procs = [
        ctx.Process(target=process_worker, args=(_disk(tmp_path), str(calls), start, out))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    reports = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert calls.read_text() == "call\n"
    assert [value for value, _ in reports] == [{"answer": 42}] * PROCESSES
    assert sum(info["misses"] for _, info in reports) == 1
    assert sum(info["model_calls"] for _, info in reports) == 1


def test_asyncio_gather_of_sixteen_runs_it_once(tmp_path: Path) -> None:
    calls: list[int] = []

    @cached(ttl="1h", backend=_disk(tmp_path))
    async def fetch(n: int) -> list[int]:
        calls.append(n)
        await asyncio.sleep(SLOW_S)
        return [n, n * 2]

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(fetch(7) for _ in range(THREADS)))

    assert asyncio.run(main()) == [[7, 14]] * THREADS
    assert calls == [7]
    info = fetch.cache_info()
    assert (info.misses, info.model_calls) == (1, 1)
    assert (info.hits, info.collapsed) == (0, THREADS - 1)  # each waited for the one call
    assert asyncio.run(fetch(7)) == [7, 14]  # a later loop: a hit, served on the loop
    assert fetch.cache_info().hits == info.hits + 1


@pytest.mark.parametrize("bad", [{1, 2}, object(), float("nan"), b"bytes"])
def test_a_value_that_is_not_json_is_a_type_error_and_nothing_is_stored(bad: object) -> None:
    store = MemoryStore()
    calls: list[int] = []

    @cached(ttl="1h", backend=store)
    def f(x: int) -> object:
        calls.append(x)
        return bad

    with pytest.raises(TypeError, match="predcache caches JSON only: the value is not JSON"):
        f(1)
    assert store.stats().entries == 0
    with pytest.raises(TypeError):
        f(1)
    assert calls == [1, 1]  # nothing was stored, so the second call computed again
    assert f.cache_info().errors == 2


def test_arguments_that_are_not_json_are_a_type_error_unless_key_says() -> None:
    @cached(ttl="1h", backend="memory")
    def f(x: object) -> int:
        return 1

    with pytest.raises(TypeError, match="the key is not JSON-encodable"):
        f(object())

    @cached(ttl="1h", backend="memory", key=lambda x: type(x).__name__)
    def g(x: object) -> int:
        return 2

    assert g(object()) == 2 and g(object()) == 2
    assert (g.cache_info().misses, g.cache_info().hits) == (1, 1)


def test_the_key_is_the_one_key_function_s_over_the_bound_arguments() -> None:
    store = MemoryStore()

    @cached(ttl="1h", backend=store, version="v7")
    def area(w: int, h: int = 2) -> int:
        return w * h

    assert area(3) == area(w=3) == area(3, h=2) == 6
    assert area.cache_info().misses == 1
    name = (
        f"{__name__}.test_the_key_is_the_one_key_function_s_over_the_bound_arguments.<locals>.area"
    )
    digest = hashlib.sha256(b'{"h":2,"w":3}').hexdigest()[:32]
    key = f"v1:v7:{name}:{digest}"
    stored = store.get(key)
    assert stored is not None and stored["value"] == 6  # type: ignore[typeddict-item]


def test_default_version_is_a_hash_of_the_source() -> None:
    @cached(ttl="1h", backend="memory")
    def f() -> int:
        return 1

    import inspect

    want = hashlib.sha256(inspect.getsource(f.__wrapped__).encode()).hexdigest()[:12]
    assert f.cache.version == f"fn-{want}"


def test_ttl_max_age_and_invalidate_on_a_fake_clock() -> None:
    clock = ManualClock(1_800_000_000.0)
    calls: list[float] = []

    @cached(ttl="1m", backend="memory", clock=clock)
    def now() -> float:
        calls.append(clock.now())
        return clock.now()

    assert now() == 1_800_000_000.0
    clock.advance(30)
    assert now() == 1_800_000_000.0  # fresh: 30 s < 1 min
    assert now(max_age="10s") == 1_800_000_030.0  # the tighter bound: recomputed
    clock.advance(59.5)
    r = now.lookup()
    assert (r.outcome, r.age_s, r.limit_s) == ("hit", 59.5, 60.0)
    clock.advance(0.5)
    assert now() == 1_800_000_090.0  # age 60 = ttl: expired
    assert now.invalidate() is True and now.invalidate() is False
    assert now() == 1_800_000_090.0 and len(calls) == 4
    info = now.cache_info()
    assert (info.hits, info.misses, info.model_calls) == (2, 4, 4)


def test_what_the_function_raises_reaches_the_caller_and_nothing_is_stored() -> None:
    store = MemoryStore()

    @cached(ttl="1h", backend=store)
    def f() -> int:
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        f()
    assert store.stats().entries == 0 and f.cache_info().errors == 1


def test_cache_get_or_compute_without_a_decorator(tmp_path: Path) -> None:
    cache = Cache(_disk(tmp_path), ttl=60, name="prices", version="2")
    assert cache.get_or_compute("ETH/EUR", lambda: {"p": 1.5}) == {"p": 1.5}
    assert cache.get_or_compute("ETH/EUR", lambda: {"p": 9.9}) == {"p": 1.5}
    assert cache.key_for("ETH/EUR") == (
        "v1:2:prices:" + hashlib.sha256(b'"ETH/EUR"').hexdigest()[:32]
    )
    assert tuple(cache.cache_info()) == (1, 1, 0, 1, 0, 0, 0)
    cache.close()


@pytest.mark.redis
def test_redis_backend_threads_once(redis_url: str) -> None:
    calls: list[int] = []

    @cached(ttl="1h", backend=redis_url, version="r1")
    def f() -> int:
        calls.append(1)
        time.sleep(SLOW_S)
        return 5

    threads = [threading.Thread(target=f) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert calls == [1] and f() == 5


def test_stampede_none_lets_every_concurrent_miss_compute() -> None:
    gate = threading.Barrier(4, timeout=30)  # passes only if all four are inside at once

    @cached(ttl="1h", backend="memory", stampede="none")
    def f() -> str:
        gate.wait()
        return "x"

    threads = [threading.Thread(target=f) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert f.cache_info().model_calls == 4


def test_stale_while_revalidate_serves_stale_and_refreshes_once() -> None:
    clock = ManualClock(1_800_000_000.0)
    version = iter(range(1, 100))

    @cached(ttl="10s", backend="memory", clock=clock, stampede="stale-while-revalidate",
            stale_grace="5s")  # fmt: skip
    def f() -> int:
        return next(version)

    assert f() == 1
    clock.advance(12)  # expired 2 s ago, within the 5 s grace
    r = f.lookup()
    assert (r.outcome, r.value) == ("stale", 1)
    deadline = time.monotonic() + 30
    while f.cache_info().model_calls < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert f.lookup().value == 2  # the background refresh stored the new value
    clock.advance(16)  # beyond ttl + grace: a plain miss
    assert f.lookup().outcome == "miss"
    info = f.cache_info()
    assert (info.stale, info.model_calls) == (1, 3)


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(BadDurationError, match="bad ttl"):
        cached(ttl="soon", backend="memory")(lambda: 1)
    with pytest.raises(BadBackendError, match="unknown backend 'floppy'"):
        cached(backend="floppy")(lambda: 1)
    with pytest.raises(BadInputError, match="bad --stampede 'refresh-ahead'"):
        cached(stampede="refresh-ahead", backend="memory")(lambda: 1)
    with pytest.raises(BadInputError, match="stale_grace"):
        cached(stampede="stale-while-revalidate", backend="memory")(lambda: 1)


def test_import_predcache_stays_light() -> None:
    code = (
        "import sys, predcache; print(json.dumps(sorted(m for m in sys.modules "
        "if m.startswith('predcache') or m in ('asyncio', 'numpy'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == ["predcache"]
