"""``--model SPEC``: a model of the user's own behind predict and serve (real files, real CLI)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from predcache import market
from predcache.cli import run
from predcache.errors import ComputeError
from predcache.market import Market
from predcache.plugin import load_plugin
from predcache.predictor import Predictor
from predcache.store.memory import MemoryStore
from tests.fixtures.server import ServerFactory

SCRIPT = Path(sysconfig.get_path("scripts")) / "predcache"

MODEL = """
from pathlib import Path
from predcache import market

CALLS = Path(__file__).with_name("calls.txt")
SWITCH = Path(__file__).with_name("switch.txt")


def predict(pair, horizon_s, as_of):
    with CALLS.open("a") as f:
        f.write(pair + "\\n")
    return 1000.0 + horizon_s


def last(pair, horizon_s, as_of):
    return market.history(pair, as_of, 5)[-1]


def switched(pair, horizon_s, as_of):
    text = SWITCH.read_text().strip() if SWITCH.exists() else "7.5"
    return {"nan": float("nan"), "inf": float("inf"), "str": "7", "bool": True}.get(text, 7.5)


def two(pair, horizon_s):
    return 1.0


def boom(pair, horizon_s, as_of):
    raise RuntimeError("kaput")


NOT_CALLABLE = 3
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.py"
    path.write_text(MODEL)
    return path


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "predcache"]
    return subprocess.run(
        [*exe, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=dict(os.environ)
    )


def test_predict_miss_then_hit_with_the_model_s_value(model_file: Path, tmp_path: Path) -> None:
    spec = f"{model_file}:predict"
    a = json.loads(cli("predict", "ETH/EUR", "--model", spec, "--json").stdout)
    b = json.loads(cli("predict", "ETH/EUR", "--model", spec, "--json").stdout)
    assert (a["cache"], b["cache"]) == ("miss", "hit")
    assert a["predicted_price"] == b["predicted_price"] == 1300.0  # 1000 + 5m
    digest = hashlib.sha256(model_file.read_bytes() + b"\0predict").hexdigest()[:12]
    assert a["model_version"] == f"py-{digest}"
    assert (tmp_path / "calls.txt").read_text() == "ETH/EUR\n"  # the hit called nothing
    model_file.write_text(MODEL + "\n# edited\n")  # a new file is a new version: a miss
    c = json.loads(cli("predict", "ETH/EUR", "--model", spec, "--json").stdout)
    assert c["cache"] == "miss" and c["model_version"] != a["model_version"]


def test_relative_file_and_module_specs_from_the_cwd(model_file: Path, tmp_path: Path) -> None:
    rel = cli("predict", "SOL/USD", "-H", "1m", "--model", "./m.py:predict", "--json", cwd=tmp_path)
    assert json.loads(rel.stdout)["predicted_price"] == 1060.0, rel.stderr
    mod = cli(
        "predict", "SOL/USD", "-H", "1m", "--model", "m:predict", "--model-version", "v2",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    out = json.loads(mod.stdout)
    assert (out["cache"], out["model_version"], out["predicted_price"]) == ("miss", "v2", 1060.0)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("{dir}/missing.py:predict", "no such file"),
        ("{dir}/m.py:nothing", "has no function 'nothing'"),
        ("{dir}/m.py:two", "cannot be called as function(pair, horizon_s, as_of)"),
        ("{dir}/m.py:NOT_CALLABLE", "is not a function"),
        ("{dir}/m.py", "use package.module:function or path/to/file.py:function"),
        ("no_such_module_xyz:predict", "no module named 'no_such_module_xyz'"),
        ("{dir}/m.py:bad-name", "use package.module:function"),
    ],
)
def test_bad_spec_is_exit_2_one_line_nothing_written(
    spec: str, says: str, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = spec.format(dir=tmp_path)
    assert run(["predict", "ETH/EUR", "--model", spec]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err
    assert not (tmp_path / "cache").exists()  # the store was never opened


def test_bad_spec_on_serve_is_exit_2_before_listening(model_file: Path) -> None:
    done = cli("serve", "--port", "1", "--model", f"{model_file}:two")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot be called" in done.stderr


def test_model_version_needs_a_model_and_a_safe_alphabet(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["predict", "ETH/EUR", "--model-version", "v1"]) == 2
    assert run(["predict", "ETH/EUR", "--model", f"{model_file}:predict", "--model-version", "a:b"])
    assert capsys.readouterr().err.splitlines() == [
        "predcache: error: --model-version only applies with --model SPEC",
        "predcache: error: bad --model-version 'a:b': use 1-64 letters, digits, '.', '_' or '-'",
    ]


@pytest.mark.parametrize(
    ("switch", "says"),
    [
        ("nan", "returned nan, expected a finite price > 0"),
        ("inf", "returned inf, expected a finite price > 0"),
        ("str", "returned str, expected a number"),
        ("bool", "returned bool, expected a number"),
    ],
)
def test_non_finite_or_non_number_is_exit_1_and_never_cached(
    switch: str, says: str, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["predict", "ETH/EUR", "--model", f"{model_file}:switched", "--model-version", "s"]
    (tmp_path / "switch.txt").write_text(switch)
    assert run([*args, "--json"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err
    (tmp_path / "switch.txt").write_text("ok")
    assert run([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cache"] == "miss"  # the failure stored nothing


def test_a_raising_model_is_exit_1_one_line(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["predict", "ETH/EUR", "--model", f"{model_file}:boom"]) == 1
    assert capsys.readouterr().err == (
        "predcache: error: model call failed for ETH/EUR: RuntimeError: kaput\n"
    )


def test_nan_is_counted_as_an_error_and_stores_nothing(model_file: Path, tmp_path: Path) -> None:
    (tmp_path / "switch.txt").write_text("nan")
    store = MemoryStore()
    predictor = Predictor(store, load_plugin(f"{model_file}:switched", "s"), ttl_s=60)
    with pytest.raises(ComputeError):
        predictor.get_or_compute("ETH/EUR", 60)
    assert (predictor.stats.errors, store.stats().entries) == (1, 0)


def test_market_helper_shows_prices_up_to_as_of_only() -> None:
    as_of = 1_800_000_059.0  # 59 s into minute 30_000_000
    got = market.history("ETH/EUR", as_of, 3)
    want = Market(0).prices("ETH/EUR", 30_000_000 - 2, 3).tolist()
    assert got == want
    assert market.price("ETH/EUR", as_of) == want[-1]


def test_serve_answers_predict_with_the_plugged_model(
    serve: ServerFactory, model_file: Path
) -> None:
    server = serve("--ttl", "1h", "--model", f"{model_file}:predict", "--model-version", "srv1")
    body = {"product_id": "BTC/USD", "horizon": "15m"}
    first = httpx.post(server.predict_url, json=body, timeout=30)
    second = httpx.post(server.predict_url, json=body, timeout=30)
    assert first.status_code == second.status_code == 200
    assert first.json()["predicted_price"] == second.json()["predicted_price"] == 1900.0
    assert first.json()["model_version"] == "srv1"
    assert first.headers["cache-status"].endswith("fwd=miss; stored")
    assert second.headers["cache-status"].startswith("predcache; hit;")
