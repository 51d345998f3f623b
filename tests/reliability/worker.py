"""One of several processes doing mixed predict operations on one shared store.

Run by ``test_concurrency.py`` as
``python -m tests.reliability.worker BACKEND CACHE_DIR WORKER_ID OPS OUT_JSON``. The model is a
stand-in whose every output is unique (worker id and a counter are in the price), so any value
read back can be traced to the write that made it. The worker records every value it stored
and every value it was served from the store, and the parent checks that each served value is
one that some worker wrote for that key.
"""

from __future__ import annotations

import json
import random
import sys

from predcache.errors import BadHorizonError
from predcache.factory import build_predictor
from predcache.predictor import COLLAPSED, HIT, MISS
from predcache.registry import Computed

PAIRS = ("ETH/EUR", "BTC/USD", "SOL/USD")
HORIZONS = (60, 300, 900)
#: short enough, on the real clock, that the mix has hits, expiries and recomputes
TTL_S = 0.3


class UniqueModels:
    """A numpy-free model source whose outputs name their writer: 1000 + id + n/1e6."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id
        self.calls = 0

    def version(self, pair: str) -> str:
        return "conc1"

    def check_horizon(self, pair: str, horizon_s: int) -> None:
        if horizon_s not in HORIZONS:
            raise BadHorizonError(f"horizon {horizon_s} not trained")

    def compute(self, pair: str, horizon_s: int, at: float) -> Computed:
        self.calls += 1
        return Computed(1000.0 + self.worker_id + self.calls / 1e6, at, 1000.0)


def main(backend: str, cache_dir: str, worker_id: int, ops: int, out: str) -> None:
    rng = random.Random(worker_id)
    models = UniqueModels(worker_id)
    predictor = build_predictor(backend=backend, cache_dir=cache_dir, ttl_s=TTL_S, models=models)
    wrote: list[tuple[str, float]] = []
    served_from_store: list[tuple[str, float]] = []
    errors: list[str] = []
    for _ in range(ops):
        pair, horizon = rng.choice(PAIRS), rng.choice(HORIZONS)
        roll = rng.random()
        kwargs = (
            {"refresh": True} if roll < 0.1
            else {"max_age_s": rng.choice((0.0, 0.05, 0.1))} if roll < 0.25
            else {}
        )  # fmt: skip
        try:
            served = predictor.get_or_compute(pair, horizon, **kwargs)  # type: ignore[arg-type]
        except Exception as exc:  # counted: the test demands zero
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        price = float(served.entry["predicted_price"])
        if served.cache == MISS:
            wrote.append((served.key, price))
        elif served.cache in (HIT, COLLAPSED):  # collapsed: read after another's write
            served_from_store.append((served.key, price))
        else:
            errors.append(f"served {served.cache} ({served.detail})")
    assert predictor.store is not None
    report = {
        "wrote": wrote,
        "served": served_from_store,
        "errors": errors,
        "backend_errors": predictor.stats.backend_errors,
        "corrupt_reads": predictor.store.corrupt_reads,
    }
    predictor.store.close()
    with open(out, "w", encoding="utf-8") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
