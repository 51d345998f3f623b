"""Figures pinned to hand-computed values: retain times, freshness under max-age, ages, headers.

Each test sets a fake clock and checks an exact value (a retain time in seconds, an ``Age``, a
``ttl=``, an ``age_s``), so breaking the line that computes it turns the test red. The server
runs in real uvicorn and the CLI through Typer, both in this process so that they share the
fake clock (``Predictor`` falls back to :class:`SystemClock`, which the ``fake_now`` fixture
replaces).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from predcache.cli import app
from predcache.clock import ManualClock
from predcache.entry import Entry
from predcache.predictor import Predictor
from predcache.store.base import ProxyStore, Store
from tests.conftest import FakeModels
from tests.fixtures.threaded import T0, threaded_server

PAIR, HORIZON = "ETH/EUR", 300


class RecordingStore(ProxyStore):
    """Remembers the retain time of every write."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.retains: list[float | None] = []

    def set(self, key: str, entry: Entry, retain_s: float | None = None) -> None:
        self.retains.append(retain_s)
        super().set(key, entry, retain_s)


# --- the retain time each backend is asked for ----------------------------------------------


def test_retain_time_is_the_ttl_plus_the_margin(store: Store, clock: ManualClock) -> None:
    rec = RecordingStore(store)
    p = Predictor(rec, FakeModels(), clock=clock, ttl_s=90)
    p.get_or_compute(PAIR, HORIZON)  # a miss
    clock.advance(95)
    p.get_or_compute(PAIR, HORIZON)  # expired: a miss again
    p.get_or_compute(PAIR, HORIZON, refresh=True)  # a forced recompute
    assert p.refresh_if_idle(PAIR, HORIZON, seen_created_at=clock.now())
    assert rec.retains == [150.0, 150.0, 150.0, 150.0]  # 90 s TTL + the 60 s margin

    rec.retains.clear()
    q = Predictor(rec, FakeModels(), clock=clock, ttl_s=30, retain_margin_s=5)
    q.get_or_compute("BTC/USD", 60)
    assert rec.retains == [35.0]


def _backend_expiry_s(store: Store, key: str, redis_url: str | None) -> float:
    """How long the backend itself will keep ``key`` from now (its own expiry, real time)."""
    if store.name == "redis":
        import redis

        assert redis_url is not None
        client = redis.Redis.from_url(redis_url)
        try:
            inner = getattr(store, "inner", store)  # open_redis_store wraps it in a breaker
            return float(client.pttl(inner.key(key))) / 1000.0
        finally:
            client.close()
    import time

    _, expire_time = store.cache.get(key, expire_time=True)  # type: ignore[attr-defined]
    return float(expire_time) - time.time()


@pytest.mark.parametrize("backend", ["disk", "redis"])
def test_an_entry_outlives_its_ttl_in_the_backend(
    backend: str, tmp_path: Path, clock: ManualClock, request: pytest.FixtureRequest
) -> None:
    """The backend's own expiry (diskcache's expire_time, Redis's PTTL) covers the whole TTL:
    a backend that dropped entries earlier would turn fresh hits into misses in production,
    where no simulated clock hides it."""
    from tests.conftest import make_store

    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    store = make_store(backend, tmp_path, redis_url=url)
    try:
        p = Predictor(store, FakeModels(), clock=clock, ttl_s=90)
        served = p.get_or_compute(PAIR, HORIZON)
        left = _backend_expiry_s(store, served.key, url)
        assert 140.0 < left <= 150.0  # 150 s asked; a few seconds may pass under load
        clock.advance(89.999)
        assert p.get_or_compute(PAIR, HORIZON).cache == "hit"
    finally:
        store.close()


# --- freshness under a request's max-age, and ages ------------------------------------------


@pytest.mark.parametrize(
    ("max_age", "limit", "at", "outcome", "age"),
    [
        (None, 90, 80, "hit", 80.0),
        (None, 90, 90, "miss", 0.0),  # age == TTL is stale
        (7, 7, 6.5, "hit", 6.5),
        (7, 7, 7, "miss", 0.0),
        (7, 7, 80, "miss", 0.0),
        (0, 0, 0, "miss", 0.0),  # nothing is younger than 0 s, not even a brand new entry
        (100, 90, 89, "hit", 89.0),  # a max-age above the TTL never loosens it
        (100, 90, 95, "miss", 0.0),
    ],
)
def test_max_age_against_an_entry_of_a_known_age(
    store: Store,
    clock: ManualClock,
    max_age: float | None,
    limit: float,
    at: float,
    outcome: str,
    age: float,
) -> None:
    models = FakeModels()
    p = Predictor(store, models, clock=clock, ttl_s=90)
    assert p.freshness_limit(max_age) == limit
    p.get_or_compute(PAIR, HORIZON)
    clock.advance(at)
    served = p.get_or_compute(PAIR, HORIZON, max_age_s=max_age)
    assert (served.cache, served.age_s) == (outcome, age)
    assert models.calls == (1 if outcome == "hit" else 2)
    fresh = p.get_fresh(PAIR, HORIZON, max_age_s=max_age)  # the server's inline hit path
    if outcome == "hit":
        assert fresh is not None and (fresh.cache, fresh.age_s) == ("hit", age)
    elif max_age == 0:
        assert fresh is None  # the hit path never serves under max-age 0
    else:  # the entry just computed is served, at age 0, by the hit path
        assert fresh is not None and fresh.age_s == 0.0


def _plant(store: Store, p: Predictor, created_at: float) -> None:
    """A valid entry for ``PAIR``/``HORIZON`` stamped ``created_at`` (another host's clock)."""
    entry: Entry = {
        "pair": PAIR,
        "horizon_s": HORIZON,
        "predicted_price": 101.5,
        "as_of": created_at - created_at % 60,
        "created_at": created_at,
        "model_version": "fake1",
        "compute_ms": 1.0,
    }
    store.set(p.key_for(PAIR, HORIZON), entry, 3600)


def test_an_entry_from_the_future_is_served_at_age_zero(store: Store, clock: ManualClock) -> None:
    """Clock skew: a writer 597 s ahead. The age is clamped at 0, never negative."""
    p = Predictor(store, FakeModels(), clock=clock, ttl_s=90)
    _plant(store, p, clock.now() + 597)
    assert (p.get_or_compute(PAIR, HORIZON).age_s, p.get_fresh(PAIR, HORIZON).age_s) == (0.0, 0.0)  # type: ignore[union-attr]


class SteppingClock:
    """Returns the given instants in turn (then the last one): a clock stepped back by NTP."""

    def __init__(self, *instants: float) -> None:
        self.instants = list(instants)

    def now(self) -> float:
        return self.instants.pop(0) if len(self.instants) > 1 else self.instants[0]


def test_a_miss_whose_clock_steps_back_has_age_zero(store: Store) -> None:
    p = Predictor(store, FakeModels(), clock=SteppingClock(T0, T0 - 5), ttl_s=90)
    served = p.get_or_compute(PAIR, HORIZON, max_age_s=0)  # computed at T0, read back at T0 - 5
    assert (served.cache, served.age_s) == ("miss", 0.0)


# --- the same figures through the real server and the CLI, on the fake clock ----------------


@pytest.fixture
def clocked_server(models_dir: Path, tmp_path: Path, fake_now: ManualClock) -> Iterator[str]:
    """Real uvicorn serving ``create_app`` in a thread of this process, on a free port, with
    the protocol ``serve`` runs (so hits come through its hit lane, predcache.server.lane)."""
    from predcache.server.app import create_app
    from predcache.server.limits import PROTOCOL
    from predcache.server.settings import ServeSettings

    settings = ServeSettings(
        ttl_s=90, cache_dir=str(tmp_path / "cache"), models_dir=str(models_dir)
    )
    with threaded_server(create_app(settings), PROTOCOL) as port:
        yield f"http://127.0.0.1:{port}/predict"


def _get(url: str, cache_control: str | None = None) -> tuple[str, str | None, float]:
    headers = {"Cache-Control": cache_control} if cache_control else {}
    r = httpx.get(url, params={"product_id": PAIR, "horizon": "5m"}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.headers["cache-status"], r.headers.get("age"), r.json()["age_s"]


def test_server_age_ttl_and_max_age(clocked_server: str, fake_now: ManualClock) -> None:
    url = clocked_server
    assert _get(url) == ("predcache; fwd=miss; stored", None, 0.0)
    fake_now.advance(37.5)  # halves: exact in binary at this epoch, so ages are exact too
    assert _get(url) == ("predcache; hit; ttl=52", "37", 37.5)  # 90 - 37.5 = 52.5 s left
    # ttl= is the response's remaining freshness (RFC 9211), from the server's TTL: a request's
    # max-age decides whether the entry is acceptable, not how long it stays fresh
    assert _get(url, "max-age=40") == ("predcache; hit; ttl=52", "37", 37.5)
    assert _get(url, "max-age=200") == ("predcache; hit; ttl=52", "37", 37.5)
    fake_now.advance(42.5)  # the entry is 80 s old
    assert _get(url, "max-age=7") == ("predcache; fwd=miss; stored", None, 0.0)
    fake_now.advance(1.0)
    assert _get(url, "max-age=0") == ("predcache; fwd=request; stored", None, 0.0)  # forced
    fake_now.advance(89.5)
    assert _get(url) == ("predcache; hit; ttl=0", "89", 89.5)
    fake_now.advance(0.5)
    assert _get(url)[0] == "predcache; fwd=miss; stored"


def test_server_age_is_never_negative(
    clocked_server: str, fake_now: ManualClock, tmp_path: Path, models_dir: Path
) -> None:
    from predcache.factory import build_predictor

    status, _, _ = _get(clocked_server)  # the server has loaded the model: same version below
    assert status == "predcache; fwd=miss; stored"
    p = build_predictor(cache_dir=tmp_path / "cache", models_dir=models_dir, ttl_s=90)
    served = p.get_or_compute(PAIR, HORIZON)
    assert p.store is not None
    # written by a host 4 s ahead (within --max-clock-skew 5s): a hit, 0 s old, never negative
    entry = dict(served.entry, created_at=fake_now.now() + 4)
    p.store.set(served.key, entry, 3600)  # type: ignore[arg-type]
    assert _get(clocked_server) == ("predcache; hit; ttl=90", "0", 0.0)
    # 597 s ahead: past the tolerance, so not fresh for 597 s more but a miss, replaced (#17)
    entry = dict(served.entry, created_at=fake_now.now() + 597)
    p.store.set(served.key, entry, 3600)  # type: ignore[arg-type]
    p.store.close()
    assert _get(clocked_server)[0] == "predcache; fwd=miss; stored"


def _predict(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["predict", PAIR, "--horizon", "5m", "--json", *args])
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.stdout)
    return out


def test_predict_max_age(models_dir: Path, fake_now: ManualClock) -> None:
    first = _predict()
    assert (first["cache"], first["age_s"]) == ("miss", 0.0)
    fake_now.advance(80)
    loose = _predict("--max-age", "100")
    assert (loose["cache"], loose["age_s"]) == ("hit", 80.0)
    stale = _predict("--max-age", "7")
    assert (stale["cache"], stale["age_s"]) == ("miss", 0.0)
    assert stale["created_at"] != first["created_at"]
    fake_now.advance(6.5)
    assert (_predict("--max-age", "7s")["cache"], _predict()["age_s"]) == ("hit", 6.5)
    assert _predict("--max-age", "0")["cache"] == "miss"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", str(first["created_at"]))


def test_call_key_is_the_first_32_hex_digits_of_the_arguments_sha256() -> None:
    from predcache.keys import call_key

    # sha256(b'{"a":1}') = 015abd7f5cc57a2dd94b7590f04ad808 4273905ee33ec5cebeae62276a97f862
    assert call_key("v9", "f", '{"a":1}') == "v1:v9:f:015abd7f5cc57a2dd94b7590f04ad808"
