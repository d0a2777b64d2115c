"""PostgreSQL servers that hold tenant schemas (docs/scaling.md, "Tenants across PostgreSQL
servers"): what a server needs before it takes tenants, who it is, pools to each, and the
per-table checksums a move between servers is verified by.

The platform's own server holds the `control` schema. Another server gets only what the tenant
primitives (`database.tenants`) rely on there: `control.platform_locks` (the DDL lock no tenant
can take) and `control.fleet` with this fleet's id (the mark on its roles), nothing else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from database.dsn import parse_dsn
from database.identifiers import quote_ident
from database.pool import DatabaseUnavailableError, create_pool

# A server that does not answer within this is "down" for an operator's request.
CONNECT_SECONDS = 3.0
# Tables whose rows are not the tenant's data: the migration ledger (its applied_at differs on
# a copy; the versions and checksums are compared instead).
LEDGER = "schema_migrations"


class ServerRefusedError(RuntimeError):
    """The server cannot take this fleet's tenants (another fleet's, or a platform database)."""


async def prepare_server(conn: asyncpg.Connection, fleet_id: str) -> None:
    """Give a tenant server the two control tables the tenant primitives use (idempotent).

    Refuses (ServerRefusedError) a database that holds a platform's control schema (this
    fleet's own, or another installation's) or whose fleet id is another fleet's.
    """
    async with conn.transaction():
        if await conn.fetchval("SELECT to_regclass('control.tenants') IS NOT NULL"):
            raise ServerRefusedError(
                "this database holds a platform's control schema (control.tenants): register a "
                "database that holds tenants only, not the platform's own"
            )
        await conn.execute("CREATE SCHEMA IF NOT EXISTS control")
        await conn.execute("REVOKE ALL ON SCHEMA control FROM PUBLIC")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS control.platform_locks (name text PRIMARY KEY)"
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS control.fleet (id uuid PRIMARY KEY,"
            " singleton boolean NOT NULL UNIQUE DEFAULT true CHECK (singleton),"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute(
            "INSERT INTO control.fleet (id) VALUES ($1::uuid) ON CONFLICT DO NOTHING", fleet_id
        )
        found = await conn.fetchval("SELECT id::text FROM control.fleet")
        if found != fleet_id:
            raise ServerRefusedError(
                f"this database belongs to another fleet (control.fleet id {found}): give each "
                "fleet its own database"
            )


async def cluster_id(conn: asyncpg.Connection) -> str:
    """Who the cluster is: its system identifier (roles are per cluster), else its address."""
    try:
        return str(await conn.fetchval("SELECT system_identifier FROM pg_control_system()"))
    except asyncpg.InsufficientPrivilegeError:
        addr = await conn.fetchval("SELECT coalesce(inet_server_addr()::text, 'local')")
        port = await conn.fetchval("SELECT inet_server_port()")
        return f"{addr}:{port}"


class ServerPools:
    """Admin pools of the registered servers other than the platform's own, opened on first
    use and kept while the DSN stays the same."""

    def __init__(self) -> None:
        self._pools: dict[str, tuple[str, asyncpg.Pool]] = {}
        self._lock = asyncio.Lock()

    async def get(self, name: str, dsn: str) -> asyncpg.Pool:
        """The pool of server `name`; DatabaseUnavailableError (saying where, never the password)
        when it does not answer."""
        async with self._lock:
            known = self._pools.get(name)
            if known is not None and known[0] == dsn:
                return known[1]
            if known is not None:
                await known[1].close()
                del self._pools[name]
            pool = await create_pool(
                dsn,
                min_size=0,
                max_size=4,
                attempts=1,
                connect_timeout=CONNECT_SECONDS,
                idle_seconds=60,
            )
            self._pools[name] = (dsn, pool)
            return pool

    async def close(self) -> None:
        async with self._lock:
            for _, pool in self._pools.values():
                await pool.close()
            self._pools.clear()


async def answers(pool: asyncpg.Pool, where: str) -> None:
    """One round trip within CONNECT_SECONDS, or DatabaseUnavailableError naming `where`."""
    try:
        async with asyncio.timeout(CONNECT_SECONDS):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailableError(
            f"PostgreSQL at {where} does not answer ({type(exc).__name__})"
        ) from None


def describe(dsn: str) -> str:
    """`user@host:port/db` of a DSN, never its password."""
    return parse_dsn(dsn).describe()


@dataclass(frozen=True, slots=True)
class TableSum:
    rows: int
    md5: str


# Each row's text under fixed output settings, hashed; the hashes ordered (no collation
# involved) and hashed again: equal on two servers exactly when the rows are.
_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
)


async def schema_checksums(conn: asyncpg.Connection, schema: str) -> dict[str, TableSum]:
    """Per table of `schema`: row count and md5 of its ordered row hashes; per sequence
    (`<name>` with prefix `sequence `) its last value. The migration ledger is compared by its
    versions and checksums only."""
    out: dict[str, TableSum] = {}
    q = quote_ident(schema)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for name, value in _SETTINGS:
            await conn.execute("SELECT set_config($1, $2, true)", name, value)
        tables = await conn.fetch(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = $1::regnamespace"
            " AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            schema,
        )
        for row in tables:
            table = row["relname"]
            if table == LEDGER:
                query = (
                    "SELECT count(*) AS n, md5(coalesce(string_agg(version::text || ':' ||"
                    f" checksum, ',' ORDER BY version), '')) AS h FROM {q}.{quote_ident(table)}"
                )
            else:
                query = (
                    "SELECT count(*) AS n, md5(coalesce(string_agg(h, '' ORDER BY h), '')) AS h"
                    f" FROM (SELECT md5(t::text) AS h FROM {q}.{quote_ident(table)} t) x"
                )
            got = await conn.fetchrow(query)
            out[table] = TableSum(int(got["n"]), str(got["h"]))
        for seq in await conn.fetch(
            "SELECT sequencename, coalesce(last_value, 0) AS v FROM pg_sequences"
            " WHERE schemaname = $1",
            schema,
        ):
            out[f"sequence {seq['sequencename']}"] = TableSum(int(seq["v"]), "")
    return out
