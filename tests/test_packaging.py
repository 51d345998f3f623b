"""What predcache imports is declared, and constraints.txt pins every declared package."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    """``uvloop>=0.19; sys_platform != 'win32'`` -> ``uvloop`` (normalised)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _project() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"runtime": data["dependencies"], "dev": data["optional-dependencies"]["dev"]}


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "predcache").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"predcache"}


def test_every_imported_package_is_declared() -> None:
    declared = {_name(r) for r in _project()["runtime"]}
    owners = metadata.packages_distributions()
    undeclared = {
        module: owners.get(module)
        for module in _imported_top_levels()
        if not any(_name(d) in declared for d in owners.get(module, [module]))
    }
    assert undeclared == {}, f"imported but not in [project] dependencies: {undeclared}"


def test_no_stub_package_shadows_inline_types() -> None:
    dev = {_name(r) for r in _project()["dev"]}
    assert "types-redis" not in dev  # redis ships py.typed; the stubs describe redis 4.6


def test_constraints_pin_every_declared_package() -> None:
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pairs = [line.partition("==") for line in lines if line and not line.startswith("#")]
    pins = {_name(name): version for name, _, version in pairs}
    assert all(v and not v.startswith("=") for v in pins.values()), "every line is name==version"
    for req in _project()["runtime"] + _project()["dev"]:
        assert _name(req) in pins, f"{req} is declared but not pinned in constraints.txt"
    assert "predcache" not in pins
