"""``predcache serve``: the HTTP API in front of the predictor.

The app (:func:`predcache.server.app.create_app`) is a thin adapter: it parses a request, asks
the one :class:`~predcache.predictor.Predictor` (where TTL, max-age and single-flight live) in a
worker thread, and speaks HTTP caching conventions (``Cache-Status``, ``Age``, request
``Cache-Control``). FastAPI is imported only here, never by the CLI at start.
"""
