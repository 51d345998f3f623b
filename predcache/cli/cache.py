"""``predcache cache stats`` and ``predcache cache clear``."""

from __future__ import annotations

import time

import typer

from predcache import config
from predcache.cli import options
from predcache.cli.app import cache_app
from predcache.cli.render import print_json
from predcache.store import open_store, redact_url

_BACKEND = options.BACKEND
_CACHE_DIR = options.CACHE_DIR


@cache_app.command("stats")
def stats(
    backend: str | None = _BACKEND,
    cache_dir: str | None = _CACHE_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Backend, location, entries, bytes on disk, oldest and newest entry age."""
    spec = config.backend_spec(backend)
    with open_store(spec, cache_dir=cache_dir) as store:
        st = store.stats()
    now = time.time()
    row = {
        "backend": redact_url(spec),
        "location": st.location,
        "entries": st.entries,
        "bytes": st.bytes,
        "oldest_age_s": None
        if st.oldest_created_at is None
        else round(now - st.oldest_created_at, 1),
        "newest_age_s": None
        if st.newest_created_at is None
        else round(now - st.newest_created_at, 1),
    }
    if as_json:
        print_json(row)
        return
    for name, value in row.items():
        typer.echo(f"{name:>13}: {'-' if value is None else value}")


@cache_app.command("clear")
def clear(backend: str | None = _BACKEND, cache_dir: str | None = _CACHE_DIR) -> None:
    """Remove every stored prediction; prints how many were removed."""
    spec = config.backend_spec(backend)
    with open_store(spec, cache_dir=cache_dir) as store:
        removed = store.clear()
        location = store.stats().location
    typer.echo(f"removed {removed} entries from {location}")
