"""A child process that writes predictions into a shared disk store until it is killed.

Run by ``test_crash.py`` as ``python -m tests.reliability.writer CACHE_DIR LOG SEED``. It goes
through the real predictor (``build_predictor`` on the disk backend, real model artifacts from
``PREDCACHE_MODELS_DIR``), recomputing keys in a loop, and now and then stores a ~40 KB entry
so that diskcache's file-backed values are being written too when the SIGKILL lands.

After each write has *returned* it appends ``key<TAB>created_at`` to LOG with one ``os.write``
on an ``O_APPEND`` descriptor: a kill can lose the line of a write that finished, never invent
one, so every logged write must still be in the store afterwards (no entry lost).
"""

from __future__ import annotations

import os
import random
import sys

from predcache.factory import build_predictor
from predcache.keys import prediction_key
from predcache.pairs import DEFAULT_PAIRS

HORIZONS = (60, 300, 900, 3600)
PAD = "x" * 40_000


def main(cache_dir: str, log_path: str, seed: int) -> None:
    rng = random.Random(seed)
    predictor = build_predictor(backend="disk", cache_dir=cache_dir, ttl_s=3600.0)
    store = predictor.store
    assert store is not None
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def logged(key: str, created_at: float) -> None:
        os.write(log, f"{key}\t{created_at!r}\n".encode())

    keys = [(p, h) for p in DEFAULT_PAIRS for h in HORIZONS]
    for pair, horizon in keys:  # warm every key once, so a reader always finds entries
        served = predictor.get_or_compute(pair, horizon, refresh=True)
        logged(served.key, float(served.entry["created_at"]))
    print("ready", flush=True)
    while True:
        pair, horizon = rng.choice(keys)
        served = predictor.get_or_compute(pair, horizon, refresh=True)
        logged(served.key, float(served.entry["created_at"]))
        if rng.random() < 0.1:
            big = dict(served.entry, pad=PAD)
            key = prediction_key("padded", pair, horizon)
            store.set(key, big, 3600.0)
            logged(key, float(big["created_at"]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
