"""The one place that formats cache keys.

A prediction's key is model version + pair + horizon, so retraining (a new version) invalidates
every old entry by construction. Stores put a namespace in front (a bench configuration, a
Redis prefix) with :func:`namespaced`; lock names come from :func:`lock_key`. No other code
formats keys.
"""

from __future__ import annotations

KEY_SCHEMA = "v1"


def prediction_key(model_version: str, pair: str, horizon_s: int) -> str:
    """``v1:<model_version>:<PAIR>:<horizon_s>``; the pair must already be validated."""
    return f"{KEY_SCHEMA}:{model_version}:{pair}:{horizon_s}"


def namespaced(namespace: str, key: str) -> str:
    """A store's view of a key: ``<namespace>:<key>`` (or the key alone without a namespace)."""
    return f"{namespace}:{key}" if namespace else key


def lock_key(key: str) -> str:
    """The name of the single-flight lock that guards one prediction key."""
    return f"{key}:lock"
