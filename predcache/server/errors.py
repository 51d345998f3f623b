"""Map predcache's one exception tree to HTTP status codes and JSON error bodies.

There is no second exception tree: the two request-body problems that only HTTP has (a body
that is not JSON, a body that is too large) are :class:`BadInputError` subclasses here, and
everything else is mapped from :mod:`predcache.errors`. A client never sees a traceback.
"""

from __future__ import annotations

import re

from predcache.errors import (
    BackendUnavailableError,
    BadInputError,
    ComputeError,
    ModelError,
    PredcacheError,
    StoreError,
)


class BadBodyError(BadInputError):
    """The request body is empty or is not JSON (400)."""


class BodyTooLargeError(BadInputError):
    """The request body is above the cap (413)."""


#: most specific first; the first ``isinstance`` match wins
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (BodyTooLargeError, 413),
    (BadBodyError, 400),
    (BadInputError, 422),
    (ComputeError, 503),
    (ModelError, 503),
    (BackendUnavailableError, 503),
    (StoreError, 503),
    (PredcacheError, 500),
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def status_for(exc: Exception) -> int:
    """The HTTP status for an exception (500 for anything predcache did not raise on purpose)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: Exception) -> dict[str, str]:
    """``{"error": "bad_pair", "detail": "<one line>"}``; unplanned errors say nothing inside."""
    if not isinstance(exc, PredcacheError):
        return {"error": "internal", "detail": "internal error; see the server log"}
    name = type(exc).__name__.removesuffix("Error") or "predcache"
    return {"error": _CAMEL.sub("_", name).lower(), "detail": str(exc)}
