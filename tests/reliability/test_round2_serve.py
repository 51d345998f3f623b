"""Round-two reliability (issue #17) against real ``predcache serve`` processes on loopback:
a model retrained under load through two workers; a no-cache flood; oversized and slow headers;
workers that end with a killed parent; an inherited metrics directory."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from predcache.artifact import artifact_path, save_artifact
from tests.fixtures.server import RunningServer, ServerFactory
from tests.reliability import figures


def _children(ppid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                rest = (d / "stat").read_text().rsplit(")", 1)[1].split()
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if int(rest[1]) == ppid and rest[0] != "Z" and b"spawn_main" in cmd:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


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


def test_workers_end_with_a_killed_parent_and_the_port_is_free(serve: ServerFactory) -> None:
    server = serve("--workers", "2", "--ttl", "90s")
    port = int(server.url.rsplit(":", 1)[1])
    workers = _children(server.proc.pid)
    environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
    raw = next(v for v in environ if v.startswith(b"PREDCACHE_SERVE_SETTINGS="))
    settings = json.loads(raw.split(b"=", 1)[1])
    metrics_dir = Path(settings["metrics_dir"])
    assert len(workers) == 2 and metrics_dir.is_dir()
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)
    assert not metrics_dir.exists()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again


def test_one_worker_ignores_an_inherited_metrics_dir(tmp_path: Path, trained_models: Path) -> None:
    from tests.fixtures.server import start_server, stop_server

    inherited = tmp_path / "inherited"
    inherited.mkdir()
    env = dict(os.environ)
    env.update(
        PROMETHEUS_MULTIPROC_DIR=str(inherited),
        PREDCACHE_MODELS_DIR=str(trained_models),
        PREDCACHE_CACHE_DIR=str(tmp_path / "cache"),
    )
    server = start_server(["--ttl", "90s"], log=tmp_path / "serve.log", env=env)
    try:
        assert _predict(server).status_code == 200
        assert server.metric("predcache_requests_total") == 1
        assert list(inherited.iterdir()) == []
    finally:
        stop_server(server)


def _status_line(port: int, head: bytes, header_mib: int = 0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        if header_mib:
            s.sendall(b"X-Big: ")
            for _ in range(header_mib):
                s.sendall(b"a" * (1 << 20))
            s.sendall(b"\r\n\r\n")
        return s.recv(4096)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_oversized_header_gets_431_and_memory_stays_bounded(serve: ServerFactory) -> None:
    server = serve("--ttl", "90s", "--max-header-size", "16KiB")
    port = int(server.url.rsplit(":", 1)[1])
    _predict(server)
    before = _rss_mb(server.proc.pid)
    answer = _status_line(port, b"GET /predict?pair=ETH/EUR HTTP/1.1\r\nHost: x\r\n", 32)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    assert b"content-type: application/problem+json" in head
    assert json.loads(body)["code"] == "headers-too-large"
    assert _rss_mb(server.proc.pid) - before < 20  # a 32 MiB header was never kept
    small = b"GET /predict?pair=ETH/EUR HTTP/1.1\r\nHost: x\r\nX-A: " + b"b" * 15000
    ok = _status_line(port, small + b"\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 OK")


def test_slow_headers_get_408_and_the_connection_closes(serve: ServerFactory) -> None:
    server = serve("--ttl", "90s", "--header-timeout", "1s")
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"GET /predict HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        t0 = time.monotonic()
        answer = s.recv(4096)
        waited = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    assert 0.5 < waited < 10


FLOOD = 200
FLOOD_DELAY = "1s"  # simulated model delay: 200 in series would take 200 s


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("Threads:")).split()[1])


class _Timed:
    """GETs repeated in a thread until stopped: each one's Cache-Status and seconds."""

    def __init__(self, server: RunningServer, params: dict[str, str]) -> None:
        self.server, self.params = server, params
        self.seen: list[tuple[str, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set() and len(self.seen) < 1000:
                t = time.perf_counter()
                r = client.get(self.server.predict_url, params=self.params)
                self.seen.append((r.headers["cache-status"], time.perf_counter() - t))
                time.sleep(0.02)

    def finish(self) -> list[tuple[str, float]]:
        self.stop.set()
        self.thread.join()
        return self.seen


@pytest.mark.parametrize("backend", ["disk", "redis"])
def test_no_cache_flood_makes_a_handful_of_model_calls_and_hits_stay_fast(
    serve: ServerFactory, request: pytest.FixtureRequest, backend: str
) -> None:
    """200 concurrent no-cache requests for one key (connected first, released together):
    a few shared recomputations instead of 200 in series, at most the key's 4 threads (plus a
    few for other requests), and hits meanwhile, on another key and on the flooded key
    itself, never queue behind them."""
    args = ["--ttl", "90s", "--model-delay", FLOOD_DELAY]
    if backend == "redis":
        args += ["--backend", request.getfixturevalue("redis_url")]
    server = serve(*args)
    for pair, horizon in (("BTC/USD", "5m"), ("ETH/EUR", "5m")):  # warm: hits from now on
        r = httpx.get(server.predict_url, params={"pair": pair, "horizon": horizon}, timeout=30)
        assert r.headers["cache-status"] == "predcache; fwd=miss; stored"
    calls = server.metric("predcache_model_calls_total")
    collapsed = server.metric("predcache_cache_collapsed_total")
    baseline = _threads(server.proc.pid)
    peak = [baseline]
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            peak[0] = max(peak[0], _threads(server.proc.pid))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    other = _Timed(server, {"pair": "BTC/USD", "horizon": "5m"})
    same = _Timed(server, {"pair": "ETH/EUR", "horizon": "5m"})
    port = int(server.url.rsplit(":", 1)[1])
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=120) for _ in range(FLOOD)]
    for c in conns:
        c.connect()  # connected first, so the requests really are concurrent
    start = threading.Barrier(FLOOD)

    def no_cache(c: http.client.HTTPConnection) -> tuple[int, str, float]:
        start.wait()
        t = time.perf_counter()
        c.request("GET", "/predict?pair=ETH/EUR&horizon=5m", headers={"cache-control": "no-cache"})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, r.getheader("cache-status") or "", time.perf_counter() - t

    with ThreadPoolExecutor(FLOOD) as pool:
        flood = list(pool.map(no_cache, conns))
    time.sleep(0.3)  # a few more hits after the flood
    hits_other, hits_same = other.finish(), same.finish()
    watching.set()
    watcher.join()
    made = int(server.metric("predcache_model_calls_total") - calls)
    assert [status for status, _, _ in flood] == [200] * FLOOD
    assert 1 <= made <= 4  # was 200 in series
    statuses = sorted(cs for _, cs, _ in flood)
    assert statuses == sorted(
        ["predcache; fwd=request; stored"] * made
        + ["predcache; fwd=miss; collapsed"] * (FLOOD - made)
    )
    assert server.metric("predcache_cache_collapsed_total") - collapsed == FLOOD - made
    assert peak[0] - baseline <= 12  # the key's 4 threads and a few others, not one per request
    for seen in (hits_other, hits_same):
        assert seen and {cs.split(";")[1].strip() for cs, _ in seen} == {"hit"}
        # under one model call: a hit that queued behind the flood would wait for one or more
        assert max(s for _, s in seen) < 1.0
    slowest = max(s for _, _, s in flood)
    assert slowest < 10.0  # two or three computations of 1 s, not 200
    figures.add(
        f"no-cache flood ({backend})",
        requests=FLOOD,
        model_calls=made,
        threads_added=peak[0] - baseline,
        slowest_ms=round(slowest * 1000),
        hits_meanwhile=len(hits_other) + len(hits_same),
        slowest_hit_ms=round(max(s for _, s in hits_other + hits_same) * 1000),
    )
