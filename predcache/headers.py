"""HTTP caching headers for an answer served through the Python API (any web framework).

``Cache-Status`` (RFC 9211) comes from the one function that writes it for ``predcache serve``
(:func:`predcache.server.protocol.response_headers`), so an app using ``@cached`` says the same
things the server does; ``Age`` (RFC 9111) on a hit; ``Cache-Control: max-age`` is what is
left of the entry's freshness, so a client or proxy in front keeps it no longer than predcache
would. Plain Python: no framework is imported here.
"""

from __future__ import annotations

from typing import Any

from predcache.api import CachedResult


def cache_headers(result: CachedResult[Any]) -> dict[str, str]:
    """``Cache-Status``, ``Age`` (hits only) and ``Cache-Control`` for ``result``."""
    from predcache.server.protocol import response_headers as wire

    headers = {
        k.decode().title(): v.decode()
        for k, v in wire(result.served, result.limit_s, False, False)
        if k != b"etag"
    }
    if result.outcome == "bypass":
        headers["Cache-Control"] = "max-age=0"
    return headers


def set_cache_headers(response: Any, result: CachedResult[Any]) -> None:
    """Set :func:`cache_headers` on ``response`` (anything with a ``headers`` mapping, such as
    FastAPI's / Starlette's ``Response``)."""
    for name, value in cache_headers(result).items():
        response.headers[name] = value
