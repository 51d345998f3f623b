"""The Redis backend URLs, parsed once into :class:`RedisSettings` (no network here).

Three shapes, one option set:

- ``redis://[[user]:password@]host[:port][/db]`` (``rediss://`` for TLS): one server.
- ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (``rediss+cluster://``): Redis
  Cluster. The hosts are start-up nodes: any reachable one is enough, the rest are discovered.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/SERVICE[/db]``
  (``rediss+sentinel://``): the hosts are sentinels (default port 26379); they name the current
  primary of ``SERVICE``. The password is the data nodes' (sentinels are asked without one).

Options (``?name=value&...``): ``socket_timeout`` and ``connect_timeout`` (default 250ms),
``max_connections`` (128, per node), ``prefix`` (``predcache``), ``retry_after`` (1s, the
circuit breaker's pause), and for Sentinel ``read=primary|replica`` (default primary; replica
reads can lag the primary by the replication delay).

Malformed input is :class:`BadBackendError` (exit 2). Every message shows the URL through
:func:`predcache.store.redact_url`, so a password never reaches a log, an error or a results file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from predcache.durations import parse_duration
from predcache.errors import BadBackendError, BadDurationError

DEFAULT_PREFIX = "predcache"
DEFAULT_SOCKET_TIMEOUT_S = 0.25
DEFAULT_CONNECT_TIMEOUT_S = 0.25
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_RETRY_AFTER_S = 1.0
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379

SINGLE, CLUSTER, SENTINEL = "redis", "redis+cluster", "redis+sentinel"
#: URL scheme -> (topology, TLS)
SCHEMES = {
    "redis": (SINGLE, False),
    "rediss": (SINGLE, True),
    "redis+cluster": (CLUSTER, False),
    "rediss+cluster": (CLUSTER, True),
    "redis+sentinel": (SENTINEL, False),
    "rediss+sentinel": (SENTINEL, True),
}
EXAMPLES = {
    SINGLE: "redis://127.0.0.1:6379/0",
    CLUSTER: "redis+cluster://10.0.0.1:6379,10.0.0.2:6379",
    SENTINEL: "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster",
}
_OPTIONS = {"socket_timeout", "connect_timeout", "max_connections", "prefix", "retry_after"}
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class RedisSettings:
    """A parsed backend URL: what to connect to, and how patiently."""

    url: str  # one server: the URL redis-py gets (password included, predcache's options not)
    shown: str  # the canonical URL with the password redacted: the only form that is printed
    topology: str = SINGLE
    hosts: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    service: str = ""  # Sentinel: the monitored primary's name
    db: int = 0
    read_replica: bool = False  # Sentinel: reads from a replica (writes always to the primary)
    prefix: str = DEFAULT_PREFIX
    socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    retry_after_s: float = DEFAULT_RETRY_AFTER_S


def parse_redis_url(spec: str) -> RedisSettings:
    """Validate ``spec`` (any of the three shapes); :class:`BadBackendError` if it is wrong."""
    from predcache.store import redact_url

    shown = redact_url(spec)
    bare = shown.split("?", 1)[0]  # option values could be secrets: errors about them omit them
    scheme = spec.split("://", 1)[0] if "://" in spec else ""
    if scheme not in SCHEMES:
        raise BadBackendError(f"bad backend {shown!r}: use {' or '.join(EXAMPLES.values())}")
    topology, ssl = SCHEMES[scheme]
    parts = urlsplit(spec)
    creds, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = creds.partition(":")
    default_port = DEFAULT_SENTINEL_PORT if topology == SENTINEL else DEFAULT_PORT
    hosts = _hosts(hostlist, default_port, topology, bare)
    service, db = _path(parts.path, topology, bare)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    known = _OPTIONS | ({"read"} if topology == SENTINEL else set())
    unknown = sorted(set(options) - known)
    if unknown:
        raise BadBackendError(
            f"bad backend {bare!r}: unknown option {unknown[0]!r} "
            f"(known: {', '.join(sorted(known))}; put a password in the URL as :PASSWORD@host)"
        )
    read = options.get("read", "primary")
    if read not in ("primary", "replica"):
        raise BadBackendError(f"bad backend {bare!r}: read must be primary or replica")
    try:
        socket_timeout = _timeout(options, "socket_timeout", DEFAULT_SOCKET_TIMEOUT_S)
        connect_timeout = _timeout(options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_S)
        retry_after = parse_duration(
            options.get("retry_after", DEFAULT_RETRY_AFTER_S), name="retry_after"
        )
    except BadDurationError as exc:
        raise BadBackendError(f"bad backend {bare!r}: {exc}") from exc
    max_conn = options.get("max_connections", str(DEFAULT_MAX_CONNECTIONS))
    if not max_conn.isdigit() or not 1 <= int(max_conn) <= 10_000:
        raise BadBackendError(f"bad backend {bare!r}: max_connections must be 1..10000")
    prefix = options.get("prefix", DEFAULT_PREFIX)
    if not prefix or any(c in prefix for c in "{}*?[]\\ "):
        raise BadBackendError(f"bad backend {bare!r}: prefix must be non-empty, no {{}}*?[]\\")
    netloc = ",".join(_address(h, p) for h, p in hosts)
    if creds:
        netloc = f"{creds}@{netloc}"
    path = {SINGLE: f"/{db}", CLUSTER: "", SENTINEL: f"/{service}/{db}"}[topology]
    canonical = urlunsplit((scheme, netloc, path, "", ""))
    return RedisSettings(
        url=canonical,
        shown=redact_url(canonical),
        topology=topology,
        hosts=hosts,
        username=unquote(user) or None,
        password=unquote(password) or None,
        ssl=ssl,
        service=service,
        db=db,
        read_replica=read == "replica",
        prefix=prefix,
        socket_timeout_s=socket_timeout,
        connect_timeout_s=connect_timeout,
        max_connections=int(max_conn),
        retry_after_s=retry_after,
    )


def _hosts(
    hostlist: str, default_port: int, topology: str, bare: str
) -> tuple[tuple[str, int], ...]:
    """``h[:p][,h[:p]...]`` (IPv6 as ``[::1]:p``) as (host, port) pairs; one only for ``redis``."""
    items = [h.strip() for h in hostlist.split(",")] if hostlist else []
    if not items or not all(items):
        raise BadBackendError(f"bad backend {bare!r}: no host (e.g. {EXAMPLES[topology]})")
    if topology == SINGLE and len(items) > 1:
        raise BadBackendError(
            f"bad backend {bare!r}: redis:// takes one host; for several use "
            f"{EXAMPLES[CLUSTER]} or {EXAMPLES[SENTINEL]}"
        )
    hosts: list[tuple[str, int]] = []
    for item in items:
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        else:
            host, colon, port_text = item.rpartition(":")
            if not colon:
                host, port_text = item, ""
        if not host:
            raise BadBackendError(f"bad backend {bare!r}: no host in {item!r}")
        if port_text and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
            raise BadBackendError(f"bad backend {bare!r}: bad port {port_text!r} (1..65535)")
        hosts.append((host, int(port_text) if port_text else default_port))
    return tuple(hosts)


def _path(path: str, topology: str, bare: str) -> tuple[str, int]:
    """The service name (Sentinel) and database number the URL's path names."""
    segments = [s for s in path.split("/") if s]
    service = ""
    if topology == SENTINEL:
        if not segments or not _SERVICE.match(segments[0]):
            raise BadBackendError(
                f"bad backend {bare!r}: name the sentinel service, e.g. {EXAMPLES[SENTINEL]}"
            )
        service, segments = segments[0], segments[1:]
    if len(segments) > 1 or (segments and not segments[0].isdigit()):
        raise BadBackendError(f"bad backend {bare!r}: the database must be a number, e.g. /0")
    db = int(segments[0]) if segments else 0
    if topology == CLUSTER and db != 0:
        raise BadBackendError(f"bad backend {bare!r}: Redis Cluster has database 0 only")
    return service, db


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _timeout(options: dict[str, str], name: str, default: float) -> float:
    value = parse_duration(options.get(name, default), name=name)
    if not 0 < value <= 60:
        raise BadDurationError(f"bad {name}: {options.get(name)!r} (must be > 0 and <= 60s)")
    return value
