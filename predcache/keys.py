"""The one place that formats cache keys.

A prediction's key is model version + pair + horizon, so retraining (a new version) invalidates
every old entry by construction. Stores put a namespace in front (a bench configuration, a
Redis prefix) with :func:`namespaced`; lock names come from :func:`lock_key`. No other code
formats keys.
"""

from __future__ import annotations

import hashlib

KEY_SCHEMA = "v1"
#: what :func:`lock_key` appends; :func:`slot_tagged` recognises it
LOCK_SUFFIX = ":lock"


def prediction_key(model_version: str, pair: str, horizon_s: int) -> str:
    """``v1:<model_version>:<PAIR>:<horizon_s>``; the pair must already be validated."""
    return f"{KEY_SCHEMA}:{model_version}:{pair}:{horizon_s}"


def call_key(version: str, name: str, args_json: str) -> str:
    """``v1:<version>:<name>:<digest>``: the Python API's key for a call of function ``name``.

    ``args_json`` is the canonical JSON of the call's arguments (:mod:`predcache.api`); only a
    SHA-256 of it (128 bits, 32 hex digits) goes into the key, so keys stay short whatever the
    arguments, and never contain braces (the Redis Cluster hash tag of :func:`slot_tagged`).
    """
    digest = hashlib.sha256(args_json.encode()).hexdigest()[:32]
    return f"{KEY_SCHEMA}:{version}:{name}:{digest}"


def parse_key(key: str) -> tuple[str, str, int] | None:
    """(model_version, pair, horizon_s) from a :func:`prediction_key`; ``None`` for anything else
    (a lock, a namespaced key, a :func:`call_key`, a foreign key). Purges select with it."""
    parts = key.split(":")
    if len(parts) != 4 or parts[0] != KEY_SCHEMA or "/" not in parts[2] or not parts[3].isascii():
        return None
    if not parts[3].isdigit():
        return None
    return parts[1], parts[2], int(parts[3])


def namespaced(namespace: str, key: str) -> str:
    """A store's view of a key: ``<namespace>:<key>`` (or the key alone without a namespace)."""
    return f"{namespace}:{key}" if namespace else key


def lock_key(key: str) -> str:
    """The name of the single-flight lock that guards one prediction key."""
    return f"{key}{LOCK_SUFFIX}"


def slot_tagged(prefix: str, key: str) -> str:
    """A shared backend's view of a key: ``<prefix>:{<key>}``, its lock ``<prefix>:{<key>}:lock``.

    The braces are a Redis Cluster hash tag: only the part inside them picks the slot, so a
    prediction and its single-flight lock always land on the same node (a Lua script or a
    MULTI that touches both stays legal). Keys are ``v1:<version>:<PAIR>:<horizon>``, which
    never contain braces; a key that did would still be stored, just without the guarantee.
    """
    base, suffix = key, ""
    if key.endswith(LOCK_SUFFIX):
        base, suffix = key[: -len(LOCK_SUFFIX)], LOCK_SUFFIX
    return f"{namespaced(prefix, '{' + base + '}')}{suffix}"
