"""Settings for one ``predcache serve`` process, and how they travel to worker processes.

With ``--workers N`` uvicorn starts fresh interpreters that build the app from an import
string, so the settings go through one environment variable as JSON (no pickles).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from predcache import config
from predcache.stampede import DEFAULT_STRATEGY

ENV_SETTINGS = "PREDCACHE_SERVE_SETTINGS"
#: request bodies above this are refused with 413 before any parsing (also chunked bodies)
MAX_BODY_BYTES = 64 * 1024
# the connection limits' defaults, without importing uvicorn here (the CLI reads settings too)
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 1000
#: worker threads for predictor calls: a request waiting for its key's computation holds one,
#: and one key holds at most 4 (predcache.server.gate), so many slow keys never starve the rest
DEFAULT_THREADS = 256


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``create_app`` needs; already validated by the CLI."""

    host: str = "127.0.0.1"
    port: int = 8000
    ttl_s: float = config.DEFAULT_TTL_S
    no_cache: bool = False
    backend: str | None = None
    cache_dir: str | None = None
    size_limit: int | None = None
    models_dir: str | None = None
    #: ``--model SPEC`` (a file path made absolute) and its version; ``None``: the toy model
    model: str | None = None
    model_version: str | None = None
    model_delay_s: float = 0.0
    workers: int = 1
    refresh_ahead: bool = False
    #: XFetch's beta: > 1 refreshes earlier, < 1 later (1 is the paper's optimum)
    refresh_beta: float = 1.0
    max_body_bytes: int = MAX_BODY_BYTES
    threads: int = DEFAULT_THREADS
    #: an entry stamped further ahead of this clock is a miss (a writer's clock runs ahead)
    max_clock_skew_s: float = config.DEFAULT_MAX_CLOCK_SKEW_S
    #: request line + headers above this get 431 (:mod:`predcache.server.limits`)
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    #: a request's headers must arrive within this, else 408 and the connection is closed
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    #: open connections per process past which a request gets 503 at once
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: set by ``serve --workers N``: the parent's pid (workers end with it) and metrics dir
    parent_pid: int | None = None
    metrics_dir: str | None = None
    #: ``DELETE /predict`` removes entries (it changes state, so it is off unless asked)
    allow_purge: bool = False
    #: serve an expired entry this long past expiry when the model fails (RFC 5861; 0 = off)
    stale_if_error_s: float = 0.0
    #: simulated: this fraction of model calls fail (to rehearse stale-if-error)
    model_fail_rate: float = 0.0
    #: what a request does while its key is computed or just expired (predcache.stampede)
    stampede: str = DEFAULT_STRATEGY
    #: stale-while-revalidate: how long after expiry an entry may still be served
    stale_grace_s: float = 0.0

    @property
    def use_cache(self) -> bool:
        return not self.no_cache and self.ttl_s > 0

    def to_env(self) -> str:
        """JSON for :data:`ENV_SETTINGS`."""
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeSettings:
        """The settings a parent ``predcache serve`` left in the environment (or the defaults)."""
        raw = os.environ.get(ENV_SETTINGS)
        if not raw:
            return cls()
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
