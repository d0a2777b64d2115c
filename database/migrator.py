"""Numbered plain-SQL migrations in two sets: *control* (platform tables, applied once, into the
`control` schema) and *tenant* (applied to every tenant schema, as the tenant's owner role).

Each file `NNNN_name.sql` is applied in its own transaction and recorded with its SHA-256 in
`<schema>.schema_migrations` (in a tenant schema owned by the owner role, out of the login
role's reach, so it travels with the tenant's backups). A changed checksum of an applied file
is an error. Runners on one schema are serialised by a lock no tenant can take (a table lock,
or a row of `control.platform_locks`), each file re-checked under it; many tenant schemas are
migrated in parallel with bounded concurrency.
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
from database.locks import platform_lock
from database.roles import DEFAULT_FLEET, is_owner_role, login_role, owner_role

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
CONTROL_SCHEMA = "control"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql\Z")
# Tenant migrations wait this long for a lock a tenant session holds; then the tenant's
# sessions are closed and the file is tried again (at most _LOCK_ATTEMPTS times).
_TENANT_DDL_LOCK_TIMEOUT = "5s"
_LOCK_ATTEMPTS = 3


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


class _Ledger:
    """`<schema>.schema_migrations`: the applied migrations of one schema, and how runners on
    that schema serialise.

    In a tenant schema the table belongs to the owner role and the tenant's login role has no
    privilege on it (it can neither read, write nor lock it); runners lock a row of
    `control.platform_locks`. Platform schemas (`control`) lock the table itself.
    """

    def __init__(self, schema: str, *, owner: str | None, login: str | None = None) -> None:
        self.schema = schema
        self.owner = owner
        self.login = login
        self._qschema = quote_ident(schema)
        self.table = f"{self._qschema}.schema_migrations"

    async def ensure(self, conn: asyncpg.Connection) -> None:
        create = (
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for attempt in range(5):
            try:
                async with conn.transaction():
                    if self.owner is None:
                        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._qschema}")
                        await conn.execute(create)
                        return
                    await self.lock(conn)
                    if await self._exists(conn):
                        return
                    await conn.execute(f"SET LOCAL ROLE {quote_ident(self.owner)}")
                    await conn.execute(create)
                    await conn.execute("RESET ROLE")
                    if self.login is not None:
                        await conn.execute(
                            f"REVOKE ALL ON {self.table} FROM {quote_ident(self.login)}"
                        )
                    return
            except (
                asyncpg.UniqueViolationError,
                asyncpg.DuplicateObjectError,
                asyncpg.DuplicateTableError,
                asyncpg.DuplicateSchemaError,
            ):
                # Another runner created it at the same moment: IF NOT EXISTS is not atomic.
                await asyncio.sleep(0.05 * (attempt + 1))
        raise MigrationError(f"could not create {self.schema}.schema_migrations")

    async def _exists(self, conn: asyncpg.Connection) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", f"{self.schema}.schema_migrations"
            )
        )

    async def lock(self, conn: asyncpg.Connection) -> None:
        """Serialise runners on this schema until the transaction ends."""
        if self.owner is not None:
            await platform_lock(conn, f"migrate:{self.schema}")
        else:
            await conn.execute(f"LOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE")

    async def applied(self, conn: asyncpg.Connection) -> dict[int, str]:
        if not await self._exists(conn):
            return {}
        rows = await conn.fetch(f"SELECT version, checksum FROM {self.table}")
        return {r["version"]: r["checksum"] for r in rows}

    async def record(self, conn: asyncpg.Connection, m: Migration) -> None:
        await conn.execute(
            f"INSERT INTO {self.table} (version, name, checksum) VALUES ($1, $2, $3)",
            m.version,
            m.name,
            m.checksum,
        )


def _pending(
    schema: str, applied: dict[int, str], migrations: Sequence[Migration]
) -> list[Migration]:
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
    """Apply pending `migrations` to a platform-owned `schema`, each in its own transaction."""
    return await _migrate(conn, _Ledger(schema, owner=None), migrations, role=role, dry_run=dry_run)


async def _migrate(
    conn: asyncpg.Connection,
    ledger: _Ledger,
    migrations: Sequence[Migration],
    *,
    role: str | None,
    dry_run: bool,
    login: str | None = None,
) -> SchemaReport:
    schema = ledger.schema
    report = SchemaReport(schema)
    await ledger.ensure(conn)
    pending = _pending(schema, await ledger.applied(conn), migrations)
    report.pending = [m.label for m in pending]
    if dry_run or not pending:
        return report
    for m in pending:
        for attempt in range(_LOCK_ATTEMPTS):
            try:
                if await _apply_one(conn, ledger, m, role=role):
                    report.applied.append(m.label)
                break
            except asyncpg.LockNotAvailableError as exc:
                # A session of the tenant holds a lock the migration needs (a long transaction,
                # or one on purpose). Its sessions are closed and the file is tried again.
                if login is None or attempt == _LOCK_ATTEMPTS - 1:
                    raise MigrationError(
                        f"migration {m.label} on schema {schema} waited too long for a lock "
                        f"({exc}); retry when the sessions holding it have ended"
                    ) from exc
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                    login,
                )
    return report


async def _apply_one(
    conn: asyncpg.Connection, ledger: _Ledger, m: Migration, *, role: str | None
) -> bool:
    """Apply one file unless another runner already did; True when this call applied it."""
    qschema = quote_ident(ledger.schema)
    async with conn.transaction():
        await ledger.lock(conn)
        applied = await ledger.applied(conn)
        if m.version in applied:  # another runner applied it meanwhile
            if applied[m.version] != m.checksum:
                raise MigrationError(
                    f"migration {m.label} was applied to schema {ledger.schema} with another "
                    "checksum by a concurrent runner: are two versions of botfleet migrating?"
                )
            return False
        await conn.execute(f"SET LOCAL search_path = {qschema}")
        if role is not None:
            await conn.execute(f"SET LOCAL lock_timeout = '{_TENANT_DDL_LOCK_TIMEOUT}'")
            await conn.execute(f"SET LOCAL ROLE {quote_ident(role)}")
        try:
            await conn.execute(m.sql)
        except asyncpg.LockNotAvailableError:
            raise
        except asyncpg.PostgresError as exc:
            raise MigrationError(
                f"migration {m.label} failed on schema {ledger.schema}: {exc}"
            ) from exc
        if role is not None:
            await conn.execute("RESET ROLE")
        await ledger.record(conn, m)
    return True


async def migrate_control(conn: asyncpg.Connection, *, dry_run: bool = False) -> SchemaReport:
    """Apply the control (platform) migrations to the `control` schema."""
    return await migrate_schema(conn, CONTROL_SCHEMA, load_migrations("control"), dry_run=dry_run)


async def migrate_tenant(
    conn: asyncpg.Connection,
    tenant_id: str,
    *,
    dry_run: bool = False,
    migrations: Sequence[Migration] | None = None,
    fleet: str = DEFAULT_FLEET,
) -> SchemaReport:
    """Apply the tenant migrations to one tenant schema, as the tenant's owner role.

    Refuses a schema that is not owned by the owner role (created before the owner split and
    not converted yet by `database.tenants.secure_tenant_schema`): whatever the tenant put in
    it would run here.
    """
    validate_tenant_id(tenant_id)
    owner = owner_role(tenant_id, fleet)
    found = await conn.fetchval(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", tenant_id
    )
    if found is None:
        raise MigrationError(f"tenant schema {tenant_id} does not exist")
    if not is_owner_role(found, tenant_id, fleet):
        raise MigrationError(
            f"tenant schema {tenant_id} is owned by {found}, not {owner}: run `make migrate` "
            "(it converts schemas from before the owner split) or provision the tenant again"
        )
    return await _migrate(
        conn,
        _Ledger(tenant_id, owner=owner, login=login_role(tenant_id, fleet)),
        migrations if migrations is not None else load_migrations("tenant"),
        role=owner,
        dry_run=dry_run,
        login=login_role(tenant_id, fleet),
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
    fleet: str = DEFAULT_FLEET,
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
                            conn, tenant_id, dry_run=dry_run, migrations=migrations, fleet=fleet
                        )
                    )
            except (MigrationError, asyncpg.PostgresError, ValueError) as exc:
                failures[tenant_id] = str(exc)

    await asyncio.gather(*(one(t) for t in tenant_ids))
    return FleetReport(reports, failures, time.perf_counter() - started)
