"""Tenant primitives the master calls: a PostgreSQL schema plus login role per tenant.

The role (named like the tenant id) owns only its schema, has `search_path` pinned to it, may
connect only to the platform database, cannot create temporary tables or objects elsewhere,
and belongs to no other role. Creating is idempotent (a retry after a crash completes the job
and resets the password); dropping data is a separate, explicit call.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

import asyncpg

from core.tenant_id import validate_tenant_id
from database.dsn import parse_dsn
from database.identifiers import quote_ident
from database.migrator import SchemaReport, migrate_tenant

log = logging.getLogger(__name__)
_DDL_LOCK = 0x626F74666C656574  # "botfleet": serialises tenant role/schema DDL
_DDL_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class TenantDatabase:
    tenant_id: str
    role: str
    schema: str
    password: str
    dsn: str

    def __repr__(self) -> str:  # never print the password
        return f"TenantDatabase(tenant_id={self.tenant_id!r}, schema={self.schema!r})"


# Databases where PUBLIC still has CONNECT or TEMPORARY (a NULL acl means the defaults).
_OPEN_DATABASES = """
    SELECT datname, datname = current_database() AS here FROM pg_database
    WHERE datallowconn AND (datacl IS NULL OR EXISTS (
        SELECT 1 FROM aclexplode(datacl) a
        WHERE a.grantee = 0 AND a.privilege_type IN ('CONNECT', 'TEMPORARY')))
"""


async def harden_database(conn: asyncpg.Connection) -> None:
    """Platform-wide grants tenants rely on: no CONNECT/TEMP for PUBLIC here or elsewhere.

    Only what is still open is revoked, so once hardened this writes no catalog row: creators
    in different databases of one server (advisory locks are per database) don't collide.
    """
    if await conn.fetchval("SELECT has_schema_privilege('public', 'public', 'CREATE')"):
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    for row in await conn.fetch(_OPEN_DATABASES):
        name = quote_ident_any(row["datname"])
        try:
            async with conn.transaction():
                if row["here"]:
                    await conn.execute(f"REVOKE ALL ON DATABASE {name} FROM PUBLIC")
                else:  # other databases of the cluster: tenants must not connect there either
                    await conn.execute(f"REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC")
        except asyncpg.InsufficientPrivilegeError:
            log.warning(
                "cannot revoke CONNECT on database %s from PUBLIC (not its owner): do it as its "
                "owner, or tenants may connect there",
                row["datname"],
            )
        except asyncpg.InternalServerError as exc:
            if "concurrently updated" not in str(exc):
                raise
            # Another server-wide creator hardened it at the same moment: that is the goal.


def quote_ident_any(name: str) -> str:
    """Quote an arbitrary existing identifier (database names we did not choose)."""
    return '"' + name.replace('"', '""') + '"'


async def create_tenant_database(
    conn: asyncpg.Connection,
    tenant_id: str,
    *,
    server_dsn: str,
    password: str | None = None,
    migrate: bool = True,
) -> tuple[TenantDatabase, SchemaReport]:
    """Create (or complete) the tenant's role and schema and apply the tenant migrations.

    `server_dsn` is the DSN through which the tenant will reach this database (host, port,
    database); the returned `dsn` is that with the tenant's own login.
    """
    validate_tenant_id(tenant_id)
    server = parse_dsn(server_dsn)
    role = schema = tenant_id
    password = password or secrets.token_urlsafe(24)
    database = await conn.fetchval("SELECT current_database()")
    qdb = quote_ident_any(database)
    for attempt in range(1, _DDL_ATTEMPTS + 1):
        try:
            await _role_and_schema(conn, role, password, qdb)
            break
        except asyncpg.InternalServerError as exc:
            # Another database's creator hardening this database for the first time updates
            # the same pg_database row ("tuple concurrently updated"): the step is idempotent.
            if "concurrently updated" not in str(exc) or attempt == _DDL_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)
    report = await migrate_tenant(conn, tenant_id) if migrate else SchemaReport(schema)
    dsn = server.with_credentials(role, password)
    return TenantDatabase(tenant_id, role, schema, password, dsn), report


async def _role_and_schema(conn: asyncpg.Connection, role: str, password: str, qdb: str) -> None:
    """One transaction: the login role, its schema and its grants (idempotent)."""
    schema = role
    qrole = quote_ident(role)
    async with conn.transaction():
        # GRANT/REVOKE on the database row race between concurrent creators in this database
        # ("tuple concurrently updated"): role and schema DDL is serialised, migrations are not.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
        await harden_database(conn)
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        # format(%L) quotes the password server-side; it never goes into our SQL text.
        statement = await conn.fetchval(
            "SELECT format('%s ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
            " NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20 PASSWORD %L', $1::text, $2::text,"
            " $3::text)",
            verb,
            role,
            password,
        )
        await conn.execute(statement)
        is_super = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not is_super:
            await conn.execute(f"GRANT {qrole} TO CURRENT_USER")
        await conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)} AUTHORIZATION {qrole}"
        )
        await conn.execute(f"ALTER SCHEMA {quote_ident(schema)} OWNER TO {qrole}")
        await conn.execute(f"ALTER ROLE {qrole} SET search_path = {quote_ident(schema)}")
        await conn.execute(f"ALTER ROLE {qrole} SET temp_buffers = '800kB'")
        await conn.execute(f"GRANT CONNECT ON DATABASE {qdb} TO {qrole}")
        await conn.execute(f"REVOKE TEMPORARY, CREATE ON DATABASE {qdb} FROM {qrole}")


async def tenant_exists(conn: asyncpg.Connection, tenant_id: str) -> bool:
    validate_tenant_id(tenant_id)
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", tenant_id
        )
    )


async def disable_tenant_login(conn: asyncpg.Connection, tenant_id: str) -> None:
    """Suspension: the role may no longer log in; nothing is dropped."""
    validate_tenant_id(tenant_id)
    await conn.execute(f"ALTER ROLE {quote_ident(tenant_id)} NOLOGIN")


async def enable_tenant_login(conn: asyncpg.Connection, tenant_id: str) -> None:
    validate_tenant_id(tenant_id)
    await conn.execute(f"ALTER ROLE {quote_ident(tenant_id)} LOGIN")


async def drop_tenant_database(
    conn: asyncpg.Connection, tenant_id: str, *, drop_data: bool
) -> None:
    """Drop the tenant schema (all its data) and role; `drop_data=True` must be explicit."""
    validate_tenant_id(tenant_id)
    if drop_data is not True:
        raise ValueError(
            f"refusing to drop tenant {tenant_id}: dropping data is explicit (drop_data=True); "
            "to pause a tenant, suspend it instead"
        )
    qrole = quote_ident(tenant_id)
    async with conn.transaction():
        # Close the tenant's sessions so DROP ROLE does not wait on them.
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", tenant_id
        )
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(tenant_id)} CASCADE")
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", tenant_id):
            await conn.execute(f"DROP OWNED BY {qrole}")
            await conn.execute(f"DROP ROLE {qrole}")
