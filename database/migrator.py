"""Numbered plain-SQL migrations in two sets: *control* (platform tables, applied once, into the
`control` schema) and *tenant* (applied to every tenant schema, as the tenant's own role).

Each file `NNNN_name.sql` is applied in its own transaction and recorded with its SHA-256 in
`<schema>.schema_migrations`. A changed checksum of an applied file is an error. Runners on the
same schema are serialised with a session advisory lock; many tenant schemas are migrated in
parallel with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from core.tenant_id import validate_tenant_id
from database.identifiers import quote_ident

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
CONTROL_SCHEMA = "control"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration file set or the recorded state is inconsistent."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(slots=True)
class SchemaReport:
    schema: str
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def load_migrations(kind: str) -> list[Migration]:
    """Read `migrations/<kind>/NNNN_*.sql` in order; duplicate numbers or odd names are errors."""
    folder = MIGRATIONS_DIR / kind
    if not folder.is_dir():
        raise MigrationError(f"no migration folder {folder}")
    found: dict[int, Migration] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _FILE_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_case_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version} is used twice in {folder}")
        sql = path.read_text(encoding="utf-8")
        found[version] = Migration(
            version, match.group(2), sql, hashlib.sha256(sql.encode()).hexdigest()
        )
    return [found[v] for v in sorted(found)]


def _lock_key(schema: str) -> int:
    digest = hashlib.blake2b(f"botfleet.migrate.{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def _pending(
    conn: asyncpg.Connection, schema: str, migrations: Sequence[Migration]
) -> list[Migration]:
    table = f"{quote_ident(schema)}.schema_migrations"
    exists = await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f"{schema}.schema_migrations"
    )
    applied: dict[int, str] = {}
    if exists:
        rows = await conn.fetch(f"SELECT version, checksum FROM {table}")
        applied = {r["version"]: r["checksum"] for r in rows}
    known = {m.version for m in migrations}
    for version in applied.keys() - known:
        raise MigrationError(
            f"schema {schema} has migration {version:04d} applied, but no such file exists: "
            "was a migration file deleted or renamed?"
        )
    for m in migrations:
        if m.version in applied and applied[m.version] != m.checksum:
            raise MigrationError(
                f"migration {m.label} was changed after it was applied to schema {schema} "
                "(checksum differs): never edit an applied migration, add a new one"
            )
    return [m for m in migrations if m.version not in applied]


async def migrate_schema(
    conn: asyncpg.Connection,
    schema: str,
    migrations: Sequence[Migration],
    *,
    role: str | None = None,
    dry_run: bool = False,
) -> SchemaReport:
    """Apply pending `migrations` to `schema`, each in its own transaction.

    With `role`, the migration runs as that role (`SET LOCAL ROLE`), so the tenant owns its tables.
    """
    report = SchemaReport(schema)
    qschema = quote_ident(schema)
    key = _lock_key(schema)
    await conn.execute("SELECT pg_advisory_lock($1)", key)
    try:
        pending = await _pending(conn, schema, migrations)
        report.pending = [m.label for m in pending]
        if dry_run or not pending:
            return report
        async with conn.transaction():
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {qschema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {qschema}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        for m in pending:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path = {qschema}")
                if role is not None:
                    await conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")
                try:
                    await conn.execute(m.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"migration {m.label} failed on schema {schema}: {exc}"
                    ) from exc
                if role is not None:
                    await conn.execute("RESET ROLE")
                await conn.execute(
                    f"INSERT INTO {qschema}.schema_migrations (version, name, checksum)"
                    " VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            report.applied.append(m.label)
        return report
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", key)


async def migrate_control(conn: asyncpg.Connection, *, dry_run: bool = False) -> SchemaReport:
    """Apply the control (platform) migrations to the `control` schema."""
    return await migrate_schema(conn, CONTROL_SCHEMA, load_migrations("control"), dry_run=dry_run)


async def migrate_tenant(
    conn: asyncpg.Connection,
    tenant_id: str,
    *,
    dry_run: bool = False,
    migrations: Sequence[Migration] | None = None,
) -> SchemaReport:
    """Apply the tenant migrations to one tenant schema, as the tenant's own role."""
    validate_tenant_id(tenant_id)
    return await migrate_schema(
        conn,
        tenant_id,
        migrations if migrations is not None else load_migrations("tenant"),
        role=tenant_id,
        dry_run=dry_run,
    )


@dataclass(slots=True)
class FleetReport:
    reports: list[SchemaReport]
    failures: dict[str, str]
    seconds: float


async def migrate_tenants(
    pool: asyncpg.Pool,
    tenant_ids: Sequence[str],
    *,
    concurrency: int = 8,
    dry_run: bool = False,
) -> FleetReport:
    """Migrate many tenant schemas in parallel, at most `concurrency` at once.

    One tenant's failure does not stop the others; failures are collected per tenant.
    """
    migrations = load_migrations("tenant")
    semaphore = asyncio.Semaphore(max(1, concurrency))
    reports: list[SchemaReport] = []
    failures: dict[str, str] = {}
    started = time.perf_counter()

    async def one(tenant_id: str) -> None:
        async with semaphore:
            try:
                async with pool.acquire() as conn:
                    reports.append(
                        await migrate_tenant(
                            conn, tenant_id, dry_run=dry_run, migrations=migrations
                        )
                    )
            except (MigrationError, asyncpg.PostgresError, ValueError) as exc:
                failures[tenant_id] = str(exc)

    await asyncio.gather(*(one(t) for t in tenant_ids))
    return FleetReport(reports, failures, time.perf_counter() - started)
