"""The open-loop load generator: send a workload's requests at their scheduled times.

Open loop means the schedule never waits for the server: request ``i`` is due at
``offsets[i]`` seconds after the start whatever happened to the requests before it, so a slow
answer cannot hold back the next arrivals (a closed loop would, and would hide the queueing it
causes: coordinated omission). Latency is measured **from the scheduled time**, so a request
the client sent late carries its lateness; the lateness itself (``send lag``) is recorded too.

Why threads and ``http.client``: on this kind of machine a plain keep-alive ``http.client``
request is the cheapest way Python has to send one HTTP request and read its answer (httpx
costs more per request: docs/bench.md, "Why threads with http.client"), and an asyncio loop
wakes its timers on a millisecond grid. Here each worker thread owns one keep-alive
connection and is, in turn, the thread that takes the next due request, sleeps until its time
(with the kernel's timer slack set to 1 ns, so the wake-up is on time) and sends it itself: no
hand-off between threads on the hot path.
A worker that takes a request while no other worker is free starts one more, so hundreds of
slow requests can be in flight at once (1 s model calls at 200/s) up to
:data:`MAX_WORKERS`.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from predcache.errors import PredcacheError

MAX_WORKERS = 2000
INITIAL_WORKERS = 8
#: a worker claims its request this long before it is due, then sleeps until the due time
CLAIM_AHEAD_S = 0.02
REQUEST_TIMEOUT_S = 30.0
#: prctl(PR_SET_TIMERSLACK): the kernel may delay a sleeping thread's wake-up by its timer
#: slack (50 us by default); 1 ns asks for the timer's own precision
_PR_SET_TIMERSLACK = 29
HEADERS = {"content-type": "application/json", "accept": "application/json"}


def precise_sleeps() -> None:
    """Ask Linux for precise wake-ups in this thread (no-op elsewhere or when refused)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


@dataclass(frozen=True)
class Schedule:
    """What to send: request ``i`` at ``offsets[i]`` seconds, with body ``bodies[keys[i]]``."""

    offsets: np.ndarray  # float seconds from the start, non-decreasing
    keys: np.ndarray  # int index into bodies
    bodies: Sequence[bytes]

    @property
    def requests(self) -> int:
        return len(self.offsets)


@dataclass(frozen=True)
class OpenLoopLog:
    """Per-request records, in schedule order. ``status`` 0: no response (connection error,
    timeout); ``cache`` is the raw ``Cache-Status`` header ('' when absent)."""

    status: np.ndarray
    latency_ms: np.ndarray  # from the scheduled time to the whole answer read
    send_lag_ms: np.ndarray  # from the scheduled time to the moment the request was written
    cache: list[str]
    wall_s: float
    workers: int


class Target:
    """Where a live run's POSTs go: host, port and path of a target URL; one keep-alive
    ``http.client`` connection per :meth:`connect` (shared by the open and closed loops)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        conn.connect()
        return conn


class _State:
    """Shared counters of one run (changed under ``guard``)."""

    def __init__(self) -> None:
        self.next = 0
        self.idle = 0
        self.workers = 0
        self.done = 0
        self.failed: OSError | None = None
        self.finished: list[int] = []  # schedule indices in the order they were answered
        self.stopped = False  # the run ended early (Ctrl-C): no request is claimed any more


def post(
    conn: http.client.HTTPConnection, target: Target, body: bytes
) -> tuple[http.client.HTTPConnection, int, str]:
    """POST ``body``; on a dropped keep-alive connection (the server closes idle ones),
    reconnect and send once more. (connection, status or 0, Cache-Status)."""
    for attempt in (0, 1):
        try:
            conn.request("POST", target.path, body, HEADERS)
            resp = conn.getresponse()
            resp.read()
            return conn, resp.status, resp.getheader("cache-status") or ""
        except (OSError, http.client.HTTPException):
            conn.close()
            try:
                conn = target.connect()
            except OSError:
                return conn, 0, ""
            if attempt:
                break
    return conn, 0, ""


def run_open_loop(
    url: str,
    schedule: Schedule,
    *,
    progress: Callable[[int], None] | None = None,
    record: Callable[[list[tuple[int, int, float, float, str]]], None] | None = None,
) -> OpenLoopLog:
    """Send ``schedule`` to ``url`` (POST, JSON bodies) in real time; one record per request.

    ``record`` gets ``(index, status, latency_ms, send_lag_ms, cache)`` of the requests
    answered since its last call, from the main thread a few times a second and once more
    however the run ends (Ctrl-C included), so what was measured can be kept as it comes.

    Leader and followers: the free workers queue on ``take``; the one holding it waits until
    the next request is :data:`CLAIM_AHEAD_S` from due, claims it, lets go, sleeps until it is
    due and sends it; the next in line meanwhile leads. When no other worker is free at a
    claim, one more is started first.
    """
    n = schedule.requests
    target = Target(url)
    offsets = schedule.offsets.tolist()
    keys = schedule.keys.tolist()
    bodies = list(schedule.bodies)
    status = [0] * n
    latency = [0.0] * n
    lag = [0.0] * n
    cache = [""] * n
    st = _State()
    guard = threading.Lock()
    take = threading.Lock()
    perf, sleep = time.perf_counter, time.sleep
    start = perf() + 0.1  # let the first workers connect

    def spawn() -> None:
        st.workers += 1
        threading.Thread(target=worker, daemon=True).start()

    def worker() -> None:
        precise_sleeps()
        try:
            conn = target.connect()
        except OSError as exc:
            with guard:
                st.failed = st.failed or exc
                st.workers -= 1
            return
        with guard:
            st.idle += 1
        held = [conn]  # post may replace it after a reconnect
        try:
            serve_requests(held)
        finally:
            held[0].close()

    def serve_requests(held: list[http.client.HTTPConnection]) -> None:
        """Claim, wait, send, record: until the schedule is exhausted."""
        while True:
            with take:
                i = st.next
                if i >= n or st.stopped:
                    return
                due = start + offsets[i]
                early = due - CLAIM_AHEAD_S - perf()
                if early > 0:
                    sleep(early)  # the leader waits; the followers queue behind it
                st.next = i + 1
                with guard:
                    st.idle -= 1
                    if st.idle == 0 and st.workers < MAX_WORKERS:
                        spawn()  # nobody is free for the request after this one
            # the next leader takes over now, well before this request is sent, so that its
            # wake-up never competes with the send for the GIL or a CPU
            wait = due - perf()
            if wait > 0:
                sleep(wait)
            sent = perf()
            held[0], status[i], cache[i] = post(held[0], target, bodies[keys[i]])
            latency[i] = (perf() - due) * 1000.0
            lag[i] = (sent - due) * 1000.0 if sent > due else 0.0
            with guard:
                st.idle += 1
                st.done += 1
                st.finished.append(i)

    with guard:
        for _ in range(min(INITIAL_WORKERS, max(1, n))):
            spawn()
    deadline = start + (offsets[-1] if n else 0.0) + 2 * REQUEST_TIMEOUT_S + 5.0
    handed = 0

    def hand_over() -> None:
        nonlocal handed
        with guard:
            new = st.finished[handed:]
        handed += len(new)
        if record is not None and new:
            record([(i, status[i], latency[i], lag[i], cache[i]) for i in new])

    try:
        while True:
            with guard:
                done, alive, failed = st.done, st.workers, st.failed
            if progress is not None:
                progress(done)
            hand_over()
            if done >= n or perf() > deadline:
                break
            if alive == 0 and failed is not None:
                raise PredcacheError(f"cannot connect to {url}: {failed.strerror or failed}")
            time.sleep(0.1)
    finally:
        st.stopped = True
        hand_over()
    return OpenLoopLog(
        status=np.array(status, dtype=np.int64),
        latency_ms=np.array(latency),
        send_lag_ms=np.array(lag),
        cache=cache,
        wall_s=perf() - start,
        workers=st.workers,
    )


def plain_loop(url: str, body: bytes, requests: int) -> np.ndarray:
    """Latencies (ms) of ``requests`` POSTs one after another on one keep-alive
    ``http.client`` connection: the reference for the client's own cost."""
    target = Target(url)
    conn = target.connect()
    out = np.empty(requests)
    perf = time.perf_counter
    try:
        for i in range(requests):
            t0 = perf()
            conn.request("POST", target.path, body, HEADERS)
            resp = conn.getresponse()
            resp.read()
            out[i] = (perf() - t0) * 1000.0
    finally:
        conn.close()
    return out
