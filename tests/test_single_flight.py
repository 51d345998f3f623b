"""Single-flight, step by step: one model call per key, whatever the interleaving.

Two layers make it: a per-key lock in the process (threads) and the store's lease lock (other
processes, modelled here by separate :class:`Predictor` objects over one store, each with its own
in-process locks). The tests below do not rely on timing: :class:`Steps` stops a thread right
after a chosen store call until the test lets it go on, so each interleaving is forced, and
:class:`WatchedLocks` sees a thread find the per-key lock taken. Each test fails when the line
it names is broken (see ``docs/testing.md``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from predcache.clock import ManualClock
from predcache.entry import Entry
from predcache.keys import lock_key
from predcache.predictor import Predictor, Served
from predcache.registry import Computed
from predcache.store.base import ProxyStore, Store
from tests.conftest import FakeModels

WAIT_S = 20.0  # generous bound for an event that must happen (never reached when all is well)
PAIR, HORIZON = "ETH/EUR", 300


class Steps(ProxyStore):
    """One "process's" view of a shared store that stops its thread after chosen calls.

    ``stops`` holds ``(operation, n)``: after the n-th call of ``operation`` (``get`` or
    ``acquire_lock``) returns, the thread sets ``arrived[stop]`` and waits for ``go[stop]``.
    """

    def __init__(self, inner: Store, stops: set[tuple[str, int]]) -> None:
        super().__init__(inner)
        self.calls: Counter[str] = Counter()
        self.arrived = {s: threading.Event() for s in stops}
        self.go = {s: threading.Event() for s in stops}

    def _step(self, op: str) -> None:
        self.calls[op] += 1
        stop = (op, self.calls[op])
        if stop in self.arrived:
            self.arrived[stop].set()
            assert self.go[stop].wait(WAIT_S), f"never let go after {stop}"

    def get(self, key: str) -> Entry | None:
        entry = super().get(key)
        self._step("get")
        return entry

    def acquire_lock(self, name: str, lease_s: float) -> str | None:
        token = super().acquire_lock(name, lease_s)
        self._step("acquire_lock")
        return token

    def at(self, op: str, n: int) -> None:
        """Wait (bounded) until the thread has stopped after call ``n`` of ``op``."""
        assert self.arrived[(op, n)].wait(WAIT_S), f"never reached {(op, n)}"

    def release(self, op: str, n: int) -> None:
        self.go[(op, n)].set()


class Runner(threading.Thread):
    """Runs one ``get_or_compute`` and keeps what it served (or raised)."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__(daemon=True)
        self.predictor = predictor
        self.served: Served | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.served = self.predictor.get_or_compute(PAIR, HORIZON)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self) -> Served:
        self.join(WAIT_S)
        assert not self.is_alive(), "request still running"
        assert self.error is None, self.error
        assert self.served is not None
        return self.served


def _key(models: FakeModels) -> str:
    return lock_key(f"v1:{models.current_version}:{PAIR}:{HORIZON}")


def test_holder_stores_and_releases_between_a_waiters_poll_and_its_lock(
    store: Store, clock: ManualClock
) -> None:
    """The race in ``Filler.fill``'s wait: the waiter polls (miss), the holder stores and releases,
    the waiter takes the lock. It must re-read and serve the holder's entry: one model call."""
    models = FakeModels()
    holder_view = Steps(store, {("acquire_lock", 1)})
    waiter_view = Steps(store, {("get", 3)})
    holder = Runner(Predictor(holder_view, models, clock=clock, ttl_s=90))
    waiter = Runner(Predictor(waiter_view, models, clock=clock, ttl_s=90))

    holder.start()
    holder_view.at("acquire_lock", 1)  # the holder has the lease and has not computed yet
    waiter.start()
    waiter_view.at("get", 3)  # read 1 (fast path), 2 (under its local lock), 3 (first poll): miss
    holder_view.release("acquire_lock", 1)
    held = holder.finish()  # computes, stores, releases the lease
    waiter_view.release("get", 3)
    got = waiter.finish()  # now takes the free lease

    assert models.calls == 1
    assert (held.cache, held.detail) == ("miss", None)
    assert (got.cache, got.detail) == ("collapsed", "coalesced")
    assert got.entry == held.entry
    assert waiter_view.calls == Counter(get=4, acquire_lock=2)  # it re-read under the lease


def test_after_a_crashed_holder_one_waiter_computes_the_others_wait_for_it(
    store: Store, clock: ManualClock
) -> None:
    """A holder dies with the lease; three waiters poll. When its lease ends, the first waiter to
    take the lock computes *holding it*, and the other two are served that one entry."""
    gate = threading.Event()
    entered = threading.Event()

    class FirstCallBlocks(FakeModels):
        def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
            if self.calls == 0:
                entered.set()
                assert gate.wait(WAIT_S)
            return super().compute(pair, horizon_s, at)

    models = FirstCallBlocks()
    crashed = store.acquire_lock(_key(models), 3600.0)  # never released by its holder
    assert crashed is not None
    views = [Steps(store, {("get", 3), ("acquire_lock", 2)}) for _ in range(3)]
    runners = [Runner(Predictor(v, models, clock=clock, ttl_s=90)) for v in views]
    for runner, view in zip(runners, views, strict=True):
        runner.start()
        view.at("get", 3)  # each polled once and saw nothing
    store.release_lock(_key(models), crashed)  # the crashed holder's lease ends

    first, *others = views
    first.release("get", 3)
    first.at("acquire_lock", 2)  # the first waiter has the lease now
    first.release("acquire_lock", 2)
    assert entered.wait(WAIT_S)  # ... and is inside the model call
    for view in others:
        view.release("get", 3)
        view.at("acquire_lock", 2)  # tried the lease while the first one computes
        view.release("acquire_lock", 2)
    gate.set()
    served = [r.finish() for r in runners]

    assert models.calls == 1
    assert [(s.cache, s.detail) for s in served] == [
        ("miss", None),
        ("collapsed", "coalesced"),
        ("collapsed", "coalesced"),
    ]
    assert served[1].entry == served[0].entry == served[2].entry


class WatchedLocks:
    """Wraps a predictor's per-key locks: records each thread that finds the lock already taken
    (a non-blocking try first), then waits for it as the predictor would."""

    def __init__(self, predictor: Predictor, on_blocked: Callable[[], None]) -> None:
        self.real = predictor.filler.locks.get
        self.on_blocked = on_blocked
        predictor.filler.locks.get = self.get  # type: ignore[method-assign]

    def get(self, key: str) -> _Watched:
        return _Watched(self.real(key), self.on_blocked)


class _Watched:
    def __init__(self, lock: threading.Lock, on_blocked: Callable[[], None]) -> None:
        self.lock = lock
        self.on_blocked = on_blocked

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=False):
            self.on_blocked()
            self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


@pytest.mark.parametrize("cross_process_lock", [True, False])
def test_threads_wait_on_the_per_key_lock(
    store: Store, clock: ManualClock, cross_process_lock: bool
) -> None:
    """N threads miss one key together: one computes, N-1 find its per-key lock taken and then
    read its entry. Nothing here may lean on the store's lease (it would hide a broken per-key
    lock): the model returns only once every other thread is seen blocked on that lock, the
    store's lease is asked for once at most, and the waiters are collapsed (not hits)."""
    n = 8
    ready = threading.Condition()
    blocked: list[int] = []

    def on_blocked() -> None:
        with ready:
            blocked.append(threading.get_ident())
            ready.notify_all()

    class WaitsForTheOthers(FakeModels):
        def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
            with ready:
                assert ready.wait_for(lambda: len(blocked) == n - 1, WAIT_S), (
                    f"only {len(blocked)} of {n - 1} threads waited on the per-key lock"
                )
            return super().compute(pair, horizon_s, at)

    models = WaitsForTheOthers()
    view = Steps(store, set())
    p = Predictor(view, models, clock=clock, ttl_s=90, cross_process_lock=cross_process_lock)
    WatchedLocks(p, on_blocked)
    runners = [Runner(p) for _ in range(n)]
    for r in runners:
        r.start()
    served = [r.finish() for r in runners]

    assert models.calls == 1
    assert sorted((s.cache, s.detail) for s in served) == [("collapsed", None)] * (n - 1) + [
        ("miss", None)
    ]
    assert view.calls["acquire_lock"] == (1 if cross_process_lock else 0)
    assert (p.stats.collapsed, p.stats.hits, p.stats.misses) == (n - 1, 0, 1)
