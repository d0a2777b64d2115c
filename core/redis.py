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
"""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
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
    return Redis.from_url(
        url,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=redis_retry(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_keepalive=True,
    )
