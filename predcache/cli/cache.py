"""``predcache cache stats`` and ``predcache cache clear``."""

from __future__ import annotations

import time

import typer

from predcache import config
from predcache.cli import options
from predcache.cli.app import cache_app
from predcache.cli.render import print_json
from predcache.errors import BadInputError
from predcache.store import open_store, redact_url

_BACKEND = options.BACKEND
_CACHE_DIR = options.CACHE_DIR


def _shared_spec(backend: str | None, command: str) -> str:
    """The backend spec; refuses ``memory``, which lives inside one process (a server, a bench)
    and would look empty from this new one, whatever the server holds."""
    spec = config.backend_spec(backend)
    if spec == "memory":
        raise BadInputError(
            f"cache {command} --backend memory: a memory store lives inside one process "
            "(serve, bench) and this command cannot see it; ask a running server's /metrics, "
            "or use the disk or redis backend to share entries between processes"
        )
    return spec


def plural(count: int, noun: str) -> str:
    """``1 entry``, ``2 entries``, ``0 entries``."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {_PLURALS.get(noun, noun + 's')}"


_PLURALS = {"entry": "entries"}


@cache_app.command("stats")
def stats(
    backend: str | None = _BACKEND,
    cache_dir: str | None = _CACHE_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Backend, location, entries and their bytes, oldest and newest entry age."""
    spec = _shared_spec(backend, "stats")
    with open_store(spec, cache_dir=cache_dir) as store:
        st = store.stats()
    now = time.time()
    row: dict[str, object] = {
        "backend": redact_url(spec),
        "location": st.location,
        "entries": st.entries,
        "bytes": st.bytes,
        **(st.extra or {}),
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
    row["location"] = config.display_path(st.location)
    for name, value in row.items():
        typer.echo(f"{name:>13}: {'-' if value is None else value}")


@cache_app.command("clear")
def clear(backend: str | None = _BACKEND, cache_dir: str | None = _CACHE_DIR) -> None:
    """Remove every stored prediction; prints how many were removed."""
    spec = _shared_spec(backend, "clear")
    with open_store(spec, cache_dir=cache_dir) as store:
        removed = store.clear()
        location = store.stats().location
    typer.echo(f"removed {plural(removed, 'entry')} from {config.display_path(location)}")
