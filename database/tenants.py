"""Tenant primitives the master calls: a PostgreSQL schema, a login role and an owner role
per tenant (`database.roles` says who is who and why).

The login role (named like the tenant id) has data privileges in its schema only, `search_path`
pinned to it, session limits, may connect only to the platform database, cannot create
anything anywhere (no TEMP, no CREATE on its schema, in `public` or on the database), and
belongs to no other role. The owner role (`<tenant_id>_owner`, NOLOGIN) owns the schema and
its objects; migrations run as it. Creating is idempotent (a retry after a crash completes the
job and resets the password); dropping data is a separate, explicit call.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

import asyncpg

from core.tenant_id import validate_tenant_id
from database.audit import tenant_code_objects
from database.dsn import parse_dsn
from database.identifiers import quote_ident
from database.locks import platform_lock
from database.migrator import SchemaReport, migrate_tenant
from database.roles import DEFAULT_FLEET, NameTakenError, fleet_mark, login_role, owner_role

log = logging.getLogger(__name__)
_DDL_ATTEMPTS = 4
# Platform DDL waits at most this long for a lock a tenant session holds (then fails clearly).
_DDL_LOCK_TIMEOUT = "5s"

# Defaults of every tenant session (re-applied at each provisioning and `scripts.migrate`)
# and the limits the master enforces from outside (`terminate_runaway_sessions`).
TENANT_STATEMENT_SECONDS = 30.0
TENANT_IDLE_IN_TRANSACTION_SECONDS = 60.0
TENANT_SESSION_LIMITS = {
    "statement_timeout": f"{int(TENANT_STATEMENT_SECONDS)}s",
    "idle_in_transaction_session_timeout": f"{int(TENANT_IDLE_IN_TRANSACTION_SECONDS)}s",
    "lock_timeout": "10s",
    "temp_buffers": "800kB",
    "work_mem": "4MB",
}


class TenantCodeError(RuntimeError):
    """A tenant schema holds objects that would run as code with the platform's rights."""

    def __init__(self, tenant_id: str, objects: list[str]) -> None:
        shown = "; ".join(objects[:10]) + (
            f"; … {len(objects) - 10} more" if len(objects) > 10 else ""
        )
        super().__init__(
            f"tenant {tenant_id}: its schema holds objects the platform will not run with its "
            f"own rights ({shown}). Inspect them as the tenant, drop them, then rerun "
            "`make migrate`; until then the schema is not migrated, backed up as data only "
            "by pg_dump, nor read by stats"
        )
        self.tenant_id = tenant_id
        self.objects = objects


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


_STILL_OPEN = """
    SELECT 1 FROM pg_database WHERE datname = $1 AND (datacl IS NULL OR EXISTS (
        SELECT 1 FROM aclexplode(datacl) a
        WHERE a.grantee = 0 AND a.privilege_type IN ('CONNECT', 'TEMPORARY')))
"""


def catalog_race(exc: BaseException) -> bool:
    """PostgreSQL's "tuple concurrently updated/deleted" (XX000): another transaction wrote or
    deleted the catalog row this statement updates, and PostgreSQL fails the statement rather
    than wait (grants and ALTER ROLE rewrite a whole catalog row: a database's ACL in
    pg_database, a role's pg_authid row). Retrying the idempotent step is the answer."""
    return isinstance(exc, asyncpg.InternalServerError) and "tuple concurrently" in str(exc)


def _database_gone(exc: BaseException) -> bool:
    """The database was dropped while we revoked on it: its pg_database row deleted under the
    REVOKE ("tuple concurrently deleted"), or already gone from the catalog cache."""
    if isinstance(exc, asyncpg.InvalidCatalogNameError):  # database "…" does not exist
        return True
    text = str(exc)
    return isinstance(exc, asyncpg.InternalServerError) and (
        "concurrently deleted" in text or "cache lookup failed for database" in text
    )


async def harden_database(conn: asyncpg.Connection) -> None:
    """Platform-wide grants tenants rely on: no CONNECT/TEMP for PUBLIC here or elsewhere.

    Only what is still open is revoked, so once hardened this writes no catalog row: creators
    in different databases of one server (advisory locks are per database) don't collide.
    """
    if await conn.fetchval("SELECT has_schema_privilege('public', 'public', 'CREATE')"):
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    for row in await conn.fetch(_OPEN_DATABASES):
        await _close_database(conn, row["datname"], here=row["here"])


async def _close_database(conn: asyncpg.Connection, datname: str, *, here: bool) -> None:
    """Revoke PUBLIC's CONNECT/TEMP on one database (everything on this one).

    Another database's row is written outside any lock we can share with its writers (the
    tenant-ddl lock is a row of this database): creators in other databases of the cluster
    revoke on it at the same moment ("tuple concurrently updated": look again, retry while it
    is still open), and `DROP DATABASE` deletes it (a backup restore's scratch database, a
    test's: "tuple concurrently deleted", or gone by the time we look it up): nothing is left
    to close then.
    """
    name = quote_ident_any(datname)
    if here:
        statement = f"REVOKE ALL ON DATABASE {name} FROM PUBLIC"
    else:  # other databases of the cluster: tenants must not connect there either
        statement = f"REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC"
    for attempt in range(1, _DDL_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                await conn.execute(statement)
            return
        except asyncpg.InsufficientPrivilegeError:
            log.warning(
                "cannot revoke CONNECT on database %s from PUBLIC (not its owner): do it as its "
                "owner, or tenants may connect there",
                datname,
            )
            return
        except (asyncpg.InternalServerError, asyncpg.InvalidCatalogNameError) as exc:
            if not here and _database_gone(exc):
                return
            if not catalog_race(exc) or attempt == _DDL_ATTEMPTS:
                raise
        if not await conn.fetchval(_STILL_OPEN, datname):  # another creator closed it
            return
        await asyncio.sleep(0.02 * attempt)


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
    fleet: str = DEFAULT_FLEET,
) -> tuple[TenantDatabase, SchemaReport]:
    """Create (or complete) the tenant's role and schema and apply the tenant migrations.

    `server_dsn` is the DSN through which the tenant will reach this database (host, port,
    database); the returned `dsn` is that with the tenant's own login. Raises `NameTakenError`
    when a role of that name belongs to another fleet (database/roles.py).
    """
    validate_tenant_id(tenant_id)
    server = parse_dsn(server_dsn)
    role, schema = login_role(tenant_id, fleet), tenant_id
    password = password or secrets.token_urlsafe(24)
    database = await conn.fetchval("SELECT current_database()")
    qdb = quote_ident_any(database)
    for attempt in range(1, _DDL_ATTEMPTS + 1):
        try:
            await _role_and_schema(conn, tenant_id, fleet, password, qdb)
            break
        except asyncpg.InternalServerError as exc:
            # This database's pg_database row (its ACL: GRANT CONNECT to the new role) is also
            # written by creators in other databases, outside our lock, while it is still open
            # to PUBLIC ("tuple concurrently updated"): the step is idempotent.
            if not catalog_race(exc) or attempt == _DDL_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)
    report = await migrate_tenant(conn, tenant_id, fleet=fleet) if migrate else SchemaReport(schema)
    dsn = server.with_credentials(role, password)
    return TenantDatabase(tenant_id, role, schema, password, dsn), report


async def _role_and_schema(
    conn: asyncpg.Connection, tenant_id: str, fleet: str, password: str, qdb: str
) -> None:
    """One transaction: the login role, the owner role, the schema and its grants (idempotent).

    See `database.roles`: the owner role owns the schema and everything in it; the login role
    gets data privileges only. A schema from before that split is converted here (after an
    audit: one with tenant code in it is refused, see `secure_tenant_schema`).
    """
    async with conn.transaction():
        # GRANT/REVOKE on the database row race between concurrent creators in this database
        # ("tuple concurrently updated"): role and schema DDL is serialised, migrations are not.
        await platform_lock(conn, "tenant-ddl")
        await conn.execute(f"SET LOCAL lock_timeout = '{_DDL_LOCK_TIMEOUT}'")
        await harden_database(conn)
        mark = await _fleet_mark(conn, fleet)
        await _login_role(conn, tenant_id, fleet, mark, password, qdb)
        await _secure_schema(conn, tenant_id, fleet, mark)


async def _fleet_mark(conn: asyncpg.Connection, fleet: str) -> str:
    fleet_id = await conn.fetchval("SELECT id::text FROM control.fleet")
    if fleet_id is None:
        raise RuntimeError("control.fleet is empty: apply the control migrations (`make migrate`)")
    return fleet_mark(fleet, fleet_id)


async def _claim_role(conn: asyncpg.Connection, role: str, mark: str, schema: str) -> bool:
    """False when `role` does not exist yet; True when it is this fleet's (marked so, or an
    unmarked role of this fleet from before the marks: its schema is in this database).
    Raises NameTakenError for another fleet's role."""
    row = await conn.fetchrow(
        "SELECT shobj_description(oid, 'pg_authid') AS mark FROM pg_roles WHERE rolname = $1",
        role,
    )
    if row is None:
        return False
    if row["mark"] == mark:
        return True
    ours = row["mark"] is None and await conn.fetchval(
        "SELECT 1 FROM pg_namespace WHERE nspname = $1", schema
    )
    if not ours:
        raise NameTakenError(
            f"PostgreSQL role {role} exists and is not this fleet's ({row['mark'] or 'unmarked'}, "
            f"and schema {schema} is not in this database): another fleet on this cluster uses "
            "the same FLEET_NAME? Give each fleet its own FLEET_NAME"
        )
    return True


async def _mark_role(conn: asyncpg.Connection, role: str, mark: str) -> None:
    await conn.execute(
        await conn.fetchval(
            "SELECT format('COMMENT ON ROLE %I IS %L', $1::text, $2::text)", role, mark
        )
    )


async def _login_role(
    conn: asyncpg.Connection, tenant_id: str, fleet: str, mark: str, password: str, qdb: str
) -> None:
    role = login_role(tenant_id, fleet)
    qrole = quote_ident(role)
    exists = await _claim_role(conn, role, mark, tenant_id)
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
    await conn.execute(f"GRANT CONNECT ON DATABASE {qdb} TO {qrole}")
    await conn.execute(f"REVOKE TEMPORARY, CREATE ON DATABASE {qdb} FROM {qrole}")
    await _mark_role(conn, role, mark)
    await _session_limits(conn, role, tenant_id)


async def _session_limits(conn: asyncpg.Connection, role: str, schema: str) -> None:
    """Reset whatever the tenant set on its own role, then the platform's limits.

    PostgreSQL lets a role change its own defaults (`ALTER ROLE … SET`) and, in a session, any
    user-level setting: these are defaults the platform re-applies at every provisioning and
    `scripts.migrate`, and `terminate_runaway_sessions` enforces the time limits from outside.
    """
    qrole = quote_ident(role)
    await conn.execute(f"ALTER ROLE {qrole} RESET ALL")
    await conn.execute(f"ALTER ROLE {qrole} SET search_path = {quote_ident(schema)}")
    for name, value in TENANT_SESSION_LIMITS.items():
        await conn.execute(f"ALTER ROLE {qrole} SET {name} = '{value}'")


async def _secure_schema(conn: asyncpg.Connection, tenant_id: str, fleet: str, mark: str) -> None:
    login, owner = login_role(tenant_id, fleet), owner_role(tenant_id, fleet)
    qlogin, qowner, qschema = quote_ident(login), quote_ident(owner), quote_ident(tenant_id)
    if not await _claim_role(conn, owner, mark, tenant_id):
        await conn.execute(
            f"CREATE ROLE {qowner} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
            " NOREPLICATION NOBYPASSRLS"
        )
    await _mark_role(conn, owner, mark)
    if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        # A non-superuser admin acts as the owner (migrations) and reassigns legacy objects.
        await conn.execute(f"GRANT {qowner} TO CURRENT_USER")
        await conn.execute(f"GRANT {qlogin} TO CURRENT_USER")
    current = await conn.fetchval(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", tenant_id
    )
    if current is None:
        await conn.execute(f"CREATE SCHEMA {qschema} AUTHORIZATION {qowner}")
    elif current.strip('"') != owner:
        await _convert_legacy_schema(conn, tenant_id, fleet)
    await conn.execute(f"REVOKE ALL ON SCHEMA {qschema} FROM PUBLIC")
    await conn.execute(f"GRANT USAGE ON SCHEMA {qschema} TO {qlogin}")
    if current is not None:
        # An existing schema's tables and sequences. Not for a schema just created (it is
        # empty; the default privileges below cover what migrations create): `ON ALL … IN
        # SCHEMA` reads all of pg_class (no index by schema), under the DDL lock every
        # provisioning waits for, so at thousands of tenants it made provisioning quadratic
        # (137 ms a scan at 2,000 tenants, bench_fleet).
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {qschema} TO {qlogin}"
        )
        await conn.execute(
            f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {qschema} TO {qlogin}"
        )
    await conn.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {qowner} IN SCHEMA {qschema}"
        f" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {qlogin}"
    )
    await conn.execute(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {qowner} IN SCHEMA {qschema}"
        f" GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {qlogin}"
    )
    if current is not None:  # a new schema has nothing to adopt (and the query reads pg_class)
        await adopt_objects(
            conn, tenant_id, fleet
        )  # after the grants: the ledger is not the login's


async def _convert_legacy_schema(conn: asyncpg.Connection, tenant_id: str, fleet: str) -> None:
    """A schema owned by the login role (before the owner split) passes to the owner role.

    Only after an audit: anything the tenant could have planted (functions, views, triggers,
    checks calling functions…) would from now on run during migrations, so such a schema is
    refused and left as it is for an operator to inspect.
    """
    planted = await tenant_code_objects(conn, tenant_id)
    if planted:
        raise TenantCodeError(tenant_id, planted)
    login, owner = login_role(tenant_id, fleet), owner_role(tenant_id, fleet)
    qschema = quote_ident(tenant_id)
    log.info("tenant %s: schema passes from role %s to %s", tenant_id, login, owner)
    await conn.execute(f"REASSIGN OWNED BY {quote_ident(login)} TO {quote_ident(owner)}")
    await conn.execute(f"ALTER SCHEMA {qschema} OWNER TO {quote_ident(owner)}")


async def adopt_objects(
    conn: asyncpg.Connection, tenant_id: str, fleet: str = DEFAULT_FLEET
) -> None:
    """Give every table and sequence of the schema to the owner role (the old migrator left
    `schema_migrations` to the admin; a restore with --no-owner leaves everything to it), and
    keep the migration ledger out of the login role's reach."""
    owner = quote_ident(owner_role(tenant_id, fleet))
    qschema = quote_ident(tenant_id)
    rows = await conn.fetch(
        "SELECT c.relname, c.relkind::text AS kind FROM pg_class c"
        " WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'S')"
        " AND c.relowner <> $2::regrole"
        " AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d"
        "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))",
        tenant_id,
        owner_role(tenant_id, fleet),
    )
    for row in rows:
        what = "SEQUENCE" if row["kind"] == "S" else "TABLE"
        await conn.execute(f"ALTER {what} {qschema}.{quote_ident(row['relname'])} OWNER TO {owner}")
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{tenant_id}.schema_migrations"):
        await conn.execute(
            f"REVOKE ALL ON {qschema}.schema_migrations"
            f" FROM {quote_ident(login_role(tenant_id, fleet))}"
        )


async def secure_tenant_schema(
    conn: asyncpg.Connection, tenant_id: str, fleet: str = DEFAULT_FLEET
) -> None:
    """Bring an existing tenant's roles, schema, grants and limits into today's shape.

    `scripts.migrate` runs this for every tenant before migrating it. Raises
    `TenantCodeError` for a legacy schema that holds tenant code (nothing is changed then),
    `NameTakenError` for a role of another fleet.
    """
    validate_tenant_id(tenant_id)
    login = login_role(tenant_id, fleet)
    async with conn.transaction():
        await platform_lock(conn, "tenant-ddl")
        await conn.execute(f"SET LOCAL lock_timeout = '{_DDL_LOCK_TIMEOUT}'")
        mark = await _fleet_mark(conn, fleet)
        if await _claim_role(conn, login, mark, tenant_id):
            await _mark_role(conn, login, mark)
            await _session_limits(conn, login, tenant_id)
        if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", tenant_id):
            await _secure_schema(conn, tenant_id, fleet, mark)


async def terminate_tenant_sessions(
    conn: asyncpg.Connection, tenant_id: str, fleet: str = DEFAULT_FLEET
) -> int:
    """Close every session of the tenant's login role (suspension, restores, stuck locks)."""
    return int(
        await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1",
            login_role(tenant_id, fleet),
        )
    )


async def terminate_runaway_sessions(
    conn: asyncpg.Connection,
    *,
    statement_seconds: float = TENANT_STATEMENT_SECONDS,
    idle_in_transaction_seconds: float = TENANT_IDLE_IN_TRANSACTION_SECONDS,
) -> list[str]:
    """Terminate tenant sessions past the platform's limits, whatever the tenant SET itself.

    A tenant may `SET statement_timeout = 0` in its session; this is the limit it cannot lift.
    Returns `<role> (<reason>)` for every session closed.
    """
    rows = await conn.fetch(
        """
        SELECT usename, pg_terminate_backend(pid) AS done,
               CASE WHEN state = 'active' THEN 'statement' ELSE 'idle in transaction' END AS why
          FROM pg_stat_activity
         WHERE datname = current_database()
           AND usename ~ '^([a-z][a-z0-9_]{0,19}_)?client_[0-9]{1,12}$'
           AND ((state = 'active' AND query_start < now() - make_interval(secs => $1))
             OR (state LIKE 'idle in transaction%'
                 AND state_change < now() - make_interval(secs => $2)))
        """,
        statement_seconds,
        idle_in_transaction_seconds,
    )
    return [f"{r['usename']} ({r['why']})" for r in rows if r["done"]]


async def tenant_exists(conn: asyncpg.Connection, tenant_id: str) -> bool:
    validate_tenant_id(tenant_id)
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", tenant_id
        )
    )


async def disable_tenant_login(
    conn: asyncpg.Connection, tenant_id: str, fleet: str = DEFAULT_FLEET
) -> None:
    """Suspension: the role may no longer log in and its open sessions are closed; nothing is
    dropped."""
    await conn.execute(f"ALTER ROLE {quote_ident(login_role(tenant_id, fleet))} NOLOGIN")
    await terminate_tenant_sessions(conn, tenant_id, fleet)


async def enable_tenant_login(
    conn: asyncpg.Connection, tenant_id: str, fleet: str = DEFAULT_FLEET
) -> None:
    await conn.execute(f"ALTER ROLE {quote_ident(login_role(tenant_id, fleet))} LOGIN")


async def drop_tenant_database(
    conn: asyncpg.Connection, tenant_id: str, *, drop_data: bool, fleet: str = DEFAULT_FLEET
) -> None:
    """Drop the tenant schema (all its data) and role; `drop_data=True` must be explicit."""
    validate_tenant_id(tenant_id)
    if drop_data is not True:
        raise ValueError(
            f"refusing to drop tenant {tenant_id}: dropping data is explicit (drop_data=True); "
            "to pause a tenant, suspend it instead"
        )
    for attempt in range(1, _DDL_ATTEMPTS + 1):
        try:
            await _drop_schema_and_roles(conn, tenant_id, fleet)
            return
        except asyncpg.InternalServerError as exc:
            # The database's row, as in create_tenant_database (a creator in another database
            # revoking PUBLIC's CONNECT on a database still open): the drop is idempotent.
            if not catalog_race(exc) or attempt == _DDL_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)


async def _drop_schema_and_roles(conn: asyncpg.Connection, tenant_id: str, fleet: str) -> None:
    async with conn.transaction():
        # Close the tenant's sessions so DROP ROLE does not wait on them.
        await terminate_tenant_sessions(conn, tenant_id, fleet)
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(tenant_id)} CASCADE")
        # DROP OWNED BY revokes the login's CONNECT: it rewrites the database's pg_database row,
        # which every creation in this database writes under this lock (GRANT CONNECT), so a
        # drop beside creations failed "tuple concurrently updated". Taken after DROP SCHEMA:
        # the tenant's own objects need no lock, and creations wait only for the role drops.
        await platform_lock(conn, "tenant-ddl")
        await conn.execute(f"SET LOCAL lock_timeout = '{_DDL_LOCK_TIMEOUT}'")
        for role in (login_role(tenant_id, fleet), owner_role(tenant_id, fleet)):
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f"DROP OWNED BY {quote_ident(role)}")
                await conn.execute(f"DROP ROLE {quote_ident(role)}")
