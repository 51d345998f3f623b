"""A CLI cache hit stays light: no numpy, pandas, fastapi or matplotlib (nor platformdirs).

Not a timing test (timings live in ``benchmarks/perf.py``): it checks *what* the real console
script imports on a hit, which is what makes the hit cheap, and fails the day a top-level
import of a heavy module creeps onto the path. The module list comes from inside the process
that served the hit: the real ``predcache`` script is run through ``runpy`` and
``sys.modules`` is printed when it exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

HEAVY = ("numpy", "pandas", "fastapi", "matplotlib", "uvicorn", "rich", "redis", "pydantic")
SCRIPT = Path(sysconfig.get_path("scripts")) / "predcache"

# Runs the console script exactly as installed, then prints the top-level modules it loaded.
_PROBE = """
import atexit, json, runpy, sys
atexit.register(lambda: print("MODULES=" + json.dumps(sorted(sys.modules))))
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _modules_on(args: list[str], env: dict[str, str]) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out, _, modules = done.stdout.rpartition("MODULES=")
    return out, set(json.loads(modules))


def _top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.fixture()
def home_env(tmp_path: Path) -> dict[str, str]:
    """A fresh HOME with default paths (no PREDCACHE_/XDG_ overrides), as a new user has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREDCACHE_", "XDG_"))}
    env["HOME"] = str(tmp_path / "home")
    return env


def test_cli_hit_imports_no_heavy_module(home_env: dict[str, str]) -> None:
    assert SCRIPT.exists(), f"console script not installed at {SCRIPT}"
    first, miss_modules = _modules_on(["predict", "ETH/EUR", "--ttl", "1h"], home_env)
    assert "MISS" in first
    assert "numpy" in _top_level(miss_modules)  # the probe sees imports: a miss runs numpy
    out, modules = _modules_on(["predict", "ETH/EUR", "--ttl", "1h"], home_env)
    assert " HIT " in out, out
    top = _top_level(modules)
    assert sorted(m for m in HEAVY if m in top) == []
    assert "platformdirs" not in top or sys.platform != "linux"


def test_cli_hit_loads_only_the_predict_command(home_env: dict[str, str]) -> None:
    _modules_on(["predict", "SOL/USD", "--ttl", "1h"], home_env)
    out, modules = _modules_on(["predict", "SOL/USD", "--ttl", "1h"], home_env)
    assert " HIT " in out, out
    commands = sorted(m for m in modules if m.startswith("predcache.cli."))
    for other in ("bench", "cache", "report", "serve", "train"):
        assert f"predcache.cli.{other}" not in commands, commands


@pytest.mark.parametrize(
    "xdg",
    [
        {},
        {"XDG_CACHE_HOME": "/tmp/xdg-cache", "XDG_DATA_HOME": "/tmp/xdg-data"},
        {"XDG_CACHE_HOME": "  ", "XDG_DATA_HOME": "relative/dir"},
        {"XDG_CACHE_HOME": "~/tilde", "XDG_DATA_HOME": ""},
    ],
)
def test_default_dirs_match_platformdirs(
    xdg: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """config's Linux shortcut names the directories platformdirs would (and did before)."""
    import platformdirs

    from predcache import config

    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", config.ENV_CACHE_DIR, config.ENV_MODELS_DIR):
        monkeypatch.delenv(name, raising=False)
    for name, value in xdg.items():
        monkeypatch.setenv(name, value)
    assert str(config.cache_dir()) == platformdirs.user_cache_dir("predcache")
    assert str(config.models_dir()) == str(Path(platformdirs.user_data_dir("predcache")) / "models")
