"""Redis Cluster and Sentinel: the same store on several hosts, no single point of failure.

Both reuse :class:`predcache.store.redis.RedisStore` whole (commands, keys, lock script, error
mapping, stats) and change only how the clients are made and what counts as unreachable:

- **Cluster** (``redis+cluster://h:p,h:p``): redis-py's ``RedisCluster`` learns the slot map from
  any reachable start-up node and routes each key to its slot's primary. Keys are hash-tagged
  (:func:`predcache.keys.slot_tagged`), so a prediction and its single-flight lock live on one
  slot and the compare-and-delete Lua script is legal. When a primary dies, commands for its
  slots fail (connection refused, then ``CLUSTERDOWN`` until a replica is promoted): those
  errors open the circuit breaker like a dead single server, requests are answered as
  ``bypass``, and the breaker's probe finds the promoted replica through the refreshed slot map.
- **Sentinel** (``redis+sentinel://h:p,h:p/SERVICE``): each new connection asks the sentinels
  for the service's current primary, so after a failover the next connection goes to the new
  one. ``?read=replica`` sends ``get`` to a replica; writes and locks always go to the primary.

Neither client is contacted before first use, so an unreachable cluster fails no start-up: its
first request is a ``bypass`` with one warning (as on plain Redis).
"""

from __future__ import annotations

from typing import Any

from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.sentinel import Sentinel

from predcache.store.redis import RedisStore, connection_retry
from predcache.store.redis_url import CLUSTER, SENTINEL, RedisSettings


class RedisClusterStore(RedisStore):
    """The store on a Redis Cluster: each key on its slot's primary."""

    #: a slot without a primary (``CLUSTERDOWN``, ``TRYAGAIN``), no reachable start-up node
    unreachable = (
        *RedisStore.unreachable,
        ClusterDownError,
        TryAgainError,
        SlotNotCoveredError,
        RedisClusterException,
    )

    def _connect(self) -> tuple[Any, Any]:
        s = self.settings
        client: Any = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in s.hosts],
            username=s.username,
            password=s.password,
            ssl=s.ssl,
            socket_timeout=s.socket_timeout_s,
            socket_connect_timeout=s.connect_timeout_s,
            max_connections=s.max_connections,
            # one retry, right away: after a dead node redis-py has re-read the slot map, so
            # the retry goes to the promoted replica if there is one (no backoff sleeps)
            retry=connection_retry(),
        )
        return client, client

    def _drop_idle(self) -> None:
        """Nothing to do: redis-py drops a failed node's connections and re-reads the slot map."""

    def _mget(self, keys: list[bytes]) -> list[bytes | None]:
        """``MGET`` per slot (keys of one batch live on many slots)."""
        return list(self._client().mget_nonatomic(keys))

    def close(self) -> None:
        for client in self._clients():
            client.close()


class RedisSentinelStore(RedisStore):
    """The store on the primary the sentinels name (and, if asked, reads on a replica)."""

    def _connect(self) -> tuple[Any, Any]:
        s = self.settings
        timeouts: dict[str, Any] = {
            "socket_timeout": s.socket_timeout_s,
            "socket_connect_timeout": s.connect_timeout_s,
        }
        if s.ssl:
            timeouts["ssl"] = True
        sentinel = Sentinel(list(s.hosts), sentinel_kwargs=dict(timeouts), **timeouts)
        data: dict[str, Any] = {
            "db": s.db,
            "username": s.username,
            "password": s.password,
            "max_connections": s.max_connections,
            "retry": connection_retry(),
        }
        writer = sentinel.master_for(s.service, **data)
        reader = sentinel.slave_for(s.service, **data) if s.read_replica else writer
        return writer, reader


def open_topology(settings: RedisSettings, namespace: str = "") -> RedisStore:
    """The store class for a multi-host URL (``open_redis_store`` adds the breaker)."""
    if settings.topology == CLUSTER:
        return RedisClusterStore(settings, namespace=namespace)
    assert settings.topology == SENTINEL, settings.topology
    return RedisSentinelStore(settings, namespace=namespace)
