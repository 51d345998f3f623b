"""The live load generator against real ``predcache serve`` processes (real HTTP, loopback)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from predcache.bench.closedloop import run_live
from predcache.bench.live import live_bench
from predcache.bench.live_options import (
    LiveOptions,
    cache_outcome,
    check_target,
    parse_template,
    render_body,
)
from predcache.cli import run
from predcache.errors import BadInputError
from tests.fixtures.server import ServerFactory, free_port

KEYS = [("ETH/EUR", 300), ("BTC/USD", 300), ("SOL/USD", 60)]


@pytest.mark.parametrize(
    ("header", "outcome"),
    [
        ("predcache; hit; ttl=41", "hit"),
        ("predcache; fwd=miss; collapsed", "collapsed"),
        ("predcache; fwd=miss; collapsed; detail=coalesced", "collapsed"),
        ("predcache; hit; ttl=-3; detail=stale", "stale"),
        ("predcache; hit; ttl=-3", "stale"),
        ("predcache; fwd=miss; stored", "miss"),
        ("predcache; fwd=request; stored", "miss"),
        ("predcache; fwd=bypass", "bypass"),
        ("predcache; fwd=stale; ttl=-12; detail=stale-if-error", "stale-if-error"),
        ("predcache; fwd=stale; ttl=-12", "stale"),
        ("predcache; fwd=bypass; detail=backend-unavailable", "bypass"),
        ("predcache; hit, CDN; fwd=uri-miss", "hit"),  # the first member is nearest the origin
        (None, "unknown"),
        ("weird", "unknown"),
    ],
)
def test_cache_outcome(header: str | None, outcome: str) -> None:
    assert cache_outcome(header) == outcome


def test_body_template_fills_every_string() -> None:
    template = parse_template('{"product_id": "{pair}", "h": "{horizon}", "s": "{horizon_s}"}')
    assert render_body(template, "ETH/EUR", 300) == {"product_id": "ETH/EUR", "h": "5m", "s": 300}
    with pytest.raises(BadInputError):
        parse_template("{not json")
    with pytest.raises(BadInputError):
        check_target("ftp://example.org/predict")


def test_one_target_counts_hits_and_misses_from_cache_status(serve: ServerFactory) -> None:
    server = serve()
    opts = LiveOptions([server.predict_url], ["ETH/EUR", "BTC/USD", "SOL/USD"], [300],
                       requests=120, concurrency=4)  # fmt: skip
    result = run_live(opts)
    log = result.log
    assert len(log.status) == 120 and set(log.status) == {200}
    assert log.cache.count("miss") == len(set(log.key))  # one miss per distinct key, then hits
    # the rest are hits, or collapsed when they came while their key's first call ran
    assert log.cache.count("hit") + log.cache.count("collapsed") == 120 - len(set(log.key))
    assert server.metric("predcache_requests_total") == 120


def test_two_targets_interleaved_side_by_side(serve: ServerFactory, tmp_path: Path) -> None:
    cached, uncached = serve(), serve("--no-cache")
    result = live_bench(
        LiveOptions(
            [cached.predict_url, uncached.predict_url],
            pairs=["ETH/EUR", "BTC/USD"], horizons_s=[300], requests=60, duration_s=None,
            concurrency=3, body_template='{"product_id": "{pair}"}', zipf=1.0, seed=0,
            out=str(tmp_path / "results"), label="pair", save_requests=True,
        ),
        notify=lambda m: None,
    )  # fmt: skip
    rows, run_dir = result.rows, result.run_dir
    assert [r["target"] for r in rows] == [cached.predict_url, uncached.predict_url]
    assert [r["requests"] for r in rows] == [60, 60] and rows[0]["errors"] == 0
    assert rows[0]["hits"] + rows[0]["collapsed"] >= 58 and rows[1]["bypasses"] == 60
    assert rows[0]["p50_ratio_vs_first"] == 1.0 and rows[1]["p50_ratio_vs_first"] is not None
    assert {r["mode"] for r in rows} == {"live"}
    with open(Path(run_dir) / "requests.csv", newline="") as fh:
        log = list(csv.DictReader(fh))
    # interleaved: each workload request went to both targets, with the same key
    by_seq: dict[str, set[str]] = {}
    for rec in log:
        by_seq.setdefault(rec["seq"], set()).add(rec["pair"])
    assert len(by_seq) == 60 and all(len(pairs) == 1 for pairs in by_seq.values())
    with open(Path(run_dir) / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert [s["target"] for s in summary] == [cached.predict_url, uncached.predict_url]
    assert json.loads((Path(run_dir) / "params.json").read_text())["mode"] == "live"


def test_cli_json_against_our_server(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve()
    argv = ["bench", "--target", server.predict_url, "--requests", "300", "--concurrency", "4",
            "--json", "--out", str(tmp_path / "results")]  # fmt: skip
    assert run(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["requests"] == 300 and rows[0]["errors"] == 0
    assert rows[0]["hits"] + rows[0]["collapsed"] + rows[0]["misses"] == 300


def test_cli_two_targets_prints_the_table(
    serve: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = serve(), serve("--no-cache")
    argv = ["bench", "--target", a.predict_url, "--target", b.predict_url, "--requests", "30",
            "--out", str(tmp_path / "results")]  # fmt: skip
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "p99 vs first" in out and a.url.split("://")[1] in out and b.url.split("://")[1] in out


def test_cli_bad_live_options_exit_2(tmp_path: Path) -> None:
    out = str(tmp_path / "r")
    assert run(["bench", "--target", "nope", "--requests", "3", "--out", out]) == 2
    assert (
        run(["bench", "--target", "http://127.0.0.1:9/p", "--concurrency", "0", "--out", out]) == 2
    )
    assert run(["bench", "--target", "http://127.0.0.1:9/p", "--requests", "3",
                "--duration", "1s", "--out", out]) == 2  # fmt: skip


def test_cli_unreachable_target_exits_1(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/predict"
    assert run(["bench", "--target", dead, "--requests", "2", "--out", str(tmp_path)]) == 1
