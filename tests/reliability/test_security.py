"""Security: private store, loopback bind, validated pairs, redacted passwords, no pickle.

The store and the server are the real ones (a diskcache directory, a uvicorn subprocess, a
redis-server); the package scan reads predcache's own source with :mod:`ast`.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import httpx

from predcache.keys import LOCK_SUFFIX
from predcache.store.disk import DiskStore
from tests.fixtures.server import ServerFactory
from tests.reliability import figures
from tests.reliability.helpers import REPO, cli

KEY = re.compile(r"^v1:[0-9a-f]+:[A-Z0-9]{2,10}/[A-Z0-9]{2,10}:[0-9]+$")
HOSTILE_PAIRS = [
    "../../x",
    "ETH/EUR\r\nX-Injected: 1",
    "ETH/EUR\nINFO fake log line",
    "ETH/EUR:*",
    "v1:abc:ETH/EUR:300",
    "{ETH/EUR}",
    "ETH/EUR\x00",
    "$(touch pwned)/EUR",
    "A" * 10_000,
    "\u0415\u0422\u041d/EUR",  # Cyrillic look-alikes of ETH
]


def test_store_dir_and_every_file_are_private(tmp_path: Path) -> None:
    store_dir = tmp_path / "new" / "store"
    with DiskStore(store_dir) as store:
        e = {"pair": "ETH/EUR", "horizon_s": 300, "predicted_price": 1.0, "as_of": 1.0,
             "created_at": 1.0, "model_version": "x", "compute_ms": 1.0}  # fmt: skip
        store.set("small", e)
        store.set("large", dict(e, pad="x" * 100_000))  # above diskcache's 32 KB file size
        assert store.get("large") is not None
    assert store_dir.stat().st_mode & 0o777 == 0o700
    for p in store_dir.rglob("*"):
        assert p.stat().st_mode & 0o077 == 0, f"{p.relative_to(store_dir)} is readable by others"


def _listening(port: int) -> list[str]:
    """Local addresses listening on ``port`` (IPv4 and IPv6), from /proc/net/tcp*."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A = LISTEN
                found.append(addr)
    return found


def test_serve_binds_loopback_and_pairs_never_reach_keys_paths_or_logs(
    serve: ServerFactory, tmp_path: Path
) -> None:
    server = serve()  # no --host: the default
    port = int(server.url.rsplit(":", 1)[1])
    assert _listening(port) == ["0100007F"]  # 127.0.0.1, and nothing else
    statuses = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for pair in HOSTILE_PAIRS:
            for r in (
                client.post("/predict", json={"product_id": pair}),
                client.get("/predict", params={"pair": pair}),
            ):
                statuses.append(r.status_code)
                assert r.status_code == 422, (pair[:40], r.status_code)
                assert len(r.content) < 600
                assert "\n" not in r.json()["detail"] and "\r" not in r.json()["detail"]
                assert not any(k.lower() == "x-injected" for k in r.headers)
        assert client.post("/predict", json={"product_id": "ETH/EUR"}).status_code == 200
        over = client.post("/predict", content=b" " * (64 * 1024 + 1))
        assert over.status_code == 413
    log = server.log.read_text(errors="replace")
    assert "X-Injected" not in log and "fake log line" not in log and "AAAAAAAA" not in log
    assert not list(tmp_path.rglob("pwned")) and not (tmp_path / "x").exists()
    with DiskStore(tmp_path / "serve-cache-0") as store:
        keys = [k for k in store.cache.iterkeys() if not str(k).endswith(LOCK_SUFFIX)]
    assert keys and all(KEY.match(str(k)) for k in keys), keys
    figures.add("security", hostile_pairs_sent=len(statuses), bind_checked=1, body_cap_checked=1)


def test_redis_password_is_never_printed(
    redis_url: str, models_dir: Path, tmp_path: Path, serve: ServerFactory
) -> None:
    secret = "s3cret-Pw-91"
    with_pw = redis_url.replace("redis://", f"redis://:{secret}@")  # the server has no password
    runs = [
        cli("predict", "ETH/EUR", "--backend", with_pw),
        cli("predict", "ETH/EUR", "--backend", with_pw.replace("/0", "/zero")),
        cli("cache", "stats", "--backend", with_pw),
        cli("bench", "--backend", with_pw, "--requests", "200", "--out", str(tmp_path / "r")),
    ]
    for out in runs:
        assert secret not in out.stdout + out.stderr, out.stderr
    for f in (tmp_path / "r").rglob("*"):
        if f.is_file():
            assert secret not in f.read_text(errors="replace"), f
    server = serve("--backend", with_pw)
    httpx.post(server.predict_url, json={"product_id": "ETH/EUR"}, timeout=10)
    assert secret not in server.log.read_text()
    figures.add("security", password_outputs_checked=len(runs) + 1)


#: modules whose import means deserialising code, and names whose use means the same
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal"}
BANNED_CALLS = {"eval", "exec"}
#: (file, name) pairs allowed on purpose: the disk store *refuses* pickles by checking
#: diskcache's MODE_PICKLE tag and raising PickleRefused; it never unpickles anything.
ALLOWED = {("store/disk.py", "MODE_PICKLE"), ("store/disk.py", "PickleRefused")}


def scan(source: str, name: str) -> list[str]:
    """Every banned construct in one module: imports, pickle names, eval/exec, yaml.load,
    ``allow_pickle=True``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            found += [f"import {m}" for m in mods if m and m.split(".")[0] in BANNED_MODULES]
            if isinstance(node, ast.ImportFrom):
                found += [
                    f"from {node.module} import {a.name}"
                    for a in node.names
                    if "pickle" in a.name.lower() and (name, a.name) not in ALLOWED
                ]
        elif isinstance(node, ast.Name | ast.Attribute):
            ident = node.id if isinstance(node, ast.Name) else node.attr
            if "pickle" in ident.lower() and (name, ident) not in ALLOWED:
                found.append(ident)
        elif isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Name) and fn.id in BANNED_CALLS:
                found.append(f"{fn.id}(")
            if (
                isinstance(fn, ast.Attribute)
                and fn.attr in {"load", "load_all", "unsafe_load"}
                and isinstance(fn.value, ast.Name)
                and fn.value.id == "yaml"
            ):
                found.append(f"yaml.{fn.attr}(")
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append("allow_pickle=<not False>")
    return found


def test_the_scanner_catches_what_it_bans() -> None:
    planted = (
        "import pickle\nfrom dill import loads\nx = pickle.loads(b'')\neval('1')\n"
        "import numpy as np\nnp.load('f', allow_pickle=True)\nimport yaml\nyaml.load('a')\n"
    )
    assert len(scan(planted, "planted.py")) >= 6
    assert scan("from diskcache.core import MODE_PICKLE\n", "other.py") != []
    assert scan("from diskcache.core import MODE_PICKLE\n", "store/disk.py") == []


def test_no_pickle_eval_or_unsafe_load_in_the_package() -> None:
    package = REPO / "predcache"
    files = sorted(package.rglob("*.py"))
    problems = {}
    for f in files:
        source = f.read_text(encoding="utf-8")
        name = f.relative_to(package).as_posix()
        found = scan(source, name)
        if "allow_pickle=True" in source:
            found.append("allow_pickle=True (text)")
        if found:
            problems[name] = found
    assert problems == {}, json.dumps(problems, indent=1)
    figures.add("security", source_files_scanned=len(files))
