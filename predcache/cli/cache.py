"""``predcache cache stats``, ``predcache cache clear`` and ``predcache cache purge``."""

from __future__ import annotations

import contextlib
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
        "oldest_age_s": _age(now, st.oldest_created_at),
        "newest_age_s": _age(now, st.newest_created_at),
    }
    if as_json:
        print_json(row)
        return
    row["location"] = config.display_path(st.location)
    for name, value in row.items():
        typer.echo(f"{name:>13}: {'-' if value is None else value}")


def _age(now: float, created_at: float | None) -> float | None:
    """An entry's age, never negative: one stamped ahead of this clock (a writer whose clock
    runs ahead) is 0 s old here, and the predictor treats it as a miss."""
    return None if created_at is None else round(max(0.0, now - created_at), 1)


@cache_app.command("clear")
def clear(backend: str | None = _BACKEND, cache_dir: str | None = _CACHE_DIR) -> None:
    """Remove every stored prediction; prints how many were removed."""
    spec = _shared_spec(backend, "clear")
    with open_store(spec, cache_dir=cache_dir) as store:
        removed = store.clear()
        location = store.stats().location
    typer.echo(f"removed {plural(removed, 'entry')} from {config.display_path(location)}")


@cache_app.command("purge")
def purge_command(
    pair: str | None = typer.Option(
        None, "--pair", help="Only this pair's entries. \\[default: every pair]"
    ),
    horizon: str | None = typer.Option(
        None, "--horizon", help="Only this horizon (e.g. 5m). \\[default: every horizon]"
    ),
    model_version: str | None = typer.Option(
        None, "--model-version", help="Only entries of this model version. \\[default: any]"
    ),
    stale_versions: bool = typer.Option(
        False,
        "--stale-versions",
        help="Only entries of model versions that are no longer current (retrained pairs).",
    ),
    backend: str | None = _BACKEND,
    cache_dir: str | None = _CACHE_DIR,
    models_dir: str | None = options.MODELS_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Remove selected predictions (a pair, a horizon, a model version); prints how many."""
    from predcache.durations import parse_horizon
    from predcache.errors import BadInputError
    from predcache.pairs import parse_pair
    from predcache.purge import purge, selector

    if model_version is not None and stale_versions:
        raise BadInputError("--model-version and --stale-versions exclude each other")
    if pair is None and horizon is None and model_version is None and not stale_versions:
        raise BadInputError(
            "say what to purge: --pair, --horizon, --model-version or --stale-versions "
            "(`predcache cache clear` removes everything)"
        )
    pair_c = None if pair is None else parse_pair(pair)
    horizon_s = None if horizon is None else parse_horizon(horizon)
    spec = config.backend_spec(backend)
    with open_store(spec, cache_dir=cache_dir) as store:
        current = _current_versions(store.entry_keys(), models_dir) if stale_versions else None
        match = selector(
            pair=pair_c, horizon_s=horizon_s, model_version=model_version, current_versions=current
        )
        removed = purge(store, match)
        location = store.stats().location
    if as_json:
        print_json({"removed": removed, "location": location})
        return
    typer.echo(f"removed {plural(removed, 'entry')} from {config.display_path(location)}")


def _current_versions(keys: list[str], models_dir: str | None) -> dict[str, str]:
    """pair -> the version of its model file now, for the pairs in ``keys`` that have one."""
    from predcache.errors import ModelError
    from predcache.keys import parse_key
    from predcache.registry import ModelRegistry

    registry = ModelRegistry(config.models_dir(models_dir), auto_train=False)
    current: dict[str, str] = {}
    for pair in {parsed[1] for parsed in map(parse_key, keys) if parsed is not None}:
        with contextlib.suppress(ModelError):  # no model any more: all its entries are stale
            current[pair] = registry.version(pair)
    return current
