"""A ``--workers 2`` server and the CLI on one disk store: each sees the other's writes at once.

The disk store's readers keep decoded entries (predcache.store.disk_reader); here real
processes -- two uvicorn workers and ``predcache`` CLI runs -- replace, delete, purge and clear
the entry, and the very next answer on the other side must reflect it: never the entry that
was removed or replaced. Entries are told apart by their creation instant (the ETag's ``@ms``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from predcache.store.disk import DiskStore
from tests.fixtures.server import ServerFactory
from tests.test_cli import cli

TTL = "1h"  # nothing expires during the test: every change is someone's write
#: requests per check, each on a new connection, so both workers answer some
REQUESTS = 12


def stored_ms(cache_dir: Path) -> list[int]:
    """The creation instants (ms) of the entries in the store, read directly."""
    store = DiskStore(cache_dir)
    try:
        found = [store.get(k) for k in store.entry_keys()]
        return sorted(int(float(e["created_at"]) * 1000) for e in found if e is not None)
    finally:
        store.close()


def answers(url: str, n: int = REQUESTS) -> list[tuple[str, int]]:
    """(Cache-Status, the entry's ms from the ETag) of ``n`` requests on new connections."""
    out = []
    for _ in range(n):
        r = httpx.post(url, content=b'{"product_id": "ETH/EUR", "horizon": "5m"}', timeout=30)
        assert r.status_code == 200, r.text
        tag = re.fullmatch(r'W/"[^"]+@(\d+)"', r.headers["etag"])
        assert tag is not None, r.headers
        out.append((r.headers["cache-status"].split(";")[1].strip(), int(tag.group(1))))
    return out


def cli_predict(cache_dir: Path, *flags: str) -> str:
    done = cli(
        "predict", "ETH/EUR", "--backend", "disk", "--cache-dir", str(cache_dir), "--ttl", TTL,
        "--json", *flags,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["cache"])


def test_workers_and_cli_see_each_others_writes_and_removals(
    serve: ServerFactory, tmp_path: Path, models_dir: Path
) -> None:
    server = serve("--workers", "2", "--backend", "disk", "--ttl", TTL, "--allow-purge")
    d = tmp_path / "serve-cache-0"  # the serve fixture's cache dir for its first server
    url = server.predict_url

    assert cli_predict(d) == "miss"  # the CLI writes the entry
    (first,) = stored_ms(d)
    assert answers(url) == [("hit", first)] * REQUESTS

    assert cli_predict(d, "--refresh") == "miss"  # the CLI replaces it
    (second,) = stored_ms(d)
    assert second != first
    assert answers(url) == [("hit", second)] * REQUESTS

    purged = httpx.delete(url, params={"pair": "ETH/EUR"}, timeout=30)  # the server deletes it
    assert purged.json()["purged"] == 1
    assert stored_ms(d) == []
    assert cli_predict(d) == "miss"  # the CLI does not see the deleted entry
    (third,) = stored_ms(d)
    assert answers(url) == [("hit", third)] * REQUESTS

    for removal in (["cache", "purge", "--pair", "ETH/EUR"], ["cache", "clear"]):
        done = cli(*removal, "--backend", "disk", "--cache-dir", str(d))
        assert done.returncode == 0, done.stderr
        assert stored_ms(d) == []
        got = answers(url)
        (fresh,) = stored_ms(d)  # the first answer computed and stored a new entry
        assert fresh != third
        assert got == [("fwd=miss", fresh)] + [("hit", fresh)] * (REQUESTS - 1)
        third = fresh
    assert cli_predict(d) == "hit"
