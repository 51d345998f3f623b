"""Round-two reliability scenarios (issue #17), measured against real processes; one table.

Each scenario starts real ``predcache`` processes (``serve`` under uvicorn, ``predict``,
``cache stats``, ``train``) in a private temporary HOME on loopback, does the harmful thing,
and prints what happened as figures. It is the before/after record of ``docs/reliability.md``:
run it on a commit, paste the table. Every load loop is bounded in count and time.

    python benchmarks/reliability_scenarios.py              # every scenario
    python benchmarks/reliability_scenarios.py --only flood,skew
    python benchmarks/reliability_scenarios.py --redis redis://127.0.0.1:6390/0  # + Redis ones

To measure an older commit with the same scenarios, put its source first on the path of the
processes started here: ``PYTHONPATH=/path/to/old/checkout python benchmarks/...``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_ENTRY = "from predcache.cli import main; main()"
Figures = list[tuple[str, object]]


class Env:
    """A private HOME with models trained for ETH/EUR and BTC/USD."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="predcache-rel2-"))
        self.env = dict(os.environ)
        self.env.update(
            HOME=str(self.root),
            PREDCACHE_MODELS_DIR=str(self.root / "models"),
            PREDCACHE_CACHE_DIR=str(self.root / "cache"),
        )
        for k in ("PREDCACHE_BACKEND", "PROMETHEUS_MULTIPROC_DIR"):
            self.env.pop(k, None)
        self.cli("train", "--pairs", "ETH/EUR,BTC/USD", "--days", "2")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", _ENTRY, *args]
        return subprocess.run(
            cmd, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``predcache serve ARGS`` on a free port, its log in the env's root."""

    def __init__(self, env: Env, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log = env.root / f"serve-{self.port}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _ENTRY, "serve", "--port", str(self.port), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def get(
        self, path: str, headers: dict[str, str] | None = None, timeout: float = 120
    ) -> tuple[int, dict[str, str], bytes]:
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            con.request("GET", path, headers=headers or {})
            r = con.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            con.close()

    def predict(self, pair: str = "ETH/EUR", horizon: str = "5m", **headers: str) -> tuple:
        status, h, body = self.get(
            f"/predict?pair={pair}&horizon={horizon}",
            {k.replace("_", "-"): v for k, v in headers.items()},
        )
        data = json.loads(body) if status == 200 else {}
        return status, data.get("model_version"), h.get("cache-status", "")

    def metric(self, name: str) -> float:
        for line in self.get("/metrics")[2].decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def workers(self) -> list[int]:
        """The uvicorn worker processes (not multiprocessing's resource tracker)."""
        return [p for p in children(self.proc.pid) if b"spawn_main" in cmdline(p)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        for pid in children(self.proc.pid):
            os.kill(pid, signal.SIGKILL)


def children(ppid: int) -> list[int]:
    """Live processes whose parent is ``ppid`` (read from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == ppid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def scenario_retrain(env: Env) -> Figures:
    """Retrain ETH/EUR twice while 4 clients load ``serve --workers 2`` (1 in 10 with max-age=1)."""
    srv = Server(env, "--workers", "2", "--ttl", "90s")
    results: list[tuple[float, int, str | None]] = []
    stop = time.monotonic() + 24
    t0 = time.monotonic()

    def client() -> None:
        horizons = ("1m", "5m", "15m", "1h")
        i = 0
        while time.monotonic() < stop and len(results) < 20_000:
            extra = {"cache_control": "max-age=1"} if i % 10 == 9 else {}
            status, version, _ = srv.predict("ETH/EUR", horizons[i % 4], **extra)
            results.append((time.monotonic() - t0, status, version))
            i += 1
            time.sleep(0.01)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    marks: list[tuple[float, str]] = []
    starts: list[float] = []  # a retrain's window ends where the next train command starts
    for seed in ("1", "2"):
        time.sleep(4)
        starts.append(time.monotonic() - t0)
        env.cli("train", "--pairs", "ETH/EUR", "--days", "2", "--seed", seed)
        new = json.loads(Path(env.env["PREDCACHE_MODELS_DIR"], "ETH-EUR.json").read_text())
        marks.append((time.monotonic() - t0, new["version"]))
        time.sleep(6)
    for t in threads:
        t.join()
    srv.stop()
    last_old: list[object] = []
    for i, (at, version) in enumerate(marks):
        end = starts[i + 1] if i + 1 < len(marks) else 1e9
        window = [r for r in results if at <= r[0] < end]
        stale = [r[0] - at for r in window if r[2] != version]
        if window and window[-1][2] != version:
            last_old.append("never (old until the next retrain or the end)")
        else:
            last_old.append(round(max(stale), 1) if stale else 0.0)
    return [
        ("requests", len(results)),
        ("non-200 answers", sum(1 for r in results if r[1] != 200)),
        ("s after each retrain to the last old-version answer", last_old),
    ]


def plant_future(env: Env, ahead_s: float) -> None:
    """An entry at the exact key predict reads, ``created_at`` ahead of now."""
    code = (
        "import sys,time\n"
        "from predcache.factory import build_predictor\n"
        "p = build_predictor()\n"
        "s = p.get_or_compute('ETH/EUR', 300)\n"
        "e = dict(s.entry); e['created_at'] = time.time() + float(sys.argv[1])\n"
        "e['predicted_price'] = 12345.0\n"
        "p.store.set(s.key, e, 86400 * 3)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(ahead_s)], env=env.env, check=True)


def scenario_skew(env: Env) -> Figures:
    """Entries written by a host whose clock is 1 day, 2 h or 60 s ahead, then ``predict``
    (plain and ``--max-age 1s``) and ``cache stats``."""
    figures: Figures = []
    for ahead, name in ((86400, "1 day"), (7200, "2 h"), (60, "60 s")):
        plant_future(env, ahead)
        st = json.loads(env.cli("cache", "stats", "--json").stdout)
        out = json.loads(env.cli("predict", "ETH/EUR", "--json").stdout)
        again = json.loads(env.cli("predict", "ETH/EUR", "--json", "--max-age", "1s").stdout)
        figures += [
            (f"entry {name} ahead: served as (plain, --max-age 1s)",
             f"{out['cache']}, {again['cache']}"),
            (f"entry {name} ahead: the planted price served", out["predicted_price"] == 12345.0),
            (f"entry {name} ahead: cache stats oldest_age_s", st["oldest_age_s"]),
        ]  # fmt: skip
    return figures


def scenario_flood(env: Env, backend: str | None = None) -> Figures:
    """200 concurrent ``no-cache`` requests for one key (100 ms model), a warm key meanwhile."""
    extra = ("--backend", backend) if backend else ()
    srv = Server(env, "--model-delay", "100ms", "--ttl", "90s", *extra)
    srv.predict("BTC/USD")
    srv.predict("ETH/EUR")
    calls0 = srv.metric("predcache_model_calls_total")
    hit_ms: list[float] = []
    done = threading.Event()

    def hits() -> None:
        while not done.is_set() and len(hit_ms) < 200:
            t = time.perf_counter()
            srv.predict("BTC/USD")
            hit_ms.append((time.perf_counter() - t) * 1000)
            time.sleep(0.05)

    conns = [http.client.HTTPConnection("127.0.0.1", srv.port, timeout=120) for _ in range(200)]
    for c in conns:
        c.connect()  # connected first, so the 200 requests really are concurrent
    barrier = threading.Barrier(200)

    def flood(c: http.client.HTTPConnection) -> float:
        barrier.wait()
        t = time.perf_counter()
        c.request("GET", "/predict?pair=ETH/EUR&horizon=5m", headers={"cache-control": "no-cache"})
        c.getresponse().read()
        c.close()
        return time.perf_counter() - t

    h = threading.Thread(target=hits)
    h.start()
    with ThreadPoolExecutor(200) as pool:
        waits = list(pool.map(flood, conns))
    done.set()
    h.join()
    calls = srv.metric("predcache_model_calls_total") - calls0
    srv.stop()
    hit_ms.sort()
    return [
        ("model calls for 200 no-cache requests", int(calls)),
        ("slowest no-cache request (s)", round(max(waits), 1)),
        ("warm-key hit during the flood, max (ms)", round(hit_ms[-1], 1)),
        ("warm-key hit during the flood, median (ms)", round(hit_ms[len(hit_ms) // 2], 1)),
    ]


def raw_request(port: int, head: bytes, body_chunks: int = 0, timeout: float = 60) -> str:
    """Send ``head`` (and a header of ``body_chunks`` MiB); the status line or what failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(head)
            if body_chunks:
                s.sendall(b"X-Big: ")
                chunk = b"a" * (1 << 20)
                for _ in range(body_chunks):
                    s.sendall(chunk)
                s.sendall(b"\r\n\r\n")
            return s.recv(200).split(b"\r\n", 1)[0].decode() or "closed"
    except OSError as exc:
        return f"{exc.__class__.__name__}"


def scenario_headers(env: Env) -> Figures:
    """A 100 MiB header line; a half-open connection; 300 idle connections."""
    srv = Server(env, "--ttl", "90s")
    srv.predict()
    pid = srv.proc.pid
    before = rss_mb(pid)
    head = b"GET /predict?pair=ETH/EUR HTTP/1.1\r\nHost: x\r\n"
    big = raw_request(srv.port, head, body_chunks=100)
    after = rss_mb(pid)
    half = socket.create_connection(("127.0.0.1", srv.port))
    half.sendall(b"GET /predict HTTP/1.1\r\nHost: x\r\n")
    time.sleep(12)
    half.settimeout(0.5)
    try:
        answer = half.recv(100)  # the server's refusal, or b"" when it closed
        held = False
    except TimeoutError:
        held, answer = True, b""
    except OSError:
        held, answer = False, b""
    half.close()
    idle = []
    for _ in range(300):
        try:
            idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=2))
        except OSError:
            break
    try:
        status = srv.predict(horizon="1m")[0]
    except OSError as exc:
        status = exc.__class__.__name__
    extra = raw_request(srv.port, head + b"\r\n", timeout=5)
    for s in idle:
        s.close()
    srv.stop()
    return [
        ("100 MiB header line answered", big),
        ("server RSS before / after it (MB)", f"{before} / {after}"),
        ("half-open connection still held after 12 s", held),
        ("what the half-open connection got", answer.split(b"\r\n", 1)[0].decode() or "-"),
        ("idle connections accepted", len(idle)),
        ("a real request with 300 idle connections open", status),
        ("connection 301 answered", extra),
    ]


def conn_owner(port: int, pids: list[int]) -> int | None:
    """The pid among ``pids`` holding an established connection on local ``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "01":
            inodes.add(f[9])
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None


HEADERS_TRIED = ("Cache-Control", "Pragma", "If-None-Match", "Content-Type", "Accept")


def scenario_header_bytes(env: Env) -> Figures:
    """``Cache-Control: max-age=`` with byte 0xB2 (a superscript two) and other non-ASCII
    digits, then 200 random byte strings (seeded): 100 of any byte but CR, LF and NUL, 100 of
    the bytes a header value may hold (visible ASCII, space, tab, 0x80-0xFF), in each header
    the server reads or passes on."""
    import random

    srv = Server(env, "--ttl", "90s")
    srv.predict()
    rnd = random.Random(17)
    anything = [b for b in range(1, 256) if b not in (10, 13)]
    field = [9, *range(0x20, 0x7F), *range(0x80, 0x100)]
    values = [b"max-age=\xb2", b"max-age=\xd9\xa3", b"max-stale=\xef\xbc\x91"] + [
        bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 60)))
        for alphabet in (anything, field)
        for _ in range(100)
    ]
    statuses: dict[int | str, int] = {}
    first = ""
    for name in HEADERS_TRIED:
        for value in values:
            head = (
                b"GET /predict?pair=ETH/EUR&horizon=5m HTTP/1.1\r\nHost: x\r\n"
                + name.encode() + b": " + value + b"\r\nConnection: close\r\n\r\n"
            )  # fmt: skip
            line = raw_request(srv.port, head, timeout=10)
            code: int | str = int(line.split()[1]) if line.startswith("HTTP/") else line
            statuses[code] = statuses.get(code, 0) + 1
            if not first:
                first = line
    log = srv.log.read_text()
    srv.stop()
    return [
        ("requests (5 headers x 203 values)", sum(statuses.values())),
        ("`Cache-Control: max-age=\\xb2` answered", first),
        ("answers by status", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))),
        ("500 answers", statuses.get(500, 0)),
        ("tracebacks in the server log", log.count("Traceback")),
    ]


def scenario_lease(env: Env) -> Figures:
    """kill -9 of the worker computing a key (3 s model), then the next request for that key."""
    srv = Server(env, "--workers", "2", "--model-delay", "3s", "--ttl", "90s")
    time.sleep(1)
    th = threading.Thread(target=lambda: _quiet(lambda: srv.predict("ETH/EUR", "1h")))
    th.start()
    time.sleep(1.0)
    victim = conn_owner(srv.port, srv.workers())
    if victim is not None:
        os.kill(victim, signal.SIGKILL)
    th.join()
    t = time.perf_counter()
    status = srv.predict("ETH/EUR", "1h")[0]
    took = time.perf_counter() - t
    srv.stop()
    return [
        ("holder found and killed", victim is not None),
        ("next request for the key: status", status),
        ("next request for the key: seconds (model 3 s)", round(took, 1)),
    ]


def _quiet(fn: Callable[[], object]) -> None:
    with contextlib.suppress(OSError):
        fn()


def scenario_orphans(env: Env) -> Figures:
    """kill -9 of ``serve --workers 2``'s parent; workers, port and metrics dir after 5 s."""
    env.env["PROMETHEUS_MULTIPROC_DIR"] = str(env.root / "inherited-metrics")
    Path(env.env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
    one = Server(env, "--ttl", "90s")
    one.predict()
    inherited = Path(env.env["PROMETHEUS_MULTIPROC_DIR"]).exists() and any(
        Path(env.env["PROMETHEUS_MULTIPROC_DIR"]).iterdir()
    )
    one.stop()
    del env.env["PROMETHEUS_MULTIPROC_DIR"]
    before = set(Path(tempfile.gettempdir()).glob("predcache-metrics-*"))
    srv = Server(env, "--workers", "2", "--ttl", "90s")
    workers = srv.workers()
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait()
    time.sleep(5)
    left = [p for p in workers if alive(p)]
    try:
        answered = srv.predict()[0]
    except OSError:
        answered = "refused"
    leaked = set(Path(tempfile.gettempdir()).glob("predcache-metrics-*")) - before
    try:
        again = Server(env, "--workers", "1", port=srv.port)
        time.sleep(8)  # /health may have been answered by an orphan: is the new serve alive?
        code = again.proc.poll()
        reuse = "yes" if code is None else f"no (it exited {code})"
        again.stop()
    except RuntimeError:
        reuse = "no"
    for p in left:
        os.kill(p, signal.SIGKILL)
    for d in leaked:
        subprocess.run(["rm", "-rf", str(d)], check=False)
    return [
        ("one worker wrote into an inherited PROMETHEUS_MULTIPROC_DIR", inherited),
        ("workers alive 5 s after the parent's kill -9", f"{len(left)} of {len(workers)}"),
        ("port answered after the parent died", answered),
        ("metrics dirs leaked", len(leaked)),
        ("a new serve on that port started", reuse),
    ]


def scenario_modes(env: Env) -> Figures:
    """A cache.db left 0644 (a crash before the chmod), then predict opens it."""
    env.cli("predict", "ETH/EUR")
    db = Path(env.env["PREDCACHE_CACHE_DIR"]) / "cache.db"
    os.chmod(db, 0o644)
    env.cli("predict", "ETH/EUR", "--horizon", "1m")
    return [("cache.db mode after predict opened a 0644 one", oct(stat.S_IMODE(db.stat().st_mode)))]


def scenario_deleted_dir(env: Env) -> Figures:
    """The cache directory deleted under a running server, then requests and the CLI."""
    srv = Server(env, "--ttl", "90s")
    srv.predict()
    cache = Path(env.env["PREDCACHE_CACHE_DIR"])
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    time.sleep(1.5)  # the store looks at its file at most once a second
    first = srv.predict(horizon="1m")
    second = srv.predict(horizon="1m")
    cli = json.loads(env.cli("predict", "ETH/EUR", "--horizon", "1m", "--json").stdout)["cache"]
    log = srv.log.read_text()
    srv.stop()
    return [
        ("server after the delete: two requests", f"{first[0]} {first[2]!r}, {second[2]!r}"),
        ("CLI predict of the same key after the server stored it", cli),
        ("warning in the server log", "warning" in log.lower()),
    ]


def scenario_wrongtype(env: Env, redis_url: str) -> Figures:
    """A Redis list at the exact key predict reads, then predict twice."""
    code = (
        "import redis,sys\n"
        "from predcache.factory import build_predictor\n"
        "p = build_predictor(backend=sys.argv[1])\n"
        "key = p.store.inner.key(p.key_for('ETH/EUR', 300))\n"
        "r = redis.Redis.from_url(sys.argv[1]); r.delete(key); r.lpush(key, 'x')\n"
    )
    subprocess.run([sys.executable, "-c", code, redis_url], env=env.env, check=True)
    runs = [env.cli("predict", "ETH/EUR", "--json", "--backend", redis_url) for _ in range(2)]
    seen = [
        json.loads(r.stdout)["cache"] if r.returncode == 0 else f"exit {r.returncode}" for r in runs
    ]
    return [("predict twice over a WRONGTYPE key", ", ".join(seen))]


SCENARIOS: dict[str, Callable[[Env], Figures]] = {
    "retrain": scenario_retrain,
    "skew": scenario_skew,
    "flood": scenario_flood,
    "header-bytes": scenario_header_bytes,
    "headers": scenario_headers,
    "lease": scenario_lease,
    "orphans": scenario_orphans,
    "modes": scenario_modes,
    "deleted-dir": scenario_deleted_dir,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--redis", default="", help="redis://... for the WRONGTYPE scenario")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    if args.redis:
        SCENARIOS["wrongtype"] = lambda env: scenario_wrongtype(env, args.redis)
        SCENARIOS["flood-redis"] = lambda env: scenario_flood(env, args.redis)
        names += [] if args.only else ["flood-redis", "wrongtype"]
    print("| scenario | figure | value |\n| --- | --- | --- |")
    for name in names:
        env = Env()
        try:
            figures = SCENARIOS[name](env)
        except Exception as exc:  # a scenario that breaks is itself a figure
            figures = [("failed", f"{exc.__class__.__name__}: {exc}"[:200])]
        for figure, value in figures:
            print(f"| {name} | {figure} | {value} |", flush=True)
        subprocess.run(["rm", "-rf", str(env.root)], check=False)


if __name__ == "__main__":
    main()
