"""The layering ARCHITECTURE.md describes, checked on the source: imports only point down."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "predcache"
#: the front ends; nothing in the core may import them
FRONT_ENDS = ("predcache.cli", "predcache.server", "predcache.bench", "predcache.report")
#: ``python -m predcache`` is the CLI's own entry point
ENTRY_POINTS = {"predcache.__main__"}
#: the one sideways import ARCHITECTURE.md names: the Python API's header helper reuses the
#: server's Cache-Status writer so both say the same thing
ALLOWED = {("predcache.headers", "predcache.server.protocol")}


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_only_the_cli_imports_the_cli() -> None:
    offenders = {
        mod
        for mod, deps in MODULES.items()
        if not _under(mod, "predcache.cli")
        and mod not in ENTRY_POINTS
        and any(_under(d, "predcache.cli") for d in deps)
    }
    assert offenders == set()


def test_the_core_imports_no_front_end() -> None:
    core = {
        m for m in MODULES if not any(_under(m, f) for f in FRONT_ENDS) and m not in ENTRY_POINTS
    }
    assert {"predcache.predictor", "predcache.store.base", "predcache.keys"} <= core
    offenders = {
        (mod, dep)
        for mod in core
        for dep in MODULES[mod]
        if any(_under(dep, f) for f in FRONT_ENDS)
        and not any(mod == a and _under(dep, b) for a, b in ALLOWED)
    }
    assert offenders == set()


def test_the_scan_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from predcache.cli import app\n    import predcache.bench\n")
    assert {"predcache.cli", "predcache.cli.app", "predcache.bench"} <= imports(source)


def test_no_module_is_too_long_to_read_in_one_sitting() -> None:
    lengths = {
        module_name(p): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert {m: n for m, n in lengths.items() if n > 400} == {}
