"""predcache: cache ML predictions with an expiry, and measure what the cache buys and costs.

The package keeps its top level import-light: importing ``predcache`` (or the CLI's hit path)
must not pull in numpy, pandas, fastapi or matplotlib. Heavy modules are imported lazily by
the parts that need them (``market``, ``model``, ``bench``, ``server``, ``report``).
"""

__version__ = "0.1.0"
