"""The one way the bots (client, sales, master) make their Redis client.

After a Redis restart (or a connection killed by the server, a proxy or suspension's CLIENT
KILL), the pool still holds the dead connections; each would fail the first command sent on it.
So: a connection idle longer than `HEALTH_CHECK_SECONDS` is PINGed before use, and a command
that fails on a broken connection is retried on a fresh one a few times with a short jittered
backoff (redis-py's own `Retry`). During a real outage a command still fails quickly (about a
second of retries, short socket timeouts), so the user gets "try again shortly", not a hang.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

HEALTH_CHECK_SECONDS = 15
RETRIES = 3
CONNECT_TIMEOUT = 2.0  # seconds to open a connection
SOCKET_TIMEOUT = 5.0  # seconds a command may take (no blocking commands are used)


def redis_retry() -> Retry:
    """Retry a command on a fresh connection: 50 ms, 100 ms, 200 ms (jittered, at most 1 s)."""
    return Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), RETRIES)


def redis_client(url: str) -> Redis:
    """A client for `url` that detects and replaces dead connections (see the module's doc)."""
    return Redis.from_url(
        url,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=redis_retry(),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_keepalive=True,
    )
