"""``/metrics`` under a real ``predcache serve --workers 2``: the process metrics of every worker
(label ``pid``, read from ``/proc`` at scrape time), ``python_info``, and the state gauges:
requests in flight, stored entries, and each worker's circuit breaker (label ``pid``)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from predcache.server.procstats import worker_pids
from tests.fixtures.redis import RedisServer, free_port, redis_binary
from tests.fixtures.server import RunningServer, ServerFactory
from tests.test_server_metrics import Samples, samples

TICKS = os.sysconf("SC_CLK_TCK")


def scrape(server: RunningServer, accept: str = "") -> Samples:
    """One scrape on a new connection (so either worker may answer it)."""
    headers = {"accept": accept} if accept else {}
    r = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
    assert r.status_code == 200
    return samples(r.text)


def by_pid(s: Samples, name: str, **labels: str) -> dict[int, float]:
    """``name``'s value per ``pid`` label (other labels as given)."""
    out = {}
    for (sample, pairs), value in s.items():
        got = dict(pairs)
        if sample == name and "pid" in got and all(got.get(k) == v for k, v in labels.items()):
            out[int(got["pid"])] = value
    return out


def both_workers(server: RunningServer, name: str, **labels: str) -> Samples:
    """A scrape that shows ``name`` for both workers of a ``--workers 2`` server: it answers
    once one worker is up, and the other shows up when it has started (polled, bounded)."""
    deadline = time.monotonic() + 20
    while True:
        s = scrape(server)
        if len(by_pid(s, name, **labels)) == 2 or time.monotonic() > deadline:
            return s
        time.sleep(0.05)  # polling for the second worker's start, not waiting out a TTL


def children(pid: int) -> set[int]:
    """The live child processes of ``pid``, from /proc (the test's own reading)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != b"Z":
            found.add(int(entry))
    return found


def start_time(pid: int) -> float:
    """A process's start (epoch s), as the kernel says: boot time plus its start in ticks."""
    btime = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    return btime + float(fields[19]) / TICKS


def workers_of(server: RunningServer) -> set[int]:
    """The serve process's children that answer: the uvicorn workers (spawn may add a
    resource tracker, which keeps no metrics files)."""
    return children(server.proc.pid)


def test_every_worker_has_its_process_metrics_with_a_pid_label(serve: ServerFactory) -> None:
    server = serve("--backend", "disk", "--workers", "2")
    body = {"product_id": "ETH/EUR"}
    assert httpx.post(server.predict_url, json=body, timeout=10).status_code == 200
    both_workers(server, "process_resident_memory_bytes")
    kids = workers_of(server)
    for _ in range(4):  # whichever worker answers, it shows both
        s = scrape(server)
        rss = by_pid(s, "process_resident_memory_bytes")
        assert len(rss) == 2 and set(rss) <= kids, (rss, kids)
        pids = set(rss)
        for name in ("process_cpu_seconds_total", "process_open_fds", "process_max_fds",
                     "process_virtual_memory_bytes", "process_start_time_seconds"):  # fmt: skip
            assert set(by_pid(s, name)) == pids, name
        for pid in pids:
            # exactly what the kernel says about that process (to the tick)
            assert by_pid(s, "process_start_time_seconds")[pid] == pytest.approx(
                start_time(pid), abs=1.0 / TICKS
            )
            assert rss[pid] > 10e6  # a Python process with numpy and FastAPI loaded
            assert by_pid(s, "process_open_fds")[pid] >= 3
            assert by_pid(s, "process_cpu_seconds_total")[pid] > 0
        assert sum(1 for name, _ in s if name == "python_info") == 1
        assert s[("predcache_inflight_requests", ())] == 0
        assert s[("predcache_cache_entries", ())] == 1
        assert s[("predcache_requests_total", ())] == 1
    om = httpx.get(
        f"{server.url}/metrics", headers={"accept": "application/openmetrics-text"}, timeout=10
    )
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n") and "process_resident_memory_bytes{pid=" in om.text


def test_a_dead_worker_leaves_the_process_metrics(serve: ServerFactory) -> None:
    server = serve("--backend", "disk", "--workers", "2")
    before = set(by_pid(both_workers(server, "process_resident_memory_bytes"),
                        "process_resident_memory_bytes"))  # fmt: skip
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            now = set(by_pid(scrape(server), "process_resident_memory_bytes"))
        except httpx.HTTPError:
            now = {victim}  # the connection went to the dying worker: try again
        if victim not in now:
            break
        time.sleep(0.1)
    assert victim not in now and now, now
    # its live-only gauges (requests in flight) went with it, its counters stay
    (metrics_dir,) = Path(tempfile.gettempdir()).glob(f"predcache-metrics-{server.proc.pid}-*")
    left = sorted(p.name for p in metrics_dir.glob(f"*_{victim}.db"))
    assert left and not [name for name in left if name.startswith("gauge_live")], left


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start without touching the others'."""
    server = RedisServer(redis_binary(), tmp_path, free_port())
    server.start()
    yield server
    server.stop()


@pytest.mark.redis
def test_each_worker_shows_its_own_breaker_state(
    serve: ServerFactory, private_redis: RedisServer
) -> None:
    url = f"{private_redis.url}?socket_timeout=250ms&connect_timeout=250ms&retry_after=30s"
    server = serve("--backend", url, "--workers", "2")
    s = both_workers(server, "predcache_breaker_state", state="closed")
    closed = by_pid(s, "predcache_breaker_state", state="closed")
    assert len(closed) == 2 and set(closed.values()) == {1.0}
    assert set(by_pid(s, "predcache_breaker_state", state="open").values()) == {0.0}
    assert ("predcache_breaker_state", (("state", "closed"),)) not in s  # only per worker
    private_redis.stop()
    deadline = time.monotonic() + 20
    opened: dict[int, float] = {}
    while time.monotonic() < deadline:  # requests on new connections reach both workers
        r = httpx.post(server.predict_url, json={"product_id": "ETH/EUR"}, timeout=10)
        assert r.status_code == 200  # answered without the cache
        s = scrape(server)
        opened = {p: v for p, v in by_pid(s, "predcache_breaker_state", state="open").items()}
        if sorted(opened.values()) == [1.0, 1.0]:
            break
    assert sorted(opened.values()) == [1.0, 1.0], opened
    assert set(by_pid(s, "predcache_breaker_state", state="closed").values()) == {0.0}


def test_worker_pids_keeps_the_live_children_of_the_serve_process(tmp_path: Path) -> None:
    """Real processes: a live child, a zombie child, a reaped one, and a live stranger."""
    child = subprocess.Popen(["sleep", "30"])
    zombie = subprocess.Popen(["true"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    stranger = os.getppid()  # alive, but not a child of this process
    try:
        while Path(f"/proc/{zombie.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
            time.sleep(0.01)
        for kind, pid in [("counter", child.pid), ("gauge_livesum", child.pid),
                          ("histogram", zombie.pid), ("counter", gone.pid),
                          ("gauge_liveall", stranger)]:  # fmt: skip
            (tmp_path / f"{kind}_{pid}.db").write_bytes(b"")
        (tmp_path / "notes.txt").write_text("not a worker file")
        assert worker_pids(str(tmp_path), os.getpid()) == [child.pid]
        assert worker_pids(str(tmp_path), None) == sorted([child.pid, stranger])
        assert worker_pids(str(tmp_path / "missing"), os.getpid()) == []
    finally:
        child.kill()
        child.wait()
        zombie.wait()
