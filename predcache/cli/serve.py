"""``predcache serve``: the HTTP API in front of the model (FastAPI + uvicorn).

The command only validates options and starts uvicorn; the app is
:func:`predcache.server.app.create_app`. fastapi and uvicorn are imported here, inside the
command, never when the CLI starts.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import sys

import typer

from predcache import config
from predcache.cli import options
from predcache.cli.app import app
from predcache.durations import format_duration, parse_duration
from predcache.errors import BadInputError, PredcacheError
from predcache.server.settings import DEFAULT_MAX_CONNECTIONS, ENV_SETTINGS, ServeSettings
from predcache.sizes import parse_size
from predcache.stampede import (
    COALESCE,
    DEFAULT_STRATEGY,
    REFRESH_AHEAD,
    check_grace,
    parse_strategy,
)

#: prometheus_client's multiprocess directory (as predcache.server.metrics, not imported here)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _notice(message: str) -> None:
    print(f"predcache serve: {message}", file=sys.stderr, flush=True)


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (loopback by default; others are explicit)."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    ttl: str = options.TTL,
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Compute every request (the seed's API without cache)."
    ),
    backend: str | None = options.BACKEND,
    cache_dir: str | None = options.CACHE_DIR,
    size_limit: str | None = options.SIZE_LIMIT,
    models_dir: str | None = options.MODELS_DIR,
    model_delay: str = typer.Option(
        "0", "--model-delay", help="Simulated extra model time per call (e.g. 1s, as in the seed)."
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Worker processes (share the disk or redis store)."
    ),
    refresh_ahead: bool = typer.Option(
        False,
        "--refresh-ahead",
        help="Recompute hot keys in the background before they expire (XFetch).",
    ),
    model: str | None = options.MODEL,
    model_version: str | None = options.MODEL_VERSION,
    allow_purge: bool = typer.Option(
        False,
        "--allow-purge",
        help="Allow DELETE /predict?pair=P (and &horizon=H) to remove stored predictions.",
    ),
    stale_if_error: str | None = options.STALE_IF_ERROR,
    model_fail_rate: float | None = options.MODEL_FAIL_RATE,
    stampede: str = typer.Option(
        DEFAULT_STRATEGY,
        "--stampede",
        help="What a request does while its key is computed: coalesce (wait for it: "
        "single-flight), none (compute too), stale-while-revalidate (serve the expired entry "
        "within --stale-grace while one refresh runs), refresh-ahead (as --refresh-ahead).",
    ),
    stale_grace: str | None = typer.Option(
        None,
        "--stale-grace",
        help="stale-while-revalidate: serve an entry up to this long after it expires, e.g. 5s.",
    ),
    max_clock_skew: str = options.MAX_CLOCK_SKEW,
    max_header_size: str = typer.Option(
        "16KiB", "--max-header-size", help="Request line + headers past this get 431."
    ),
    header_timeout: str = typer.Option(
        "10s", "--header-timeout", help="Headers not complete within this get 408, closed."
    ),
    max_connections: int = typer.Option(
        DEFAULT_MAX_CONNECTIONS,
        "--max-connections",
        min=1,
        help="Open connections per worker past which requests get 503 at once "
        "(kept below the open-file limit).",
    ),
) -> None:
    """Serve predictions over HTTP: GET/POST/HEAD/DELETE /predict, /health, /ready, /metrics,
    docs at /docs."""
    import uvicorn

    strategy = parse_strategy(stampede)
    grace_s = check_grace(
        [strategy], None if stale_grace is None else parse_duration(stale_grace, name="stale-grace")
    )
    model, model_version = _plugin(model, model_version)
    from predcache.faults import check_fail_rate

    settings = ServeSettings(
        host=host,
        port=port,
        ttl_s=parse_duration(ttl, name="ttl"),
        no_cache=no_cache,
        backend=backend,
        cache_dir=cache_dir,
        size_limit=None if size_limit is None else parse_size(size_limit, name="size-limit"),
        models_dir=models_dir,
        model_delay_s=parse_duration(model_delay, name="model-delay"),
        workers=workers,
        refresh_ahead=refresh_ahead or strategy == REFRESH_AHEAD,
        stampede=COALESCE if strategy == REFRESH_AHEAD else strategy,
        stale_grace_s=grace_s,
        model=model,
        model_version=model_version,
        allow_purge=allow_purge,
        stale_if_error_s=parse_duration(stale_if_error or "0", name="stale-if-error"),
        max_clock_skew_s=parse_duration(max_clock_skew, name="max-clock-skew"),
        max_header_bytes=parse_size(
            max_header_size, name="max-header-size", minimum=1024, maximum=16 << 20
        ),
        header_timeout_s=parse_duration(header_timeout, name="header-timeout"),
        max_connections=max_connections,
        model_fail_rate=check_fail_rate(model_fail_rate or 0.0),
    )
    if not host.strip():
        raise BadInputError("bad host: empty (use 127.0.0.1 for this machine only)")
    check_listen(host, port)
    _announce(settings)
    from predcache.server.limits import uvicorn_limits
    from predcache.server.orphans import make_metrics_dir

    # never count into a metrics directory inherited from the environment by accident (a
    # one-worker server would add dead processes' requests): only ``--workers N`` sets one
    os.environ.pop(MULTIPROC_ENV, None)
    run = {"host": host, "port": port, "log_level": "warning", "access_log": False}
    run.update(uvicorn_limits(settings.max_connections))
    if workers == 1:
        from predcache.server.app import create_app

        uvicorn.run(create_app(settings), **run)  # type: ignore[arg-type]
        return
    _check_backend(settings)
    metrics_dir = make_metrics_dir()
    os.environ[MULTIPROC_ENV] = metrics_dir
    settings = dataclasses.replace(settings, parent_pid=os.getpid(), metrics_dir=metrics_dir)
    os.environ[ENV_SETTINGS] = settings.to_env()
    try:
        uvicorn.run(
            "predcache.server.app:app_from_env",
            factory=True,
            workers=workers,
            **run,  # type: ignore[arg-type]
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _plugin(model: str | None, version: str | None) -> tuple[str | None, str | None]:
    """Load ``--model`` once here, so a bad SPEC is one line and exit 2 before the banner, and
    every worker uses the same absolute path and the same version (hashed once, here)."""
    from predcache.factory import select_models

    source = select_models(model, version)
    if model is None:
        return None, None
    from predcache.plugin import normalize_spec

    return normalize_spec(model), source.version("")


def check_listen(host: str, port: int) -> None:
    """Fail as one line (exit 1) when ``host:port`` cannot be listened on, before the banner.

    Without this, uvicorn prints its own ``[Errno 98]`` line after predcache's banner and exits
    3. The probe binds the way uvicorn will (``SO_REUSEADDR``, so a port in TIME_WAIT after a
    restart is not refused) and closes at once; uvicorn binds again a moment later.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BadInputError(f"bad host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
            probe.listen()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise PredcacheError(f"cannot listen on {host}:{port}: {reason}") from None


def _announce(s: ServeSettings) -> None:
    """One startup line on stderr; the model delay is labelled simulated."""
    cache = "off (--no-cache)" if not s.use_cache else f"ttl {format_duration(s.ttl_s)}"
    backend = config.backend_spec(s.backend) if s.use_cache else "-"
    if "@" in backend:
        from predcache.store import redact_url

        backend = redact_url(backend)
    delay = format_duration(s.model_delay_s)
    model = f"model {s.model} ({s.model_version}), " if s.model else ""
    failing = f", simulated model failures {s.model_fail_rate:.0%}" if s.model_fail_rate else ""
    _notice(
        f"http://{s.host}:{s.port}  {model}cache {cache}, backend {backend}, workers {s.workers}, "
        f"refresh-ahead {'on' if s.refresh_ahead else 'off'}, stampede {s.stampede}"
        + (f" (grace {format_duration(s.stale_grace_s)})" if s.stale_grace_s else "")
        + f", simulated model delay {delay}"
        f"{failing}; API docs at /docs"
    )
    if s.host not in LOOPBACK:
        _notice(f"binding to {s.host}: reachable from other machines")
    if s.workers > 1 and s.use_cache and backend == "memory":
        _notice("memory backend with several workers: each worker has its own cache")


def _check_backend(s: ServeSettings) -> None:
    """Fail in the parent, as one line, before workers start and fail one by one."""
    from predcache.store import open_store

    if s.use_cache:
        open_store(config.backend_spec(s.backend), cache_dir=s.cache_dir).close()
