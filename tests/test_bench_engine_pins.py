"""The simulated-clock engine's every figure, exact, on hand-worked event sequences.

The engine adds three *measured* times to the simulated ones: the store read (``lookup_ms``),
the model inference (``compute_ms``) and the store write. Here the three perf counters they
are read from (in ``bench/timedstore.py``, ``compute.py`` and ``bench/engine.py``) are replaced
by counters that move a fixed step at each reading, so a read takes exactly LOOKUP_MS, an
inference COMPUTE_MS and a write WRITE_MS (powers of two: every sum below is exact in floats).
Everything else is real: the predictor, the memory store (or a real store wrapped to fail on
chosen calls), the seeded dice. The model is a deterministic one whose price is the time it
was computed at, so each served price names the computation that made it.

Times are offsets from T0 (1 ms is far above the float resolution at T0: every time and age
below is exact). TTL 10 s and a simulated model delay of 1 s unless a test says otherwise.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

from predcache import compute
from predcache.bench import engine, timedstore
from predcache.bench.engine import OUTCOMES, Replay, replay, replay_stream
from predcache.bench.records import Chunk
from predcache.bench.workload import Workload
from predcache.entry import Entry
from predcache.errors import BadHorizonError, StoreError
from predcache.registry import Computed
from predcache.stampede import Strategy
from predcache.store.base import ProxyStore
from predcache.store.memory import MemoryStore

T0 = 1_800_000_000.0  # a whole minute
A, B = ("ETH/EUR", 300), ("BTC/USD", 60)
LOOKUP_MS, COMPUTE_MS, WRITE_MS = 15.625, 31.25, 62.5  # 2**-6 s, 2**-5 s, 2**-4 s
MISS_MS = LOOKUP_MS + 1000.0 + COMPUTE_MS + WRITE_MS  # read, model delay, inference, write
NAN = math.nan


class Models:
    """A deterministic model: the predicted price is the time it is computed at, its market
    data 7 s older."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, float]] = []

    def version(self, pair: str) -> str:
        return "m1"

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        if horizon_s not in (60, 300):
            raise BadHorizonError(f"horizon {horizon_s} not trained")

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        self.calls.append((pair, horizon_s, at - T0))
        return Computed(predicted_price=at, as_of=at - 7.0, last_price=1.0)


class Ticker:
    """A perf counter that moves ``step`` seconds at each reading (and when told to)."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Ticker:
    """The measured times made exact; returns the engine's own counter (writes, wall time).
    Each measurement is two readings with nothing read between: exactly one step."""
    for module, step_ms in ((timedstore, LOOKUP_MS), (compute, COMPUTE_MS)):
        clock = types.SimpleNamespace(perf_counter=Ticker(step_ms / 1000.0))
        monkeypatch.setattr(module, "time", clock)
    mine = Ticker(WRITE_MS / 1000.0)
    monkeypatch.setattr(engine, "time", types.SimpleNamespace(perf_counter=mine))
    return mine


def workload(rows: list[tuple[float, tuple[str, int]]], seed: int | None = None) -> Workload:
    keys = list(dict.fromkeys(key for _, key in rows))
    return Workload(
        "trace",
        np.array([T0 + t for t, _ in rows], dtype=np.float64),
        np.array([keys.index(key) for _, key in rows], dtype=np.int64),
        keys,
        rate=1.0,
        zipf=None,
        seed=seed,
    )


def run(
    rows: list[tuple[float, tuple[str, int]]],
    stampede: Strategy = "coalesce",
    *,
    ttl: float = 10.0,
    delay: float = 1.0,
    seed: int | None = None,
    models: Models | None = None,
    **settings: object,
) -> Replay:
    return replay(
        workload(rows, seed),
        models or Models(),
        ttl_s=ttl,
        model_delay_s=delay,
        backend="memory",
        cache_dir=None,
        namespace="pins",
        stampede=stampede,
        **settings,  # type: ignore[arg-type]
    )


def outcomes(rep: Replay) -> list[str]:
    return [OUTCOMES[o] for o in rep.outcome.tolist()]


def same(values: np.ndarray, expected: list[float]) -> bool:
    """Equal value for value, NaN where NaN is expected (no tolerance)."""
    got = values.tolist()
    return len(got) == len(expected) and all(
        (math.isnan(g) and math.isnan(e)) or g == e for g, e in zip(got, expected, strict=True)
    )


def test_coalesce_hand_worked(ticks: Ticker) -> None:
    rows = [
        (0.0, A),  # miss: computes 0 -> 1
        (0.5, A),  # waits for it: 0.5 s + its inference; served at age 1 + inference
        (0.75, B),  # miss: 0.75 -> 1.75 (two computations in flight)
        (1.5, B),  # A's entry is written first (its request's latency gets the write); waits
        (2.0, A),  # B's entry written; A's is 2 s old: hit
        (10.0, A),  # 10 s old == TTL: miss, 10 -> 11
        (10.75, B),  # 10 s old: miss, 10.75 -> 11.75 (two in flight again)
        (11.0, A),  # A's computation ends exactly now: written first, a hit at age 1
        (30.0, B),  # 19.25 s old: miss, written when the replay ends
    ]
    rep = run(rows)
    assert outcomes(rep) == [
        "miss", "collapsed", "miss", "collapsed", "hit", "miss", "miss", "hit", "miss",
    ]  # fmt: skip
    assert rep.latency_ms.tolist() == [
        MISS_MS, LOOKUP_MS + 500 + COMPUTE_MS, MISS_MS, LOOKUP_MS + 250 + COMPUTE_MS, LOOKUP_MS,
        MISS_MS, MISS_MS, LOOKUP_MS, MISS_MS,
    ]  # fmt: skip
    assert rep.lookup_ms.tolist() == [LOOKUP_MS] * 9
    assert rep.model_ms.tolist() == [COMPUTE_MS, 0, COMPUTE_MS, 0, 0, COMPUTE_MS, COMPUTE_MS, 0,
                                     COMPUTE_MS]  # fmt: skip
    assert rep.age_s.tolist() == [0, 1.03125, 0, 1.03125, 2, 0, 0, 1, 0]
    served = [0, 0, 0.75, 0.75, 0, 10, 10.75, 10, 30]
    assert rep.served_price.tolist() == [T0 + s for s in served]
    assert rep.served_as_of.tolist() == [T0 + s - 7 for s in served]
    assert (rep.model_calls, rep.duplicate_calls, rep.max_inflight, rep.backend_errors) == (
        5, 0, 2, 0,
    )  # fmt: skip
    assert (rep.ttl_s, rep.stampede, rep.model_runs) == (10.0, "coalesce", 5)
    assert not rep.failed.any() and not rep.stale_if_error.any()


def test_none_lets_every_request_compute(ticks: Ticker) -> None:
    rows = [(0.0, A), (0.5, A), (0.75, A), (1.25, A), (2.0, A)]
    rep = run(rows, "none")
    # 0, 0.5, 0.75 compute (ends 1, 1.5, 1.75); at 1.25 the entry of 0 is stored (a hit, age
    # 1.25); at 2.0 the last one written is the one made at 0.75 (age 1.25)
    assert outcomes(rep) == ["miss", "miss", "miss", "hit", "hit"]
    assert (rep.model_calls, rep.duplicate_calls, rep.max_inflight) == (3, 2, 3)
    assert rep.age_s.tolist() == [0, 0, 0, 1.25, 1.25]
    assert rep.served_price.tolist() == [T0, T0 + 0.5, T0 + 0.75, T0, T0 + 0.75]
    assert rep.latency_ms.tolist() == [MISS_MS] * 3 + [LOOKUP_MS] * 2


def test_stale_while_revalidate_serves_within_the_grace_and_refreshes_once(ticks: Ticker) -> None:
    rows = [
        (0.0, A),  # miss: 0 -> 1
        (12.0, A),  # 12 s old, within 10 + 5: stale at once; a refresh 12 -> 13 starts
        (12.5, A),  # stale again: the refresh is running, no second one
        (13.0, A),  # the refresh ends now: written first, a hit at age 1
        (30.0, A),  # 18 s old, past the grace: miss, 30 -> 31
        (30.5, A),  # waits for it
    ]
    rep = run(rows, "stale-while-revalidate", stale_grace_s=5.0)
    assert outcomes(rep) == ["miss", "stale", "stale", "hit", "miss", "collapsed"]
    assert rep.age_s.tolist() == [0, 12, 12.5, 1, 0, 1.03125]
    assert rep.served_price.tolist() == [T0, T0, T0, T0 + 12, T0 + 30, T0 + 30]
    # the refresh is nobody's latency: the stale answers cost one read
    assert rep.latency_ms.tolist() == [
        MISS_MS, LOOKUP_MS, LOOKUP_MS, LOOKUP_MS, MISS_MS, LOOKUP_MS + 500 + COMPUTE_MS,
    ]  # fmt: skip
    assert rep.model_ms.tolist() == [COMPUTE_MS, 0, 0, 0, COMPUTE_MS, 0]
    assert (rep.model_calls, rep.duplicate_calls, rep.max_inflight) == (3, 0, 1)


def test_a_grace_without_stale_while_revalidate_serves_nothing_stale(ticks: Ticker) -> None:
    rep = run([(0.0, A), (12.0, A), (12.5, A)], "coalesce", stale_grace_s=5.0)
    assert outcomes(rep) == ["miss", "miss", "collapsed"]
    assert rep.served_price.tolist() == [T0, T0 + 12, T0 + 12]


#: refresh-ahead's die (``random.Random(0)``: the workload has no seed) first draws 0.8444,
#: 0.7580, 0.4206, 0.2589, so ``u = 1 - draw`` is 0.1556, 0.2420, 0.5794, 0.7411
U1, U2, U3, U4 = (1 - d for d in (0.8444218515250481, 0.7579544029403025, 0.420571580830845,
                                  0.25891675029296335))  # fmt: skip
#: XFetch (beta 1) refreshes a hit when ``now - delta * ln(u) >= created + TTL``, delta being
#: the model delay plus the measured inference, 1.03125 s: with U1 1.9188 s early, with U2
#: 1.4627 s, with U3 0.5628 s, with U4 0.3090 s
DELTA = 1.03125
EARLY_S = -DELTA * math.log(U2)


@pytest.mark.parametrize(("margin", "refreshed"), [(2e-6, True), (-2e-6, False)])
def test_refresh_ahead_refreshes_a_hit_when_xfetch_says_so(
    ticks: Ticker, margin: float, refreshed: bool
) -> None:
    """The third request arrives 2 us after (or before) the early expiry of the die's second
    draw: the delay, the measured inference and the draw all count to the microsecond."""
    assert [-DELTA * math.log(u) for u in (U1, U3, U4)] == pytest.approx(
        [1.9188, 0.5628, 0.3090], abs=1e-4
    )
    second = round(10.0 - EARLY_S + margin, 6)
    rows = [(0.0, A), (5.0, A), (second, A), (9.5, A), (10.5, A)]
    models = Models()
    rep = run(rows, "refresh-ahead", models=models)
    # 5: 5 + 1.9188 < 10, no refresh
    assert outcomes(rep) == ["miss", "hit", "hit", "hit", "hit"]
    if refreshed:
        # the refresh runs second -> second + 1; 9.5 is a hit on the old entry while it runs
        # (no draw); 10.5 is served the refreshed entry
        assert [round(c[2], 6) for c in models.calls] == [0.0, second]
        assert rep.served_price.tolist() == [T0, T0, T0, T0, T0 + second]
        assert rep.age_s.tolist()[4] == pytest.approx(10.5 - second, abs=1e-6)
    else:
        # no refresh at second; 9.5 draws the third: 9.5 + 0.5628 >= 10, refreshes 9.5 -> 10.5
        # (written as 10.5 arrives: served at age 1)
        assert [c[2] for c in models.calls] == [0.0, 9.5]
        assert rep.served_price.tolist() == [T0, T0, T0, T0, T0 + 9.5]
        assert rep.age_s.tolist()[4] == 1.0
    assert (rep.model_calls, rep.max_inflight, rep.duplicate_calls) == (2, 1, 0)
    assert rep.latency_ms.tolist() == [MISS_MS] + [LOOKUP_MS] * 4
    assert rep.model_ms.tolist() == [COMPUTE_MS, 0, 0, 0, 0]


def test_refresh_ahead_draws_only_when_nothing_is_in_flight(ticks: Ticker) -> None:
    """A hit while the refresh runs draws nothing, so the next hit gets the third draw."""
    second = round(10.0 - EARLY_S + 2e-6, 6)
    # second + 0.5: the refresh is running (a draw there would be the third, and at age 9.04
    # would not refresh: 9.04 + 0.56 < 10). second + 9.6: the refreshed entry is 9.6 s old; the
    # third draw refreshes it (9.6 + 0.5628 >= 10), where the fourth would not (9.6 + 0.309)
    rows = [(0.0, A), (5.0, A), (second, A), (second + 0.5, A), (second + 9.6, A)]
    models = Models()
    rep = run(rows, "refresh-ahead", models=models)
    assert outcomes(rep) == ["miss", "hit", "hit", "hit", "hit"]
    assert [round(c[2], 6) for c in models.calls] == [0.0, second, round(second + 9.6, 6)]
    assert rep.model_calls == 3


def test_a_model_queue_delays_the_start(ticks: Ticker) -> None:
    """One simulated model worker: it stays busy for the delay and the measured inference."""
    rows = [(0.0, A), (0.5, B), (1.5, A), (1.75, B)]
    rep = run(rows, model_concurrency=1)
    # A: 0 -> 1, the worker is free at 1.03125; B starts then (created 1.03125), ends 2.03125
    assert outcomes(rep) == ["miss", "miss", "hit", "collapsed"]
    assert rep.latency_ms.tolist() == [
        MISS_MS, LOOKUP_MS + 1531.25 + COMPUTE_MS + WRITE_MS, LOOKUP_MS,
        LOOKUP_MS + 281.25 + COMPUTE_MS,
    ]  # fmt: skip
    assert rep.age_s.tolist() == [0, 0, 1.5, 1.03125]
    assert rep.served_price.tolist() == [T0, T0 + 1.03125, T0, T0 + 1.03125]
    assert rep.max_inflight == 2
    # two workers: no queue
    rep = run(rows, model_concurrency=2)
    assert rep.served_price.tolist() == [T0, T0 + 0.5, T0, T0 + 0.5]
    assert rep.latency_ms.tolist()[1] == MISS_MS


def test_simulated_failures_stale_if_error_and_retries(ticks: Ticker) -> None:
    """Seed 2's failure die (``random.Random("2:model-fail")``) draws 0.718, 0.196, 0.169,
    0.073, 0.069, 0.122, 0.996, 0.073: at rate 0.5 computations 2-6 and 8 fail."""
    rows = [
        (0.0, A),  # c1 ok: 0 -> 1
        (10.0, A),  # expired: c2 fails 10 -> 11; the entry of 0 is 11 s old then, < 10 + 5:
        # served stale (stale-if-error) at age 11 + inference
        (10.5, A),  # waits for c2, which fails: computes from 11 (c3, fails too, 12 s old)
        (20.0, A),  # 20 s old: c4 fails at 21, too old for stale-if-error: failed
        (20.5, A),  # waits for c4 then computes c5 from 21: fails, 22 s old: failed
        (30.0, A),  # c6 fails at 31: failed
        (30.5, A),  # waits for c6; c7 from 31 succeeds: 31 -> 32
        (31.5, A),  # waits for c7 (its inference and the failed one's before it)
        (40.0, A),  # c7's entry (created 31), 9 s old: hit
        (42.0, A),  # 11 s old: c8 fails at 43 (12 s old): stale
    ]
    rep = run(rows, seed=2, model_fail_rate=0.5, stale_if_error_s=5.0)
    assert outcomes(rep) == [
        "miss", "stale", "stale", "miss", "miss", "miss", "miss", "collapsed", "hit", "stale",
    ]  # fmt: skip
    assert np.flatnonzero(rep.failed).tolist() == [3, 4, 5]
    assert np.flatnonzero(rep.stale_if_error).tolist() == [1, 2, 9]
    retry = LOOKUP_MS + 1500 + 2 * COMPUTE_MS  # waited 0.5 s, then 1 s; two inferences
    assert same(rep.latency_ms, [
        MISS_MS, MISS_MS - WRITE_MS, retry, MISS_MS - WRITE_MS, retry, MISS_MS - WRITE_MS,
        retry + WRITE_MS, LOOKUP_MS + 500 + 2 * COMPUTE_MS, LOOKUP_MS, MISS_MS - WRITE_MS,
    ])  # fmt: skip
    assert rep.model_ms.tolist() == [COMPUTE_MS] * 7 + [0, 0, COMPUTE_MS]
    assert same(rep.age_s, [0, 11.03125, 12.0625, NAN, NAN, NAN, 0, 1.0625, 9, 12.03125])
    assert same(rep.served_price, [T0, T0, T0, NAN, NAN, NAN, T0 + 31, T0 + 31, T0 + 31, T0 + 31])
    assert same(rep.served_as_of, [T0 - 7, T0 - 7, T0 - 7, NAN, NAN, NAN] + [T0 + 24] * 4)
    assert (rep.model_calls, rep.duplicate_calls, rep.max_inflight) == (8, 0, 2)


def test_stale_if_error_bounds_at_zero_delay(ticks: Ticker) -> None:
    """Seed 7's die: 0.770, 0.281, 0.413 (rate 0.5: ok, fail, fail). With no model delay a
    failure happens when the request arrives: the entry of 0 is then exactly 10 s old (as old as
    the TTL: served stale), then exactly 15 s (TTL + 5: too old, failed)."""
    rep = run([(0.0, A), (10.0, A), (15.0, A)], delay=0.0, seed=7, model_fail_rate=0.5,
              stale_if_error_s=5.0)  # fmt: skip
    assert outcomes(rep) == ["miss", "stale", "miss"]
    assert rep.stale_if_error.tolist() == [False, True, False]
    assert rep.failed.tolist() == [False, False, True]
    assert same(rep.age_s, [0, 10.03125, NAN])
    # no failure without a rate, whatever the seed
    rep = run([(0.0, A), (10.0, A), (15.0, A)], delay=0.0, seed=7, stale_if_error_s=5.0)
    assert outcomes(rep) == ["miss", "miss", "hit"] and not rep.failed.any()


class Flaky(ProxyStore):
    """A real memory store whose reads (by number, from 1) or writes fail as a backend would."""

    def __init__(self, inner: MemoryStore, bad_reads: set[int], bad_writes: set[int]) -> None:
        super().__init__(inner)
        self.bad_reads, self.bad_writes = bad_reads, bad_writes
        self.reads = self.writes = 0
        self.events: list[str] = []

    def get(self, key: str) -> Entry | None:
        self.reads += 1
        if self.reads in self.bad_reads:
            raise StoreError("backend down")
        return super().get(key)

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        self.writes += 1
        self.events.append(f"set {key} {retain_s}")
        if self.writes in self.bad_writes:
            raise StoreError("backend down")
        super().set(key, entry, retain_s)

    def clear(self) -> int:
        self.events.append("clear")
        return super().clear()

    def close(self) -> None:
        self.events.append("close")
        super().close()


class Backend:
    """What ``open_store`` opened, and which of its calls are to fail."""

    def __init__(self) -> None:
        self.bad_reads: set[int] = set()
        self.bad_writes: set[int] = set()
        self.opened: list[Flaky] = []


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Backend:
    """``open_store`` opens a real memory store, wrapped to fail on chosen calls; the engine
    must ask for the backend, folder, namespace and size limit it was given."""
    made = Backend()

    def open_store(spec: str, **kw: object) -> Flaky:
        assert spec == "memory" and kw == {
            "cache_dir": "/nowhere", "namespace": "ns-7", "size_limit": 123,
        }  # fmt: skip
        store = Flaky(MemoryStore(namespace="ns-7"), made.bad_reads, made.bad_writes)
        made.opened.append(store)
        return store

    monkeypatch.setattr(engine, "open_store", open_store)
    return made


def test_backend_errors_are_counted_and_served_around(ticks: Ticker, backend: Backend) -> None:
    backend.bad_writes.update({1, 3})  # the first and third entries are never stored
    backend.bad_reads.add(3)  # the third read fails: a miss
    rows = [(0.0, A), (2.0, A), (4.0, A), (6.0, A)]
    rep = replay(workload(rows), Models(), ttl_s=10.0, model_delay_s=1.0, backend="memory",
                 cache_dir="/nowhere", namespace="ns-7", size_limit=123)  # fmt: skip
    # 0 computes, its write fails; 2 finds nothing (computes 2 -> 3, stored); 4's read fails
    # (computes 4 -> 5, its write fails); 6 is served the entry of 2
    assert outcomes(rep) == ["miss", "miss", "miss", "hit"]
    assert rep.backend_errors == 3  # write, read, write: each counted
    assert rep.latency_ms.tolist() == [MISS_MS, MISS_MS, MISS_MS, LOOKUP_MS]
    assert rep.lookup_ms.tolist() == [LOOKUP_MS] * 4  # a failed read is timed too
    assert rep.served_price.tolist() == [T0, T0 + 2, T0 + 4, T0 + 2]
    (store,) = backend.opened
    key = "v1:m1:ETH/EUR:300"
    # each entry kept for the TTL plus the predictor's margin; the namespace emptied, then closed
    assert store.events == [f"set {key} 70.0"] * 3 + ["clear", "close"]


def test_the_store_is_emptied_and_closed_when_the_sink_fails(
    ticks: Ticker, backend: Backend
) -> None:
    def sink(chunk: Chunk) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        replay_stream(workload([(0.0, A)]), Models(), sink, ttl_s=10.0, model_delay_s=1.0,
                      backend="memory", cache_dir="/nowhere", namespace="ns-7",
                      size_limit=123)  # fmt: skip
    (store,) = backend.opened
    assert store.events[-2:] == ["clear", "close"]
    assert store.inner.entry_keys() == []


def test_chunks_reach_the_sink_in_order_once_their_writes_are_done(
    ticks: Ticker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of two requests. The miss at 0 is written at 1 (when the request at 5 comes, in
    the second chunk): the first chunk waits for it, then both go. The sink's own time is left
    out of the wall time."""
    monkeypatch.setattr(engine, "CHUNK", 2)
    monkeypatch.setattr(engine, "PROGRESS_MASK", 1)
    ticks.now = 5000.0  # a perf counter's zero is arbitrary: the wall time is a difference
    rows = [(0.0, A), (0.25, A), (0.5, A), (5.0, A), (20.0, A), (30.0, A)]
    got: list[tuple[int, list[float], list[str]]] = []
    seen: list[int] = []

    def sink(chunk: Chunk) -> None:
        got.append((chunk.start, chunk.latency_ms.tolist(), [OUTCOMES[o] for o in chunk.outcome]))
        seen.append(-1)  # the sink, between progress calls
        ticks.now += 1000.0  # a slow sink: 1000 s on the engine's counter

    counters = replay_stream(workload(rows), Models(), sink, ttl_s=10.0, model_delay_s=1.0,
                             backend="memory", cache_dir=None, namespace="c",
                             progress=seen.append)  # fmt: skip
    assert got == [
        (0, [MISS_MS, LOOKUP_MS + 750 + COMPUTE_MS], ["miss", "collapsed"]),
        (2, [LOOKUP_MS + 500 + COMPUTE_MS, LOOKUP_MS], ["collapsed", "hit"]),
        (4, [MISS_MS, MISS_MS], ["miss", "miss"]),
    ]
    # progress at requests 0, 2, 4 (the mask's multiples) and at the end; chunks 0 and 1 go
    # together once the write at 1 is done (during chunk 1), chunk 2 after the last write
    assert seen == [0, 2, -1, -1, 4, -1, 6]
    assert (counters.requests, counters.model_calls, counters.model_runs) == (6, 3, 3)
    assert (counters.ttl_s, counters.stampede, counters.duplicate_calls) == (10.0, "coalesce", 0)
    assert 0 < counters.wall_s < 10  # the 3000 s spent in the sink are not the replay's


def test_ttl_zero_is_the_no_cache_row(ticks: Ticker) -> None:
    """TTL 0: every request computes (two in one minute: one real computation); TTL 1 caches."""
    rows = [(0.0, A), (0.5, A)]
    rep = run(rows, ttl=0.0, delay=0.25)
    assert outcomes(rep) == ["miss", "miss"]
    assert (rep.model_calls, rep.model_runs) == (2, 1)
    rep = run(rows, ttl=1.0, delay=0.25)
    assert outcomes(rep) == ["miss", "hit"]
    assert (rep.model_calls, rep.model_runs) == (1, 1)
    seen: list[int] = []  # the no-cache row reports its progress too
    replay_stream(workload(rows), Models(), lambda chunk: None, ttl_s=0.0, model_delay_s=0.25,
                  backend="memory", cache_dir=None, namespace="z",
                  progress=seen.append)  # fmt: skip
    assert seen == [2]


def test_a_day_long_model_delay_is_never_slept(ticks: Ticker) -> None:
    rep = run([(0.0, A), (100_000.0, A)], ttl=200_000.0, delay=86_400.0)
    assert outcomes(rep) == ["miss", "hit"]
    assert rep.latency_ms.tolist() == [LOOKUP_MS + 86_400_000 + COMPUTE_MS + WRITE_MS, LOOKUP_MS]
    assert rep.age_s.tolist() == [0, 100_000]


def test_a_request_past_the_grace_waits_for_the_running_refresh(ticks: Ticker) -> None:
    """The refresh started by a stale answer at 14.5 runs to 15.5; at 15.25 the entry is past
    its grace (10 + 5): the request waits for the refresh, its inference and nothing more."""
    rows = [(0.0, A), (14.5, A), (15.25, A)]
    rep = run(rows, "stale-while-revalidate", stale_grace_s=5.0)
    assert outcomes(rep) == ["miss", "stale", "collapsed"]
    assert rep.latency_ms.tolist() == [MISS_MS, LOOKUP_MS, LOOKUP_MS + 250 + COMPUTE_MS]
    assert rep.age_s.tolist() == [0, 14.5, 1.03125]
    assert rep.served_price.tolist() == [T0, T0, T0 + 14.5]


def test_a_draw_equal_to_the_fail_rate_is_not_a_failure(ticks: Ticker) -> None:
    """Seed 2's failure die draws 0.7182482021361644 first, then 0.196: at exactly that rate
    the first computation succeeds (a draw fails below the rate) and the second fails."""
    rep = run([(0.0, A), (10.0, A)], seed=2, model_fail_rate=0.7182482021361644)
    assert rep.failed.tolist() == [False, True]
    assert same(rep.served_price, [T0, NAN])


def test_an_empty_workload(ticks: Ticker) -> None:
    seen: list[int] = []
    chunks: list[Chunk] = []
    counters = replay_stream(workload([]), Models(), chunks.append, ttl_s=10.0,
                             model_delay_s=1.0, backend="memory", cache_dir=None, namespace="e",
                             progress=seen.append)  # fmt: skip
    assert (chunks, seen) == ([], [0])
    assert (counters.requests, counters.model_calls, counters.backend_errors) == (0, 0, 0)
    assert (counters.duplicate_calls, counters.max_inflight, counters.model_runs) == (0, 0, 0)


class Numbered(Models):
    """The price also says which call made it: the time plus the call's number in thousandths."""

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        super().compute(pair, horizon_s, at)
        return Computed(predicted_price=at + len(self.calls) / 1000, as_of=at - 7.0, last_price=1.0)


def test_three_computations_ending_together_are_written_in_the_order_they_started(
    ticks: Ticker,
) -> None:
    """``none``: three requests at once compute three times; the three computations end at the
    same instant and are written in the order they started, so the third one's entry stays."""
    rep = run([(0.0, A), (0.0, A), (0.0, A), (2.0, A)], "none", models=Numbered())
    assert outcomes(rep) == ["miss", "miss", "miss", "hit"]
    assert (rep.model_calls, rep.duplicate_calls, rep.max_inflight) == (3, 2, 3)
    assert rep.latency_ms.tolist() == [MISS_MS] * 3 + [LOOKUP_MS]
    assert rep.age_s.tolist() == [0, 0, 0, 2]
    assert rep.served_price.tolist() == [T0 + 1 / 1000, T0 + 2 / 1000, T0 + 3 / 1000, T0 + 3 / 1000]


def test_progress_at_every_multiple_of_the_mask_across_chunks(
    ticks: Ticker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress is reported when the request number is a multiple of PROGRESS_MASK + 1,
    wherever the chunks start: chunks of 3 and a report every 4 requests, then the total."""
    monkeypatch.setattr(engine, "CHUNK", 3)
    monkeypatch.setattr(engine, "PROGRESS_MASK", 3)
    seen: list[int] = []
    rows = [(float(i), A) for i in range(6)]
    replay_stream(workload(rows), Models(), lambda chunk: None, ttl_s=10.0, model_delay_s=1.0,
                  backend="memory", cache_dir=None, namespace="p",
                  progress=seen.append)  # fmt: skip
    assert seen == [0, 4, 6]


def test_no_grace_and_no_stale_if_error_unless_asked(ticks: Ticker) -> None:
    """replay's defaults: stale-while-revalidate without a grace serves nothing stale, and a
    failure (seed 7: ok, then fail) without stale-if-error is a failure even right at expiry."""
    rep = run([(0.0, A), (10.5, A)], "stale-while-revalidate")
    assert outcomes(rep) == ["miss", "miss"]
    rep = run([(0.0, A), (10.0, A)], delay=0.0, seed=7, model_fail_rate=0.5)
    assert rep.failed.tolist() == [False, True]
    assert not rep.stale_if_error.any()
