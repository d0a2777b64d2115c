"""The fleet's PostgreSQL servers (docs/scaling.md, "Tenants across PostgreSQL servers").

`control.db_servers` lists them: `default` is the platform's own (the master's pool, the bots'
TENANT_DATABASE_URL); others are registered by an operator with an admin DSN, stored encrypted
(core/secrets.py, bound to the server's name). `control.tenants.db_server` says where each
tenant's schema and roles are; provisioning puts a new tenant on the least loaded accepting
server (`master_bot.store.LEAST_LOADED_SERVER`: fewest live tenants). The SQL on these two
tables lives here, beside the store of the tenants (master_bot/store.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from database.dsn import InvalidDsnError, parse_dsn
from database.pool import DatabaseUnavailableError
from database.servers import ServerRefusedError, answers, cluster_id, describe, prepare_server
from master_bot.deps import Deps
from master_bot.errors import ConflictError, NotFoundError, RejectedError, UnavailableError
from master_bot.store import Step, TenantRecord, write_audit

DEFAULT_SERVER = "default"
SERVER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"


class ServerNotFoundError(NotFoundError):
    code = "db_server_not_found"


@dataclass(frozen=True, slots=True)
class DbServer:
    name: str
    admin_dsn_enc: str | None
    tenant_dsn_enc: str | None
    accepting: bool
    tenants: int  # live tenants on it: the load placement compares

    def __repr__(self) -> str:  # the ciphertexts stay out
        return f"DbServer({self.name!r}, tenants={self.tenants})"


@dataclass(frozen=True, slots=True)
class Move:
    tenant_id: str
    source: str
    target: str
    phase: str  # 'copying' | 'switched'


_SERVERS = (
    "SELECT s.name, s.admin_dsn_enc, s.tenant_dsn_enc, s.accepting, count(t.tenant_id) AS tenants"
    " FROM control.db_servers s LEFT JOIN control.tenants t"
    " ON t.db_server = s.name AND t.status <> 'deleted'"
)


class ServerStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def list(self) -> list[DbServer]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"{_SERVERS} GROUP BY s.name ORDER BY s.name <> 'default', 1")
        return [DbServer(**dict(r)) for r in rows]

    async def get(self, name: str) -> DbServer | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(f"{_SERVERS} WHERE s.name = $1 GROUP BY s.name", name)
        return DbServer(**dict(row)) if row else None

    async def cluster_owner(self, cluster: str) -> str | None:
        async with self.pool.acquire() as conn:
            found: str | None = await conn.fetchval(
                "SELECT name FROM control.db_servers WHERE cluster_id = $1", cluster
            )
        return found

    async def add(
        self,
        name: str,
        admin_dsn_enc: str,
        tenant_dsn_enc: str | None,
        cluster: str,
        default_cluster: str,
        *,
        actor: str,
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE control.db_servers SET cluster_id = $1"
                " WHERE name = 'default' AND cluster_id IS NULL",
                default_cluster,
            )
            await conn.execute(
                "INSERT INTO control.db_servers (name, admin_dsn_enc, tenant_dsn_enc, cluster_id)"
                " VALUES ($1, $2, $3, $4)",
                name,
                admin_dsn_enc,
                tenant_dsn_enc,
                cluster,
            )
            await write_audit(conn, actor, None, "db_server.registered", {"name": name})

    async def place_elsewhere(
        self, tenant_id: str, down: Sequence[str], *, actor: str
    ) -> str | None:
        """A tenant whose schema was not made yet goes to the least loaded accepting server not
        in `down`; returns that server, or None (none left, or its database step has run)."""
        async with self.pool.acquire() as conn, conn.transaction():
            placed: str | None = await conn.fetchval(
                "UPDATE control.tenants SET db_server = s.name, updated_at = now() FROM ("
                " SELECT s.name FROM control.db_servers s LEFT JOIN control.tenants t"
                " ON t.db_server = s.name AND t.status <> 'deleted'"
                " WHERE s.accepting AND s.name <> ALL($2::text[]) GROUP BY s.name"
                " ORDER BY count(t.tenant_id), s.name <> 'default', s.name LIMIT 1) s"
                " WHERE tenant_id = $1 AND provision_step = 'allocated' RETURNING s.name",
                tenant_id,
                list(down),
            )
            if placed is not None:
                await write_audit(
                    conn, actor, tenant_id, "db_server.placed", {"to": placed, "down": list(down)}
                )
        return placed

    async def set_accepting(self, name: str, accepting: bool, *, actor: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "UPDATE control.db_servers SET accepting = $2 WHERE name = $1 RETURNING true",
                name,
                accepting,
            )
            if done:
                await write_audit(
                    conn, actor, None, "db_server.accepting", {"name": name, "to": accepting}
                )
        return bool(done)

    async def pending_moves(self) -> Sequence[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT tenant_id FROM control.tenant_moves ORDER BY started_at"
            )
        return [r["tenant_id"] for r in rows]

    async def move_of(self, tenant_id: str) -> Move | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT tenant_id, source, target, phase FROM control.tenant_moves"
                " WHERE tenant_id = $1",
                tenant_id,
            )
        return Move(**dict(row)) if row else None

    async def begin_move(self, tenant_id: str, source: str, target: str, *, actor: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO control.tenant_moves (tenant_id, source, target, phase)"
                " VALUES ($1, $2, $3, 'copying')",
                tenant_id,
                source,
                target,
            )
            await write_audit(
                conn, actor, tenant_id, "db_server.move_started", {"from": source, "to": target}
            )

    async def switch(self, tenant_id: str, source: str, target: str, *, actor: str) -> None:
        """The one moment the tenant changes servers: its row and the move's phase together."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE control.tenants SET db_server = $2, updated_at = now()"
                " WHERE tenant_id = $1",
                tenant_id,
                target,
            )
            await conn.execute(
                "UPDATE control.tenant_moves SET phase = 'switched' WHERE tenant_id = $1",
                tenant_id,
            )
            await write_audit(
                conn, actor, tenant_id, "db_server.switched", {"from": source, "to": target}
            )

    async def end_move(
        self, tenant_id: str, *, actor: str, action: str, details: dict[str, Any]
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM control.tenant_moves WHERE tenant_id = $1", tenant_id)
            await write_audit(conn, actor, tenant_id, action, details)


def admin_dsn(deps: Deps, server: DbServer) -> str:
    """The admin DSN of `server` (the platform's own: the master's DATABASE_URL)."""
    if server.admin_dsn_enc is None:
        return deps.config.admin_database_url or deps.config.tenant_database_url
    return deps.box.decrypt_server(server.name, server.admin_dsn_enc)


async def server(deps: Deps, name: str) -> DbServer:
    found = await ServerStore(deps.pool).get(name)
    if found is None:
        raise ServerNotFoundError(
            f"no PostgreSQL server {name[:40]!r} is registered (GET /api/v1/db-servers lists them)"
        )
    return found


async def admin_pool(deps: Deps, name: str) -> asyncpg.Pool:
    """An admin pool of server `name`, checked to answer; UnavailableError
    (`db_server_unavailable`) says which server is down and what to do."""
    if name == DEFAULT_SERVER:
        return deps.pool
    found = await server(deps, name)
    dsn = admin_dsn(deps, found)
    try:
        pool = await deps.db_pools.get(name, dsn)
        await answers(pool, describe(dsn))
    except DatabaseUnavailableError as exc:
        raise UnavailableError(
            "db_server_unavailable",
            f"PostgreSQL server {name!r} ({describe(dsn)}) cannot be reached: {exc}. Start it "
            "or fix its address, then retry; nothing was changed",
            details={"db_server": name},
        ) from None
    return pool


async def placed_answering(deps: Deps, tenant: TenantRecord, *, actor: str) -> TenantRecord:
    """Before a tenant's schema is made: its server answers, or the tenant is placed on the
    next least loaded one that does (a server down must not take every new tenant, being the
    least loaded). UnavailableError when none answers."""
    down: list[str] = []
    while True:
        try:
            await admin_pool(deps, tenant.db_server)
            return tenant
        except UnavailableError:
            if tenant.step_done(Step.DATABASE):
                raise
            down.append(tenant.db_server)
            placed = await ServerStore(deps.pool).place_elsewhere(
                tenant.tenant_id, down, actor=actor
            )
            if placed is None:
                raise
            found = await deps.store.get(tenant.tenant_id)
            assert found is not None
            tenant = found


@asynccontextmanager
async def tenant_admin(deps: Deps, tenant: TenantRecord) -> AsyncIterator[asyncpg.Connection]:
    """An admin connection to the server that holds `tenant`'s schema and roles."""
    pool = await admin_pool(deps, tenant.db_server)
    async with pool.acquire() as conn:
        yield conn


async def set_accepting(deps: Deps, name: str, accepting: bool, *, actor: str) -> DbServer:
    """Whether placement may put new tenants on server `name` (its tenants stay where they are)."""
    if not await ServerStore(deps.pool).set_accepting(name, accepting, actor=actor):
        await server(deps, name)  # 404 with the usual message
    return await server(deps, name)


async def register(
    deps: Deps, name: str, dsn: str, tenant_dsn: str | None, *, actor: str
) -> DbServer:
    """Register a PostgreSQL server for tenants: it must answer, be a cluster not registered
    yet, and hold no platform's control schema; it gets the two control tables the tenant
    primitives need (database.servers.prepare_server)."""
    for what, value in (("dsn", dsn), ("tenant_dsn", tenant_dsn)):
        if value is not None:
            try:
                parse_dsn(value)
            except InvalidDsnError as exc:
                raise RejectedError("invalid_dsn", f"{what}: {exc}") from None
    if await ServerStore(deps.pool).get(name) is not None:
        raise ConflictError("db_server_exists", f"a PostgreSQL server named {name!r} exists")
    try:
        conn = await asyncpg.connect(dsn, timeout=3.0)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise UnavailableError(
            "db_server_unavailable",
            f"PostgreSQL at {describe(dsn)} cannot be reached ({type(exc).__name__}): check the "
            "address, the user and its password; nothing was registered",
        ) from None
    try:
        cluster = await cluster_id(conn)
        try:
            await prepare_server(conn, deps.config.fleet_id or await _fleet_id(deps))
        except ServerRefusedError as exc:
            raise ConflictError("db_server_refused", str(exc)) from None
    finally:
        await conn.close()
    async with deps.pool.acquire() as own:
        default_cluster = await cluster_id(own)
    taken = await ServerStore(deps.pool).cluster_owner(cluster)
    if cluster == default_cluster or taken is not None:
        raise ConflictError(
            "db_server_same_cluster",
            f"{describe(dsn)} is on the same PostgreSQL cluster as server "
            f"{taken or DEFAULT_SERVER!r}: roles are per cluster, so a cluster is registered once",
        )
    box = deps.box
    try:
        await ServerStore(deps.pool).add(
            name,
            box.encrypt_server(name, dsn),
            box.encrypt_server(name, tenant_dsn) if tenant_dsn else None,
            cluster,
            default_cluster,
            actor=actor,
        )
    except asyncpg.UniqueViolationError:
        raise ConflictError(
            "db_server_exists", f"server {name!r} or its cluster was registered meanwhile"
        ) from None
    return await server(deps, name)


async def _fleet_id(deps: Deps) -> str:
    async with deps.pool.acquire() as conn:
        return str(await conn.fetchval("SELECT id::text FROM control.fleet"))
