"""The front page at ``/``: what this server is and how it caches, for people and for scripts.

Someone who opens the server's address in a browser should learn, without reading docs, what
answers here, with which cache settings and models, and where to go next (docs, metrics,
health, readiness, one request to copy). An API client asking for ``/`` gets the same facts as
JSON. Nothing secret is shown: a backend URL goes through :func:`redact_url`, and no paths.
The page is one small HTML document with its style inline, so it loads nothing from anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from predcache import config
from predcache.durations import format_duration
from predcache.errors import PredcacheError
from predcache.pairs import CATALOGUE
from predcache.predictor import Predictor
from predcache.registry import ModelRegistry
from predcache.server.settings import ServeSettings
from predcache.store import redact_url

#: (path, what it is), in the order the page lists them; a path the app lacks is left out
LINKS: tuple[tuple[str, str], ...] = (
    ("/docs", "API docs (Swagger UI, works offline); try /predict from the browser"),
    ("/openapi.json", "the OpenAPI document"),
    ("/metrics", "Prometheus metrics: hits, misses, model calls, latency"),
    ("/health", "liveness: the process is up, with its settings"),
    ("/ready", "readiness: the server can answer from its backend"),
)
EXAMPLE_PAIR, EXAMPLE_HORIZON = "ETH/EUR", "5m"
HTML_TYPE, JSON_TYPE = "text/html", "application/json"


def wants_html(accept: str | None) -> bool:
    """True when ``Accept`` names ``text/html`` with a higher (or equal) weight than JSON.

    Browsers send ``text/html,...,*/*;q=0.8``; curl sends ``*/*`` and API clients JSON or
    nothing, so a wildcard counts for JSON only: a client that never names HTML gets JSON.
    """
    html_q = json_q = 0.0
    for part in (accept or "").split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        kind = kind.lower()
        if kind == HTML_TYPE:
            html_q = max(html_q, q)
        elif kind in (JSON_TYPE, "application/*", "*/*"):
            json_q = max(json_q, q)
    return html_q > 0 and html_q >= json_q


def stampede_strategy(settings: ServeSettings) -> str:
    """The stampede strategy this server runs: ``coalesce`` (single-flight in the predictor)
    unless the settings name another one."""
    return str(getattr(settings, "stampede", "coalesce"))


def _registry(models: Any) -> ModelRegistry | None:
    """The registry under any counting wrappers (each keeps its inner source as ``inner``)."""
    for _ in range(8):
        if isinstance(models, ModelRegistry):
            return models
        models = getattr(models, "inner", None)
    return None


def model_facts(predictor: Predictor) -> list[dict[str, Any]]:
    """Each catalogue pair's model version and horizons; ``None`` when not trained yet."""
    registry = _registry(predictor.models)
    out = []
    for pair in CATALOGUE:
        version: str | None = None
        horizons: list[int] = []
        note = "trained on its first request"
        if registry is not None:
            try:
                header = registry.trained(pair)
            except PredcacheError as exc:
                header, note = None, f"unreadable model file: {exc}"
            if header is not None:
                version, horizons, note = header.version, list(header.horizons_s), ""
        else:
            note = "model supplied by the user's code"
        out.append({"pair": pair, "version": version, "horizons_s": horizons, "note": note})
    return out


def facts(
    settings: ServeSettings, predictor: Predictor, base_url: str, routes: Iterable[str]
) -> dict[str, Any]:
    """Everything the front page says, as JSON-ready data (the HTML renders this dict)."""
    have = set(routes)
    store = predictor.store
    query = f"pair={EXAMPLE_PAIR}&horizon={EXAMPLE_HORIZON}"
    return {
        "service": "predcache",
        "description": "Cached ML price predictions over HTTP: a prediction is computed once "
        "per key and served from the cache until its TTL ends.",
        "cache": {
            "enabled": settings.use_cache,
            "backend": None if store is None else store.name,
            "backend_spec": None
            if store is None
            else redact_url(config.backend_spec(settings.backend)),
            "ttl_s": settings.ttl_s,
            "stampede": stampede_strategy(settings),
            "refresh_ahead": settings.refresh_ahead and settings.use_cache,
            "simulated_model_delay_s": settings.model_delay_s,
            "workers": settings.workers,
        },
        "models": model_facts(predictor),
        "links": [{"path": p, "about": about} for p, about in LINKS if p in have],
        "example": {
            "method": "GET",
            "path": f"/predict?{query}",
            "curl": f"curl -s '{base_url.rstrip('/')}/predict?{query}'",
        },
    }


_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
color:#1d2330}h1{margin-bottom:.2rem}p.lead{margin-top:0;color:#4a5263}
table{border-collapse:collapse;margin:.5rem 0 1.2rem}th,td{text-align:left;padding:.25rem .8rem
.25rem 0;border-bottom:1px solid #dde1e8;vertical-align:top}th{font-weight:600}
code,pre{font-family:ui-monospace,monospace;font-size:.92em}pre{background:#f3f5f8;
padding:.8rem;overflow-x:auto;border-radius:4px}a{color:#0b5cad}li{margin:.2rem 0}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_html(data: dict[str, Any], *, favicon: str) -> str:
    """The front page for a browser: the same facts as the JSON, as one small document."""
    cache = data["cache"]
    ttl = format_duration(cache["ttl_s"]) if cache["enabled"] else "off (every request computes)"
    delay = cache["simulated_model_delay_s"]
    settings_rows = [
        ("cache", "on" if cache["enabled"] else "off"),
        ("backend", cache["backend_spec"] or "none"),
        ("TTL", ttl),
        ("stampede strategy", cache["stampede"]),
        ("refresh-ahead", "on" if cache["refresh_ahead"] else "off"),
        ("model delay", f"{format_duration(delay)} (simulated)" if delay else "none"),
        ("workers", cache["workers"]),
    ]
    settings_html = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in settings_rows)
    model_rows = "".join(
        f"<tr><td>{_e(m['pair'])}</td><td><code>{_e(m['version'] or '-')}</code></td>"
        f"<td>{_e(', '.join(format_duration(h) for h in m['horizons_s']) or '-')}</td>"
        f"<td>{_e(m['note'])}</td></tr>"
        for m in data["models"]
    )
    links = "".join(
        f'<li><a href="{_e(link["path"])}">{_e(link["path"])}</a>: {_e(link["about"])}</li>'
        for link in data["links"]
    )
    example = data["example"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>predcache server</title>
<link rel="icon" href="{_e(favicon)}">
<style>{_STYLE}</style></head>
<body><main>
<h1>predcache</h1>
<p class="lead">{_e(data["description"])}</p>
<h2>Where next</h2>
<ul id="links">{links}</ul>
<h2>Example request</h2>
<p><code>{_e(example["method"])} {_e(example["path"])}</code></p>
<pre id="example">{_e(example["curl"])}</pre>
<h2>Cache settings</h2>
<table id="settings">{settings_html}</table>
<h2>Models</h2>
<table id="models"><tr><th>pair</th><th>version</th><th>horizons</th><th></th></tr>
{model_rows}</table>
<p>Send <code>Accept: application/json</code> to get this page as JSON.</p>
</main></body></html>
"""
