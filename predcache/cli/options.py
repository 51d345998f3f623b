"""Options that several commands share, declared once so they read and behave the same.

Help text is rich markup (typer renders it with rich): a literal ``[`` must be written ``\\[``
or rich takes ``[default: 20000]`` for a style tag and drops it. ``tests/test_help.py`` renders
every command's help and checks that each bracketed default and variable shows.
"""

from __future__ import annotations

import typer

from predcache.config import DEFAULT_MAX_CLOCK_SKEW_S, DEFAULT_TTL_S
from predcache.durations import format_duration

BACKEND = typer.Option(
    None,
    "--backend",
    help="memory | disk | disk:///path | redis://host:port/db | "
    "redis+cluster://host:port,host:port | redis+sentinel://host:port,host:port/service. "
    "\\[env PREDCACHE_BACKEND; default: disk]",
)
CACHE_DIR = typer.Option(
    None,
    "--cache-dir",
    help="Disk store directory. \\[env PREDCACHE_CACHE_DIR; default: ~/.cache/predcache]",
)
MODELS_DIR = typer.Option(
    None,
    "--models-dir",
    help="Model artifacts directory. "
    "\\[env PREDCACHE_MODELS_DIR; default: models/ in ~/.local/share/predcache]",
)
SIZE_LIMIT = typer.Option(
    None,
    "--size-limit",
    help="Disk store size cap, e.g. 256M, 256MiB or 1G; the oldest entries are evicted past "
    "it. \\[default: 256MiB]",
)
MAX_CLOCK_SKEW = typer.Option(
    format_duration(DEFAULT_MAX_CLOCK_SKEW_S),
    "--max-clock-skew",
    help="An entry stamped further ahead of this host's clock is a miss (a writer's clock "
    "runs ahead) and is replaced.",
)
TTL = typer.Option(
    format_duration(DEFAULT_TTL_S),
    "--ttl",
    help="How long a stored prediction stays fresh (0 = no caching).",
)
MODEL = typer.Option(
    None,
    "--model",
    help="Your model instead of the toy one: package.module:function or path/file.py:function, "
    "called as function(pair, horizon_s, as_of) -> price. \\[default: the trained toy model]",
)
MODEL_VERSION = typer.Option(
    None,
    "--model-version",
    help="Version of --model in cache keys. \\[default: a hash of the model's source file]",
)
MODEL_FAIL_RATE = typer.Option(
    None,
    "--model-fail-rate",
    help="Simulated: this fraction of model calls fail (0 to 1), to rehearse failures "
    "(the bench's die is seeded by --seed). \\[default: 0]",
)
STALE_IF_ERROR = typer.Option(
    None,
    "--stale-if-error",
    help="If the model fails, serve the entry if it expired less than this long ago "
    "(RFC 5861). \\[default: 0 = off]",
)
