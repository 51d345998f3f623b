"""``predcache bench --target URL --rate R``: the simulated workload sent live, open loop.

Against a real ``predcache serve`` (uvicorn, loopback). The load is small (a few seconds at
most); counts that depend on timing are checked through what cannot move (one model call per
key within a TTL, every request answered, the simulated workload's exact schedule).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from predcache.bench.live_open import workload_for
from predcache.bench.live_options import LiveOptions
from predcache.bench.runner import BenchOptions, build_workload
from predcache.bench.workload import DEFAULT_START, parse_start
from predcache.cli import run
from tests.fixtures.server import ServerFactory

START = parse_start(DEFAULT_START)


def live_opts(url: str, **kw: object) -> LiveOptions:
    base: dict[str, object] = {
        "targets": [url], "pairs": ["ETH/EUR", "BTC/USD"], "horizons_s": [300],
        "requests": 80, "rate": 40.0, "zipf": 1.0, "seed": 3, "start": DEFAULT_START,
        "start_s": START,
    }  # fmt: skip
    return LiveOptions(**{**base, **kw})  # type: ignore[arg-type]


def test_the_live_schedule_is_the_simulated_workload() -> None:
    opts = live_opts("http://127.0.0.1:9/predict")
    live = workload_for(opts)
    sim = build_workload(
        BenchOptions(
            ttls_s=[5.0],
            requests=80,
            rate=40.0,
            pairs=["ETH/EUR", "BTC/USD"],
            horizons_s=[300],
            zipf=1.0,
            seed=3,
            start=DEFAULT_START,
            start_s=START,
            model_delay_s=1.0,
            backend="memory",
            out="unused",
        )
    )
    assert np.array_equal(live.times, sim.times) and np.array_equal(live.key_index, sim.key_index)
    # --duration keeps the same arrivals, cut at the duration
    timed = workload_for(live_opts("http://127.0.0.1:9/p", requests=None, duration_s=1.0))
    assert np.array_equal(timed.times, sim.times[sim.times - START < 1.0])


def bench_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    code = run(["bench", "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    assert isinstance(rows, list)
    return rows


def test_open_loop_against_our_server_with_the_simulated_row(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two keys, TTL 10 s, 300 ms model, 80 requests at 40/s (2 s): each key misses once."""
    server = serve("--backend", "memory", "--ttl", "10s", "--model-delay", "300ms")
    rows = bench_json(
        capsys, "--target", server.predict_url, "--rate", "40", "--requests", "80",
        "--pairs", "ETH/EUR,BTC/USD", "--horizons", "5m", "--seed", "3",
        "--compare-simulated", "--out", str(tmp_path / "r"),
    )  # fmt: skip
    live, sim = rows
    assert (live["mode"], sim["mode"]) == ("live", "simulated")
    assert live["requests"] == sim["requests"] == 80 and live["errors"] == 0
    assert live["model_calls"] == sim["model_calls"] == 2  # from the server's /metrics
    assert live["misses"] == sim["misses"] == 2
    assert live["hits"] + live["collapsed"] == 78 and live["collapsed"] >= 1
    assert (live["ttl_s"], live["model_delay_ms"], live["stampede"]) == (10, 300.0, "coalesce")
    assert sim["ttl_s"] == 10 and sim["stampede"] == "coalesce" and sim["market_paths"] == 1
    # latency counts from the scheduled time: a miss waits out the 300 ms model
    assert live["miss_latency_p50_ms"] >= 300  # type: ignore[operator]
    for col in ("client_floor_p50_ms", "plain_loop_p50_ms", "send_lag_p50_ms", "latency_p90_ms"):
        assert isinstance(live[col], float) and live[col] >= 0, col  # type: ignore[operator]
    (run_dir,) = list((tmp_path / "r").iterdir())
    params = json.loads((run_dir / "params.json").read_text())
    assert params["loop"] == "open" and params["client_floor"]["requests"] == 300
    summary = (run_dir / "summary.csv").read_text().splitlines()
    assert len(summary) == 3  # the live and the simulated row of one workload, together


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "bad --rate 0: must be more than 0"),
        (["--rate", "-5"], "bad --rate -5: must be more than 0"),
        (["--compare-simulated"], "--compare-simulated needs --rate"),
        (["--rate", "5", "--concurrency", "2"], "not both"),
        (["--ttl", "5"], "--ttl only apply to the simulated mode"),
        (["--rate", "5", "--target", "http://127.0.0.1:9/q"], "exactly one --target"),
    ],
)
def test_bad_live_input_exits_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["bench", "--target", "http://127.0.0.1:9/p", *args, "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and out == ""


def test_compare_refuses_settings_the_server_does_not_serve(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve("--backend", "memory", "--ttl", "10s")
    code = run(["bench", "--target", server.predict_url, "--rate", "5", "--requests", "5",
                "--compare-simulated", "--ttl", "30", "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--ttl 30.0 does not match the server's 10.0" in err
    assert server.metric("predcache_requests_total") == 0  # refused before sending anything


def test_a_server_address_means_its_predict_url_and_failures_are_said(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve("--backend", "memory", "--ttl", "10s")
    common = ["--rate", "50", "--requests", "10", "--pairs", "ETH/EUR", "--horizons", "5m"]
    (row,) = bench_json(capsys, "--target", server.url + "/", *common, "--out", str(tmp_path))
    assert (row["errors"], row["misses"], row["hits"]) == (0, 1, 9)
    assert row["target"] == server.predict_url
    code = run(["bench", "--target", server.url + "/health", *common, "--json",
                "--out", str(tmp_path)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)[0]["errors"] == 10
    assert err.strip().splitlines()[-1] == (
        f"predcache: 10 of 10 requests to {server.url}/health failed (a non-2xx answer or "
        "none); is it the prediction URL (POST, a JSON body), and is the server up?"
    )
