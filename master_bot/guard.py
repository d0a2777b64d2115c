"""The limits a tenant cannot lift itself, enforced from outside every `GUARD_INTERVAL`.

PostgreSQL lets any role `SET statement_timeout = 0` (or any other user-level setting) in its
own session, so the defaults `database.tenants` puts on tenant roles are only defaults. This
pass closes tenant sessions that ran one statement, or sat idle in a transaction, for longer
than the platform allows, and revokes CONNECT/TEMP from PUBLIC on databases created since the
last provisioning (a new database is open to every role by default), on every PostgreSQL server
that holds tenants.
"""

from __future__ import annotations

import logging

import asyncpg
from redis.exceptions import RedisError

from core.loops import run_every
from database.redis_tenants import revoke_tenant_scripting
from database.tenants import harden_database, terminate_runaway_sessions
from master_bot.dbservers import DEFAULT_SERVER, ServerStore, admin_pool
from master_bot.deps import Deps
from master_bot.errors import MasterError

log = logging.getLogger(__name__)


async def guard_pass(pool: asyncpg.Pool) -> list[str]:
    """One pass; returns `<role> (<reason>)` of every tenant session closed."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await harden_database(conn)
        closed = await terminate_runaway_sessions(conn)
    for what in closed:
        log.warning("closed a tenant session past the platform's limits: %s", what)
    return closed


async def guard_fleet(deps: Deps) -> list[str]:
    """A pass on the platform's server and on every other registered PostgreSQL server
    (master_bot/dbservers.py); a server that does not answer is skipped with a warning."""
    closed = await guard_pass(deps.pool)
    for server in await ServerStore(deps.pool).list():
        if server.name == DEFAULT_SERVER:
            continue
        try:
            closed += await guard_pass(await admin_pool(deps, server.name))
        except (MasterError, OSError, asyncpg.PostgresError) as exc:
            log.warning("tenant session guard: server %s skipped: %s", server.name, exc)
    return closed


async def run_guard(deps: Deps, *, interval: float = 30.0) -> None:
    # Tenant ACL users created before scripting was taken away lose it once, at start.
    try:
        if changed := await revoke_tenant_scripting(deps.redis):
            log.info("Redis scripting revoked from %d tenant user(s)", len(changed))
    except (RedisError, OSError) as exc:
        log.warning("could not revoke Redis scripting from older tenant users: %s", exc)
    await run_every(interval, lambda: guard_fleet(deps), "tenant session guard")
