"""Bench at scale: streamed percentiles, chunked workloads and traces, the cheap no-cache row,
``--jobs`` and ``--save-requests PATH`` (docs/bench.md, "Bench at scale")."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from predcache.bench.engine import replay
from predcache.bench.histogram import Quantiles
from predcache.bench.runner import BenchOptions, run_bench
from predcache.bench.workload import CHUNK, load_trace, synthetic
from predcache.cli import run
from predcache.errors import BadDataError
from predcache.registry import ModelRegistry

START = 1_748_822_400.0  # 2025-06-02T00:00:00Z
KEYS9 = [(p, h) for p in ("ETH/EUR", "BTC/USD", "SOL/USD") for h in (60, 300, 900)]
#: the histogram's bucket ratio for a 0.1% relative error, written out here
GAMMA = 1.001 / 0.999


def bucket_answer(v: float) -> float:
    """By hand: v lies in (GAMMA**(i-1), GAMMA**i], answered by 2 GAMMA**i / (GAMMA + 1)."""
    i = math.ceil(math.log(v) / math.log(GAMMA))
    return 2 * GAMMA**i / (GAMMA + 1)


def test_histogram_percentiles_by_hand() -> None:
    q = Quantiles(exact_limit=0)  # the histogram from the first value
    q.add(np.array([0.0, 0.0, 1.0, 2.0, 4.0, 1000.0]))
    assert not q.exact
    # numpy's rule: rank q/100 * (n - 1), linear between the two closest ranks
    one, two = bucket_answer(1.0), bucket_answer(2.0)
    assert q.percentile(50) == pytest.approx(one + 0.5 * (two - one), rel=1e-12)
    assert bucket_answer(1.0) == pytest.approx(0.999)  # 1 sits at the top of bucket 0
    assert q.percentile(20) == 0.0  # zeros are a bucket of their own, exact
    assert q.percentile(0) == 0.0
    assert q.percentile(100) == 1000.0  # clamped to the exact maximum
    four = bucket_answer(4.0)
    assert q.percentile(90) == pytest.approx(four + 0.5 * (1000.0 - four), rel=1e-12)
    assert math.isnan(Quantiles().percentile(50))


def test_histogram_error_is_within_its_bound() -> None:
    values = np.random.default_rng(1).lognormal(0.0, 3.0, 200_000)
    q = Quantiles(exact_limit=1000)
    for part in np.array_split(values, 7):
        q.add(part)
    for p in (1, 50, 90, 99, 99.9):
        exact = float(np.percentile(values, p))
        assert abs(q.percentile(p) - exact) <= 0.001 * exact
    small = Quantiles()
    small.add(values[:5000])
    assert small.exact and small.percentile(95) == float(np.percentile(values[:5000], 95))


def test_synthetic_chunks_are_the_one_shot_draw() -> None:
    """Chunked arrivals are bit for bit what one draw of all of them gives (seeded runs of
    earlier versions repeat)."""
    n = 2 * CHUNK + 123
    w = synthetic(KEYS9, requests=n, rate=7.0, zipf=1.1, seed=4, start=START)
    rng = np.random.Generator(np.random.PCG64(4))
    times = START + np.cumsum(rng.exponential(1.0 / 7.0, n))
    probs = np.arange(1, 10, dtype=np.float64) ** -1.1
    keys = rng.choice(9, size=n, p=probs / probs.sum())
    assert np.array_equal(w.times, times) and np.array_equal(w.key_index, keys)
    assert (w.first_s, w.last_s) == (times[0], times[-1])
    assert [len(t) for t, _ in w.chunks()] == [CHUNK, CHUNK, 123]


def test_no_cache_row_computes_each_key_and_minute_once(models_dir: Path) -> None:
    w = synthetic(KEYS9, requests=3000, rate=5.0, zipf=1.0, seed=1, start=START)
    reg = ModelRegistry(models_dir, auto_train=False)
    rep = replay(w, reg, ttl_s=0.0, model_delay_s=1.0, backend="memory", cache_dir=None,
                 namespace="t0")  # fmt: skip
    minutes = np.floor(w.times / 60).astype(np.int64)
    distinct = len(set(zip(w.key_index.tolist(), minutes.tolist(), strict=True)))
    assert rep.model_calls == 3000 and rep.model_runs == distinct < 3000
    assert np.allclose(rep.latency_ms, 1000.0 + rep.model_ms)
    for i in range(0, 3000, 397):  # the served prediction is the model's at that minute
        pair, h = w.keys[int(w.key_index[i])]
        want = reg.compute(pair, h, float(w.times[i])).predicted_price
        assert rep.served_price[i] == want


def options(tmp_path: Path, **kw: object) -> BenchOptions:
    base: dict[str, object] = dict(
        ttls_s=[0.0, 30.0, 90.0, 300.0], requests=30_000, rate=50.0,
        pairs=["ETH/EUR", "BTC/USD", "SOL/USD"], horizons_s=[60, 300, 900], zipf=1.0, seed=3,
        start="2025-06-02T00:00:00Z", start_s=START, model_delay_s=1.0, backend="memory",
        out=str(tmp_path / "results"), market_paths=4,
    )  # fmt: skip
    base.update(kw)
    return BenchOptions(**base)  # type: ignore[arg-type]


COUNTS = ("ttl_s", "hits", "misses", "collapsed", "model_calls", "model_runs", "duplicate_calls",
          "mean_age_s", "max_age_s", "mae_served_bps", "added_error_bps")  # fmt: skip


def test_jobs_give_the_same_rows_as_one_process(models_dir: Path, tmp_path: Path) -> None:
    one = run_bench(options(tmp_path, jobs=1), notify=lambda m: None).rows
    two = run_bench(options(tmp_path, jobs=2), notify=lambda m: None).rows
    assert [{k: r[k] for k in COUNTS} for r in one] == [{k: r[k] for k in COUNTS} for r in two]
    for r in one:
        assert abs(r["hit_ratio"] - r["expected_hit_ratio"]) < 0.01


def trace_rows(n: int) -> tuple[np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(5)
    times = START + np.cumsum(rng.exponential(0.05, n))
    pairs = np.array(["ETH/EUR", "BTC/USD"])[rng.integers(0, 2, n)].tolist()
    horizons = np.array(["1m", "5m"])[rng.integers(0, 2, n)].tolist()
    return times, pairs, horizons


def write_csv(path: Path, times: np.ndarray, pairs: list[str], horizons: list[str]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "pair", "horizon"])
        w.writerows(zip(times.tolist(), pairs, horizons, strict=True))
    return path


def test_parquet_and_csv_traces_replay_the_same(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    times, pairs, horizons = trace_rows(300_000)  # more than one chunk of the reader
    a = write_csv(tmp_path / "t.csv", times, pairs, horizons)
    b = tmp_path / "t.parquet"
    pq.write_table(pa.table({"Timestamp": times, "pair": pairs, "horizon": horizons}), b)
    wa, wb = load_trace(a), load_trace(b)
    assert np.array_equal(wa.times, wb.times) and np.array_equal(wa.key_index, wb.key_index)
    assert wa.keys == wb.keys and wa.requests == 300_000
    rows = []
    for trace in (a, b):
        code = run(["bench", "--trace", str(trace), "--ttl", "0,60", "--backend", "memory",
                    "--market-paths", "2", "--out", str(tmp_path / "r"), "--json"])  # fmt: skip
        assert code == 0
        rows.append(capsys.readouterr().out)
    import json

    csv_rows, parquet_rows = (json.loads(r) for r in rows)
    assert [{k: r[k] for k in COUNTS} for r in csv_rows] == [
        {k: r[k] for k in COUNTS} for r in parquet_rows
    ]


def test_bad_trace_row_deep_in_the_file_names_its_line(tmp_path: Path) -> None:
    times, pairs, horizons = trace_rows(300_000)
    pairs[280_000 - 2] = "DOGE/EUR"  # line 280,000 (the header is line 1)
    path = write_csv(tmp_path / "bad.csv", times, pairs, horizons)
    with pytest.raises(BadDataError, match=r"bad\.csv line 280000: unknown pair DOGE/EUR"):
        load_trace(path)
    horizons[5] = "5 fortnights"  # an earlier bad row wins
    path = write_csv(tmp_path / "bad.csv", times, pairs, horizons)
    with pytest.raises(BadDataError, match=r"line 7: bad horizon"):
        load_trace(path)
    ts = times.astype(object)
    ts[270_000] = "soon"
    pq.write_table(pa.table({"timestamp": ts.astype(str), "pair": pairs, "horizon": horizons}),
                   tmp_path / "bad.parquet")  # fmt: skip
    with pytest.raises(BadDataError, match=r"bad\.parquet row 6: bad horizon"):
        load_trace(tmp_path / "bad.parquet")


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_bad_jobs_is_one_line_exit_2(jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["bench", "--jobs", jobs, "--backend", "memory"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"bad --jobs {jobs}" in err


def test_save_requests_streams_to_csv_or_parquet(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got = {}
    for name, jobs in (("r.csv", "1"), ("r.parquet", "2")):
        path = tmp_path / name
        code = run(["bench", "--ttl", "0,90", "--requests", "2000", "--backend", "memory",
                    "--market-paths", "1", "--out", str(tmp_path / "o"), "--jobs", jobs,
                    "--save-requests", str(path), "--json"])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        capsys.readouterr()
        import pandas as pd

        got[name] = pd.read_parquet(path) if name.endswith("parquet") else pd.read_csv(path)
    a, b = got["r.csv"], got["r.parquet"]
    assert len(a) == len(b) == 4000 and list(a.columns) == list(b.columns)
    assert a["ttl_s"].tolist() == b["ttl_s"].tolist() == [0] * 2000 + [90] * 2000
    assert a["cache"].tolist() == b["cache"].tolist()
    assert np.array_equal(a["served_price"].to_numpy(), b["served_price"].to_numpy())
