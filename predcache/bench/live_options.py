"""The live bench's options, validated in one place, and the request bodies they imply.

:class:`LiveOptions` is what ``predcache bench --target URL`` parsed; :meth:`LiveOptions.check`
turns every bad combination into one :class:`BadInputError` line before anything is sent.
Two load generators read it: the closed loop (``--concurrency``, :mod:`closedloop`) and the
open loop (``--rate``, :mod:`openloop`), which replays the simulated bench's workload for the
same flags.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from predcache.bench import results
from predcache.durations import format_duration
from predcache.errors import BadInputError
from predcache.stampede import DEFAULT_STRATEGY, Strategy
from predcache.store import redact_url

Key = tuple[str, int]

DEFAULT_REQUESTS = 1000
DEFAULT_CONCURRENCY = 4
MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 256
MAX_DURATION_S = 600.0
MAX_TEMPLATE_BYTES = 64 * 1024
#: The seed's body plus our horizon (extra JSON fields are ignored by the seed's API).
DEFAULT_BODY_TEMPLATE = '{"product_id": "{pair}", "horizon": "{horizon}"}'


@dataclass(frozen=True)
class Comparison:
    """``--compare-simulated``: the server's settings, for the simulated run of the workload."""

    ttl_s: float
    model_delay_s: float
    stampede: Strategy = DEFAULT_STRATEGY
    stale_grace_s: float = 0.0
    backend: str = "memory"


@dataclass(frozen=True)
class LiveOptions:
    """A live run: closed loop when ``rate`` is None, else open loop at ``rate`` per second."""

    targets: list[str]
    pairs: list[str]
    horizons_s: list[int]
    requests: int | None = DEFAULT_REQUESTS
    duration_s: float | None = None
    rate: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    body_template: str = DEFAULT_BODY_TEMPLATE
    zipf: float = 1.0
    seed: int = 0
    start: str = ""
    start_s: float = 0.0
    out: str = "results"
    label: str | None = None
    save_requests: bool = False
    compare: Comparison | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    @property
    def keys(self) -> list[Key]:
        return [(p, h) for p in self.pairs for h in self.horizons_s]

    def command(self) -> str:
        """The command line that repeats this run (:func:`results.command_line`): the workload
        written out in full, and ``--compare-simulated`` with the settings the comparison used
        (given, or read from the server's /health), so a rerun compares the same thing."""
        c = self.compare
        grace = format_duration(c.stale_grace_s) if c is not None and c.stale_grace_s else None
        return results.command_line(
            [
                *[("--target", url) for url in self.targets],
                ("--rate", self.rate),
                ("--concurrency", None if self.open_loop else self.concurrency),
                ("--requests", self.requests),
                (
                    "--duration",
                    None if self.duration_s is None else format_duration(self.duration_s),
                ),
                ("--pairs", self.pairs),
                ("--horizons", [format_duration(h) for h in self.horizons_s]),
                ("--zipf", self.zipf),
                ("--seed", self.seed),
                ("--start", self.start or None),
                ("--body-template", self.body_template),
                ("--compare-simulated", c is not None),
                ("--ttl", None if c is None else format_duration(c.ttl_s)),
                ("--model-delay", None if c is None else format_duration(c.model_delay_s)),
                ("--stampede", None if c is None else c.stampede),
                ("--stale-grace", grace),
                ("--out", self.out),
                ("--save-requests", self.save_requests),
                ("--label", self.label or None),
            ]
        )

    def check(self) -> LiveOptions:
        """Every combination rule, as one readable line each; returns self."""
        for url in self.targets:
            check_target(url)
        if not self.targets:
            raise BadInputError("live mode needs at least one --target URL")
        if self.duration_s is not None:
            if self.requests is not None:
                raise BadInputError(
                    "use either --requests or --duration in the live mode, not both"
                )
            if not 0 < self.duration_s <= MAX_DURATION_S:
                raise BadInputError("bad --duration: must be > 0 and at most 10m")
        elif self.requests is None or not 1 <= self.requests <= MAX_REQUESTS:
            raise BadInputError(f"bad --requests {self.requests}: must be 1..{MAX_REQUESTS:,}")
        if self.rate is not None:
            if not (math.isfinite(self.rate) and self.rate > 0):
                raise BadInputError(f"bad --rate {self.rate:g}: must be more than 0 per second")
            if len(self.targets) != 1:
                raise BadInputError("--rate (the open loop) takes exactly one --target")
        elif not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise BadInputError(
                f"bad --concurrency {self.concurrency}: must be 1..{MAX_CONCURRENCY}"
            )
        if self.compare is not None and self.rate is None:
            raise BadInputError("--compare-simulated needs --rate (the open-loop workload)")
        parse_template(self.body_template)
        return self

    def bodies(self) -> list[bytes]:
        """One request body per key, in key order."""
        template = parse_template(self.body_template)
        return [
            json.dumps(render_body(template, p, h), separators=(",", ":")).encode()
            for p, h in self.keys
        ]


def predict_url(url: str) -> str:
    """A target given as a server's address (no path, or ``/``) means its ``POST /predict``,
    the one route a prediction API has here (predcache's and the seed's); other URLs as given."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url  # check_target says what is wrong with it
    if parts.path in ("", "/") and parts.scheme in ("http", "https") and parts.netloc:
        return urlunsplit(parts._replace(path="/predict"))
    return url


def check_target(url: str) -> str:
    """An http(s) URL with a host, or one :class:`BadInputError` line."""
    parts = urlsplit(url) if len(url) <= 2000 else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact_url(url[:80])
        raise BadInputError(f"bad --target {shown!r}: expected http://host:port/path")
    return url


def parse_template(text: str) -> Any:
    """The JSON body template; ``{pair}``, ``{horizon}`` (``5m``) and ``{horizon_s}`` (300)
    are replaced in every string value of each request."""
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise BadInputError("bad --body-template: larger than 64 KiB")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"bad --body-template: not JSON ({exc.msg})") from None


def render_body(template: Any, pair: str, horizon_s: int) -> Any:
    """The template with the key filled in; ``"{horizon_s}"`` alone becomes a JSON number."""
    if isinstance(template, str):
        if template == "{horizon_s}":
            return horizon_s
        return (
            template.replace("{pair}", pair)
            .replace("{horizon_s}", str(horizon_s))
            .replace("{horizon}", format_duration(horizon_s))
        )
    if isinstance(template, dict):
        return {k: render_body(v, pair, horizon_s) for k, v in template.items()}
    if isinstance(template, list):
        return [render_body(v, pair, horizon_s) for v in template]
    return template


#: the outcome of an answer the server gave stale because the model failed (RFC 5861)
STALE_IF_ERROR = "stale-if-error"


def cache_outcome(header: str | None) -> str:
    """hit | collapsed | stale | stale-if-error | miss | bypass | unknown, from an RFC 9211
    ``Cache-Status`` (first member: the cache nearest the origin, which is ours when a proxy
    adds its own after it). A stale answer is a hit with a negative ``ttl`` or
    ``detail=stale``, or ``fwd=stale``; ``detail=stale-if-error`` says the model failed."""
    if not header:
        return "unknown"
    params = [p.strip() for p in header.split(",")[0].split(";")[1:]]
    if "detail=stale-if-error" in params:
        return STALE_IF_ERROR
    if "collapsed" in params:
        return "collapsed"
    if "hit" in params:
        stale = "detail=stale" in params or any(p.startswith("ttl=-") for p in params)
        return "stale" if stale else "hit"
    for p in params:
        if p.startswith("fwd="):
            return {"fwd=bypass": "bypass", "fwd=stale": "stale"}.get(p, "miss")
    return "unknown"
