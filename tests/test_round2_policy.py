"""Round-two policy (issue #17) on fake clocks and a real disk store: clock skew, coalesced
no-cache and outage recomputations, short renewed leases, model reload, file modes."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from predcache.clock import ManualClock
from predcache.errors import StoreError
from predcache.flights import Flights
from predcache.leases import LeaseKeeper
from predcache.predictor import Predictor
from predcache.stampede import Strategy
from predcache.store.disk import DB_NAME, DiskStore
from predcache.store.memory import MemoryStore
from tests.conftest import FakeModels


class GatedModels(FakeModels):
    """Blocks every model call until ``gate`` is set; counts calls."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def compute(self, pair: str, horizon_s: int, at: float):  # type: ignore[no-untyped-def]
        self.entered.release()
        assert self.gate.wait(10)
        return super().compute(pair, horizon_s, at)


# ---- clock skew -------------------------------------------------------------------------


def test_entry_from_the_future_is_a_miss_replaced_and_warned_once(
    tmp_path: Path, fake_models: FakeModels, clock: ManualClock
) -> None:
    notes: list[str] = []
    store = DiskStore(tmp_path / "c")
    p = Predictor(store, fake_models, clock=clock, ttl_s=90, notify=notes.append)
    key = p.key_for("ETH/EUR", 300)
    planted = dict(p.get_or_compute("ETH/EUR", 300).entry)
    planted.update(created_at=clock.now() + 86400, predicted_price=12345.0, writer="fast-host")
    store.set(key, planted, 3600)  # type: ignore[arg-type]
    served = p.get_or_compute("ETH/EUR", 300, max_age_s=1)
    assert (served.cache, served.age_s) == ("miss", 0.0)
    assert served.entry["predicted_price"] != 12345.0
    assert store.get(key)["created_at"] == clock.now()  # type: ignore[index]  # replaced
    store.set(key, planted, 3600)  # type: ignore[arg-type]
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"
    assert notes == [
        "warning: a cache entry written by fast-host is stamped 86400.0s ahead of this host's "
        "clock (tolerance 5s); the clocks disagree, so such entries are treated as misses and "
        "replaced"
    ]


def test_skew_within_tolerance_is_a_hit_of_age_zero(
    fake_models: FakeModels, clock: ManualClock
) -> None:
    store = MemoryStore()
    p = Predictor(store, fake_models, clock=clock, ttl_s=90, max_clock_skew_s=5)
    entry = dict(p.get_or_compute("ETH/EUR", 300).entry)
    entry["created_at"] = clock.now() + 4.9
    store.set(p.key_for("ETH/EUR", 300), entry)  # type: ignore[arg-type]
    served = p.get_or_compute("ETH/EUR", 300)
    assert (served.cache, served.age_s) == ("hit", 0.0)
    entry["created_at"] = clock.now() + 5.1
    store.set(p.key_for("ETH/EUR", 300), entry)  # type: ignore[arg-type]
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"


# ---- flights: no-cache floods and outages ------------------------------------------------


def test_flights_join_only_a_computation_that_started_after_arrival() -> None:
    flights: Flights[int] = Flights()
    calls: list[int] = []
    release = threading.Event()
    started = threading.Event()

    def slow() -> int:
        calls.append(1)
        started.set()
        assert release.wait(10)
        return len(calls)

    early = flights.ticket()
    results: list[tuple[int, bool]] = []
    leader = threading.Thread(target=lambda: results.append(flights.run("k", early, slow)))
    leader.start()
    assert started.wait(10)
    # arrived while flight 1 runs: not good enough, they share flight 2
    late = [flights.ticket() for _ in range(20)]
    waiters = [
        threading.Thread(target=lambda t=t: results.append(flights.run("k", t, slow))) for t in late
    ]
    for w in waiters:
        w.start()
    time.sleep(0.05)
    release.set()
    for t in [leader, *waiters]:
        t.join(10)
    assert len(calls) == 2
    assert sorted(results) == [(1, False), (2, False)] + [(2, True)] * 19
    # a request that arrived before flight 2 finished is served by it without a new call
    assert flights.run("k", late[0], slow) == (2, True)
    assert len(calls) == 2


def test_concurrent_no_cache_requests_share_recomputations(clock: ManualClock) -> None:
    models = GatedModels()
    p = Predictor(MemoryStore(), models, clock=clock, ttl_s=90)
    out: list[str] = []

    def ask() -> None:
        s = p.get_or_compute("ETH/EUR", 300, refresh=True)
        out.append(f"{s.cache}:{s.detail}")

    threads = [threading.Thread(target=ask) for _ in range(50)]
    for t in threads:
        t.start()
    assert models.entered.acquire(timeout=10)
    time.sleep(0.1)
    models.gate.set()
    for t in threads:
        t.join(10)
    assert models.calls <= 2
    assert out.count("miss:None") == models.calls
    assert out.count("collapsed:None") == 50 - models.calls


@pytest.mark.parametrize(
    ("stampede", "expected"),
    [("coalesce", ("collapsed", 0, 1, 0)), ("none", ("miss", 1, 0, 1))],
)
def test_a_request_that_waited_and_then_finds_the_entry_is_collapsed(
    tmp_path: Path, clock: ManualClock, stampede: Strategy, expected: tuple[str, int, int, int]
) -> None:
    """The server's gate: a request that missed, then waited while other requests for its
    key were computing, finds their entry; it is collapsed (issue #10), not a hit. Under
    ``none`` (the seed's cache) a miss always calls the model."""
    models = FakeModels()
    p = Predictor(DiskStore(tmp_path / "store"), models, clock=clock, ttl_s=90, stampede=stampede)
    assert p.get_or_compute("ETH/EUR", 300).cache == "miss"  # the computation it waited for
    clock.advance(1)
    served = p.get_or_compute("ETH/EUR", 300, waited=True)
    assert (served.cache, models.calls - 1, p.stats.collapsed, p.stats.misses - 1) == expected
    assert served.detail is None and p.stats.hits == 0
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"  # without a wait, a hit as before


def test_outage_requests_share_the_computation_in_flight(clock: ManualClock) -> None:
    class Down(MemoryStore):
        def get(self, key: str):  # type: ignore[no-untyped-def]
            raise StoreError("down")

    models = GatedModels()
    p = Predictor(Down(), models, clock=clock, ttl_s=90)
    out: list[str] = []
    threads = [
        threading.Thread(target=lambda: out.append(p.get_or_compute("ETH/EUR", 300).cache))
        for _ in range(30)
    ]
    for t in threads:
        t.start()
    assert models.entered.acquire(timeout=10)
    time.sleep(0.1)
    models.gate.set()
    for t in threads:
        t.join(10)
    assert models.calls == 1
    assert out == ["bypass"] * 30


# ---- leases ---------------------------------------------------------------------------------


def test_holder_renews_its_lease_while_computing(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "c")
    keeper = LeaseKeeper(store, lease_s=0.3)
    token = store.acquire_lock("k.lock", 0.3)
    assert token is not None
    with keeper.holding("k.lock", token):
        time.sleep(1.0)  # three leases long: renewed every 0.1 s
        assert store.acquire_lock("k.lock", 0.3) is None
    assert keeper.renewed >= 3 and keeper.lost == 0
    assert store.renew_lock("k.lock", "not-the-token", 1.0) is False
    time.sleep(0.4)  # no more renewals: the lease runs out
    assert store.acquire_lock("k.lock", 0.3) is not None


def test_waiter_takes_over_the_lock_of_a_crashed_holder(
    tmp_path: Path, fake_models: FakeModels, clock: ManualClock
) -> None:
    store = DiskStore(tmp_path / "c")
    p = Predictor(store, fake_models, clock=clock, ttl_s=90, lock_lease_s=0.5)
    from predcache.keys import lock_key

    key = p.key_for("ETH/EUR", 300)
    assert store.acquire_lock(lock_key(key), 0.5) is not None  # a holder that then dies
    t0 = time.monotonic()
    served = p.get_or_compute("ETH/EUR", 300)
    waited = time.monotonic() - t0
    assert served.cache == "miss" and fake_models.calls == 1
    assert 0.4 < waited < 5.0
    assert store.acquire_lock(lock_key(key), 0.5) is not None  # the taker released it


# ---- file modes ---------------------------------------------------------------------------


@pytest.mark.parametrize("first_read_only", [True, False])
def test_existing_0644_database_is_made_private_on_open(
    tmp_path: Path, fake_models: FakeModels, clock: ManualClock, first_read_only: bool
) -> None:
    d = tmp_path / "c"
    Predictor(DiskStore(d), fake_models, clock=clock).get_or_compute("ETH/EUR", 300)
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        if (d / name).exists():
            os.chmod(d / name, 0o644)
    store = DiskStore(d)
    if first_read_only:
        assert store.get("absent") is None  # the reader alone (a CLI hit's path)
    else:
        store.set("k", Predictor(store, fake_models, clock=clock)._compute("ETH/EUR", 300))
    modes = {
        n: stat.S_IMODE((d / n).stat().st_mode)
        for n in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm")
        if (d / n).exists()
    }
    assert modes[DB_NAME] == 0o600
    assert set(modes.values()) == {0o600}


def test_deleted_directory_is_recreated_with_a_warning(
    tmp_path: Path, fake_models: FakeModels, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    d = tmp_path / "c"
    store = DiskStore(d)
    p = Predictor(store, fake_models, clock=clock)
    p.get_or_compute("ETH/EUR", 300)
    p.get_or_compute("ETH/EUR", 60)  # opens diskcache
    shutil.rmtree(d)
    store._next_watch = 0.0  # the next operation checks (instead of sleeping a second)
    assert p.get_or_compute("ETH/EUR", 900).cache == "miss"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert DiskStore(d).get(p.key_for("ETH/EUR", 900)) is not None  # another process sees it
    assert caplog.text.count("was deleted or replaced while in use; re-created it") == 1


def test_wrongtype_key_is_a_corrupt_entry_overwritten(redis_url: str, clock: ManualClock) -> None:
    import redis

    from predcache.store import open_store

    store = open_store(redis_url)
    p = Predictor(store, FakeModels(), clock=clock, ttl_s=90)
    key = p.key_for("ETH/EUR", 300)
    r = redis.Redis.from_url(redis_url)
    r.lpush(store.inner.key(key), "x")  # type: ignore[attr-defined]
    first = p.get_or_compute("ETH/EUR", 300)
    assert (first.cache, first.detail) == ("miss", None)
    assert p.get_or_compute("ETH/EUR", 300).cache == "hit"
    assert store.corrupt_reads == 2  # read before and after taking the key's lock
    assert r.type(store.inner.key(key)) == b"string"  # type: ignore[attr-defined]


def test_unusable_cache_dir_is_a_bypass_with_one_warning(models_dir: Path, tmp_path: Path) -> None:
    import json

    from tests.reliability.helpers import cli

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = cli("predict", "ETH/EUR", "--json", "--cache-dir", str(blocker / "cache"))
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert (body["cache"], body["detail"]) == ("bypass", "backend-unavailable")
    assert out.stderr.splitlines() == [
        f"predcache: warning: cannot create cache dir {blocker / 'cache'}: Not a directory; "
        "answering without the cache"
    ]
    stats = cli("cache", "stats", "--cache-dir", str(blocker / "cache"))
    assert stats.returncode == 1 and len(stats.stderr.splitlines()) == 1
