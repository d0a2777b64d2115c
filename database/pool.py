"""asyncpg pool factory with a startup retry and a clear error when PostgreSQL can't be reached."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from core.retry import backoff
from database.dsn import parse_dsn

log = logging.getLogger(__name__)


class DatabaseUnavailableError(RuntimeError):
    """PostgreSQL did not answer within the startup deadline."""


class StatelessConnection(asyncpg.Connection):  # type: ignore[misc]
    """For code that never changes session state (no SET, LISTEN, advisory or session locks):
    skips the reset query asyncpg runs on every release — one round trip per query saved.
    Open transactions are still rolled back by asyncpg itself."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    attempts: int = 8,
    first_delay: float = 0.25,
    max_delay: float = 5.0,
    connect_timeout: float = 5.0,
    stateless: bool = False,
    idle_seconds: float | None = None,
    **kwargs: Any,
) -> asyncpg.Pool:
    """Open a pool, retrying with exponential backoff while the server is starting.

    Wrong credentials or a missing database are not retried: they won't fix themselves.
    `stateless=True` uses StatelessConnection (see there).
    `idle_seconds`: a connection unused that long is closed (asyncpg's
    max_inactive_connection_lifetime; its default is 300 s). With `min_size=0` the pool then
    holds no PostgreSQL backend while idle: its first connection is still opened here, so a
    wrong DSN fails at start, and closes like any other after `idle_seconds`.
    """
    if stateless:
        kwargs["connection_class"] = StatelessConnection
    if idle_seconds is not None:
        kwargs["max_inactive_connection_lifetime"] = idle_seconds
    # asyncpg opens `init_size` connections at start (default: min_size, so none with 0).
    kwargs.setdefault("init_size", max(min_size, 1))
    target = parse_dsn(dsn)
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                **kwargs,
            )
            return pool
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
            raise DatabaseUnavailableError(
                f"PostgreSQL at {target.describe()} refused the login: check the user and "
                "password in DATABASE_URL"
            ) from None
        except asyncpg.InvalidCatalogNameError:
            raise DatabaseUnavailableError(
                f"database {target.database!r} does not exist on {target.host}:{target.port}: "
                "create it or fix DATABASE_URL"
            ) from None
        except (TimeoutError, OSError, asyncpg.CannotConnectNowError) as exc:
            last = exc
            if attempt < attempts:
                delay = backoff(attempt, first_delay, max_delay)
                log.warning(
                    "PostgreSQL at %s not ready (attempt %d/%d): %s; retrying in %.2fs",
                    target.describe(),
                    attempt,
                    attempts,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
    raise DatabaseUnavailableError(
        f"cannot reach PostgreSQL at {target.describe()} after {attempts} attempts "
        f"({type(last).__name__}: {last}); is the server running and DATABASE_URL right?"
    )
