"""Map predcache's one exception tree to HTTP: a status and an RFC 9457 problem document.

There is no second exception tree: the request problems only HTTP has (a body that is not JSON
or too large, an answer refused by ``only-if-cached``, a purge the server was not started to
allow) are :class:`PredcacheError` subclasses here, and everything else is mapped from
:mod:`predcache.errors`. Every 4xx/5xx the server sends, the framework's own 404/405/422
included, is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and
a stable ``code``; a client never sees a traceback.

``type`` is ``about:blank`` (RFC 9457 section 4.2.1: no further semantics than the status), so
``title`` is the status phrase and the machine-readable kind is ``code``.
"""

from __future__ import annotations

import re
from http import HTTPStatus

import orjson

from predcache.errors import (
    BackendUnavailableError,
    BadInputError,
    ComputeError,
    ModelError,
    PredcacheError,
    StoreError,
)

PROBLEM_TYPE = b"application/problem+json"
#: every problem answer: never stored by a cache on the way
PROBLEM_HEADERS = ((b"content-type", PROBLEM_TYPE), (b"cache-control", b"no-store"))


class BadBodyError(BadInputError):
    """The request body is empty or is not JSON (400)."""


class BodyTooLargeError(BadInputError):
    """The request body is above the cap (413)."""


class NotCachedError(PredcacheError):
    """``only-if-cached`` and no acceptable entry (504, RFC 9111 section 5.2.1.7)."""


class PurgeDisabledError(PredcacheError):
    """``DELETE /predict`` on a server started without ``--allow-purge`` (403)."""


#: most specific first; the first ``isinstance`` match wins
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (BodyTooLargeError, 413),
    (BadBodyError, 400),
    (BadInputError, 422),
    (NotCachedError, 504),
    (PurgeDisabledError, 403),
    (ComputeError, 503),
    (ModelError, 503),
    (BackendUnavailableError, 503),
    (StoreError, 503),
    (PredcacheError, 500),
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
#: codes for statuses the framework answers itself (no predcache exception behind them)
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    422: "bad_request",
    500: "internal",
}


def status_for(exc: Exception) -> int:
    """The HTTP status for an exception (500 for anything predcache did not raise on purpose)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def code_for(exc: Exception) -> str:
    """``BadPairError`` -> ``bad_pair``: one stable code per exception class."""
    if not isinstance(exc, PredcacheError):
        return "internal"
    name = type(exc).__name__.removesuffix("Error") or "predcache"
    return _CAMEL.sub("_", name).lower()


def problem(status: int, code: str, detail: str) -> bytes:
    """An RFC 9457 problem document."""
    return orjson.dumps(
        {
            "type": "about:blank",
            "title": _phrase(status),
            "status": status,
            "detail": detail,
            "code": code,
        }
    )


def problem_for(exc: Exception) -> tuple[int, bytes]:
    """(status, problem document) for ``exc``; unplanned errors say nothing of their insides."""
    status = status_for(exc)
    if not isinstance(exc, PredcacheError):
        return status, problem(status, "internal", "internal error; see the server log")
    return status, problem(status, code_for(exc), str(exc))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
