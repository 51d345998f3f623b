"""Where predcache keeps things, and the environment variables that move them.

- cache store: ``platformdirs.user_cache_dir("predcache")``; ``--cache-dir`` or
  ``PREDCACHE_CACHE_DIR``.
- model artifacts: ``platformdirs.user_data_dir("predcache")/models``; ``--models-dir`` or
  ``PREDCACHE_MODELS_DIR``.
- backend: ``disk``; ``--backend`` or ``PREDCACHE_BACKEND``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_CACHE_DIR = "PREDCACHE_CACHE_DIR"
ENV_MODELS_DIR = "PREDCACHE_MODELS_DIR"
ENV_BACKEND = "PREDCACHE_BACKEND"
DEFAULT_BACKEND = "disk"
DEFAULT_TTL_S = 90.0
#: how far ahead of the reader's clock an entry's created_at may be before it is not trusted
DEFAULT_MAX_CLOCK_SKEW_S = 5.0
DEFAULT_HORIZON_S = 300
#: the horizons ``predcache train`` fits by default (and the auto-trained model has)
DEFAULT_HORIZONS_S: tuple[int, ...] = (60, 300, 900, 3600)
#: One fixed market time: the bench's traffic starts here and the default training window
#: (``predcache train``, and the model a first ``predict`` trains) ends here. Fixed, not "today",
#: so the same command trains the same model version on any day and machine.
DEFAULT_MARKET_TIME = "2025-06-02T00:00:00Z"
DEFAULT_MARKET_TIME_S = 1_748_822_400  # the same instant as epoch seconds


def cache_dir(override: str | Path | None = None) -> Path:
    """The disk store's directory."""
    return _user_dir(override, ENV_CACHE_DIR, "XDG_CACHE_HOME", "~/.cache", "user_cache_dir")


def models_dir(override: str | Path | None = None) -> Path:
    """The directory of trained model artifacts (one JSON file per pair)."""
    return _user_dir(
        override, ENV_MODELS_DIR, "XDG_DATA_HOME", "~/.local/share", "user_data_dir", "models"
    )


def _user_dir(
    override: str | Path | None,
    env_var: str,
    xdg_var: str,
    xdg_default: str,
    platform_fn: str,
    *sub: str,
) -> Path:
    """The option, else the environment variable, else ``<platform's per-user dir>/<sub>``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    xdg = _xdg_dir(xdg_var, xdg_default)
    if xdg is not None:
        return xdg.joinpath("predcache", *sub)
    import platformdirs

    return Path(getattr(platformdirs, platform_fn)("predcache")).joinpath(*sub)


def _xdg_dir(variable: str, default: str) -> Path | None:
    """On Linux, the XDG base directory platformdirs would name, without importing it.

    Importing platformdirs is a measurable part of a ``predcache predict`` cache hit (check c of
    ``benchmarks/perf.py``, docs/performance.md) for a rule that on Linux is two lines of the XDG
    spec: an absolute ``$XDG_..._HOME``, else the default under HOME. Elsewhere (macOS, Windows,
    Android) platformdirs decides.
    """
    if sys.platform != "linux" or "ANDROID_ROOT" in os.environ:
        return None
    value = os.environ.get(variable, "")
    if value.strip() and os.path.isabs(value):
        return Path(value)
    return Path(os.path.expanduser(default))


def display_path(path: str | Path) -> str:
    """A path as people read it: ``~/...`` under the home directory (as the docs show paths),
    anything else as given. For messages only; JSON output keeps the absolute path."""
    text = str(path)
    home = os.path.expanduser("~").rstrip(os.sep)
    if home and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def backend_spec(override: str | None = None) -> str:
    """The backend spec: ``memory``, ``disk``, ``disk:///path`` or a ``redis*://`` URL."""
    return override or os.environ.get(ENV_BACKEND) or DEFAULT_BACKEND
