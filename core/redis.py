"""The one way the bots (client, sales, master) make their Redis client.

After a Redis restart (or a connection killed by the server, a proxy or suspension's CLIENT
KILL), the pool still holds the dead connections; each would fail the first command sent on it.
So: a connection idle longer than `HEALTH_CHECK_SECONDS` is PINGed before use, and a command
that fails on a broken connection is retried on a fresh one a few times with a short jittered
backoff (redis-py's own `Retry`). During a real outage a command still fails quickly (about a
second of retries, short socket timeouts), so the user gets "try again shortly", not a hang.

`REDIS_URL` decides between one Redis server (`redis://`, `rediss://`, `unix://`) and a Redis
Cluster (`redis+cluster://host:port/0`, `rediss+cluster://`: any node of the cluster; redis-py's
`RedisCluster` finds the others with CLUSTER SLOTS). Every tenant key starts with the tenant's
hash tag (`tenant_key_prefix`), so all of a tenant's keys live in one slot: its pipelines and
transactions never cross slots (docs/scaling.md, "Redis Cluster").

Connections grow with activity, not with tenants (issue 13): a single server's client pools its
connections in an `IdleClosingPool`, and `close_idle_connections` (a client bot's scheduler job,
every `REDIS_IDLE_SECONDS`) closes those unused that long. A hub of 200 tenants then holds a Redis
client per tenant active lately, not one per tenant that ever had an update. A closed connection
is opened again by its next command.
"""

from __future__ import annotations

import time
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

HEALTH_CHECK_SECONDS = 15
RETRIES = 3
CONNECT_TIMEOUT = 2.0  # seconds to open a connection
SOCKET_TIMEOUT = 5.0  # seconds a command may take (no blocking commands are used)
# REDIS_URL schemes naming a Redis Cluster, and the plain scheme redis-py expects for each.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def tenant_key_prefix(name: str) -> str:
    """`{client_001}:`: the one prefix of every Redis key of the tenant whose ACL user is `name`.

    The braces are a Redis Cluster hash tag: only `client_001` is hashed, so every key of the
    tenant maps to one slot. In ACL key patterns and SCAN MATCH braces are plain characters.
    """
    return f"{{{name}}}:"


def key_owner(key: str) -> str | None:
    """The name inside a key's leading hash tag (`{client_001}:fsm:...` -> `client_001`)."""
    if key.startswith("{"):
        name, sep, _ = key[1:].partition("}:")
        if sep and name:
            return name
    return None


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def redis_retry() -> Retry:
    """Retry a command on a fresh connection: 50 ms, 100 ms, 200 ms (jittered, at most 1 s)."""
    return Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), RETRIES)


def redis_client(url: str) -> Redis:
    """A client for `url` that detects and replaces dead connections (see the module's doc).

    A `redis+cluster://` URL gives a `RedisCluster`. It is typed as `Redis`: it offers the same
    commands and pipelines for everything the bots send (single-slot keys, see above).
    """
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        plain = urlunsplit((CLUSTER_SCHEMES[parts.scheme], *parts[1:]))
        cluster = RedisCluster.from_url(
            plain,
            health_check_interval=HEALTH_CHECK_SECONDS,
            retry=redis_retry(),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            socket_keepalive=True,
        )
        return cast("Redis", cluster)
    pool = IdleClosingPool.from_url(
        url,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=redis_retry(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_keepalive=True,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


class IdleClosingPool(ConnectionPool):
    """redis-py's pool, remembering when each connection was last handed back, so that those
    unused for a while can be closed (`close_idle`). Taken connections are never touched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._released: dict[int, float] = {}  # id(connection) -> monotonic time it came back

    async def release(self, connection: AbstractConnection) -> None:
        self._released[id(connection)] = time.monotonic()
        await super().release(connection)

    async def close_idle(self, idle_seconds: float) -> int:
        """Close the idle connections handed back more than `idle_seconds` ago; how many.

        Under the pool's lock, so none of them is being handed out meanwhile; each stays in the
        pool, unconnected, and connects again when next used."""
        cutoff = time.monotonic() - idle_seconds
        async with self._lock:
            idle = [
                c
                for c in self._available_connections
                if c.is_connected and self._released.get(id(c), 0.0) < cutoff
            ]
            for connection in idle:
                await connection.disconnect()
            live = {id(c) for c in (*self._available_connections, *self._in_use_connections)}
            self._released = {k: v for k, v in self._released.items() if k in live}
        return len(idle)


async def close_idle_connections(redis: Redis, idle_seconds: float) -> int:
    """Close `redis`'s connections unused for `idle_seconds` (a RedisCluster's nodes keep
    theirs: one per node in use). Returns how many were closed."""
    pool = getattr(redis, "connection_pool", None)
    if isinstance(pool, IdleClosingPool):
        return await pool.close_idle(idle_seconds)
    return 0
