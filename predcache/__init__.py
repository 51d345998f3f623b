"""predcache: cache ML predictions with an expiry, and measure what the cache buys and costs.

The package keeps its top level import-light: importing ``predcache`` (or the CLI's hit path)
must not pull in numpy, pandas, fastapi or matplotlib. Heavy modules are imported lazily by
the parts that need them (``market``, ``model``, ``bench``, ``server``, ``report``), and the
Python API (``from predcache import cached, Cache``) is loaded on first use of those names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Cache", "CacheInfo", "CachedResult", "cached"]

if TYPE_CHECKING:
    from predcache.api import Cache, CachedResult, CacheInfo, cached


def __getattr__(name: str) -> Any:
    """The Python API on first use (PEP 562), so ``import predcache`` stays a few modules."""
    if name in __all__:
        from predcache import api

        return getattr(api, name)
    raise AttributeError(f"module 'predcache' has no attribute {name!r}")
