"""Attacks of a hostile tenant on PostgreSQL, with exactly the DATABASE_URL its bot gets.

Each test is what the attacker does and what must happen. The shape that defends
(database/roles.py): the tenant's login role has data privileges only, a platform-side NOLOGIN
owner role owns the schema, so a tenant cannot plant a view, trigger, function, check or
default at all. Schemas from before that split may hold planted code: every platform path
(migrate, restore, backup, stats, import) must refuse or skip them, never run it as the admin.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from database.dsn import parse_dsn
from database.migrator import Migration, MigrationError, load_migrations, migrate_tenant
from database.tenants import (
    TenantCodeError,
    TenantDatabase,
    create_tenant_database,
    disable_tenant_login,
    drop_tenant_database,
    secure_tenant_schema,
    terminate_runaway_sessions,
)
from master_bot.backup import dump_schema
from scripts.backup import (
    Server,
    TenantCodeInBackupError,
    dump_tenant,
    restore_tenant,
)
from scripts.legacy_import import import_file
from scripts.rotate_keys import rotate_secrets
from scripts.stats import collect_stats
from tests.conftest import new_tenant_id

ROOT = Path(__file__).resolve().parents[2]
MakeTenant = Callable[..., Awaitable[TenantDatabase]]

SPY = """
CREATE TABLE evidence (who text NOT NULL, superuser boolean NOT NULL);
GRANT INSERT ON evidence TO PUBLIC;
CREATE FUNCTION spy() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.evidence SELECT current_user, rolsuper FROM pg_roles
     WHERE rolname = current_user;
    RETURN true;
END $$;
CREATE FUNCTION spy_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM {schema}.spy(); RETURN NEW; END $$;
"""

# What a tenant plants, as the tenant, in a schema it owned before the owner split.
PLANTS = {
    "view": "DROP TABLE IF EXISTS schema_migrations_copy;"
    " CREATE VIEW customers_view AS SELECT * FROM customers WHERE spy()",
    "trigger": "CREATE TRIGGER t BEFORE INSERT ON customers FOR EACH ROW"
    " EXECUTE FUNCTION spy_trigger()",
    "check": "ALTER TABLE services ADD CONSTRAINT c CHECK (spy()) NOT VALID",
    "default": "ALTER TABLE customers ALTER COLUMN first_name SET DEFAULT"
    " (CASE WHEN spy() THEN '' END)",
    "set_config": "ALTER TABLE services ADD CONSTRAINT r"
    " CHECK (set_config('role', 'postgres', true) IS NOT NULL) NOT VALID",
}


async def evidence_of_admin(pg: asyncpg.Connection, schema: str) -> list[str]:
    """Who ran the tenant's spy with rights other than the tenant's own."""
    if not await pg.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.evidence"):
        return []
    rows = await pg.fetch(
        f'SELECT who FROM "{schema}".evidence WHERE superuser OR who <> $1', schema
    )
    return [r["who"] for r in rows]


@pytest.fixture
async def legacy_tenant(pg: asyncpg.Connection, pg_dsn: str) -> AsyncIterator[TenantDatabase]:
    """A tenant exactly as the platform made them before the owner split: the login role owns
    its schema and tables (migrations ran as it), the ledger belongs to the admin."""
    tid = new_tenant_id()
    password = secrets.token_urlsafe(16)
    database = await pg.fetchval("SELECT current_database()")
    await pg.execute(
        await pg.fetchval(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)", tid, password
        )
    )
    await pg.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{tid}"')
    await pg.execute(f'CREATE SCHEMA "{tid}" AUTHORIZATION "{tid}"')
    await pg.execute(f'ALTER ROLE "{tid}" SET search_path = "{tid}"')
    await pg.execute(
        f'CREATE TABLE "{tid}".schema_migrations (version integer PRIMARY KEY, name text NOT NULL,'
        " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for m in load_migrations("tenant"):
        async with pg.transaction():
            await pg.execute(f'SET LOCAL search_path = "{tid}"')
            await pg.execute(f'SET LOCAL ROLE "{tid}"')
            await pg.execute(m.sql)
            await pg.execute("RESET ROLE")
            await pg.execute(
                f'INSERT INTO "{tid}".schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
                m.version,
                m.name,
                m.checksum,
            )
    dsn = parse_dsn(pg_dsn).with_credentials(tid, password)
    yield TenantDatabase(tid, tid, tid, password, dsn)
    await drop_tenant_database(pg, tid, drop_data=True)


async def plant(tenant: TenantDatabase, what: str) -> None:
    conn = await asyncpg.connect(tenant.dsn)
    try:
        await conn.execute(SPY.format(schema=f'"{tenant.schema}"'))
        await conn.execute(PLANTS[what])
    finally:
        await conn.close()


# ------------------------------------------------------------- today's shape: nothing to plant


async def test_a_tenant_cannot_plant_anything_in_its_own_schema(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant()
    conn = await asyncpg.connect(tenant.dsn)
    attempts = [
        "CREATE FUNCTION spy() RETURNS boolean LANGUAGE sql AS 'SELECT true'",
        "CREATE VIEW v AS SELECT 1",
        "DROP TABLE schema_migrations",
        "CREATE TABLE schema_migrations_2 (version int)",
        "ALTER TABLE services ADD CONSTRAINT c CHECK (set_config('role', 'postgres', true) IS NOT NULL) NOT VALID",
        "ALTER TABLE customers ALTER COLUMN first_name SET DEFAULT 'x'",
        "CREATE TRIGGER t BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "CREATE POLICY p ON customers USING (true)",
        "CREATE RULE r AS ON INSERT TO customers DO ALSO NOTIFY x",
        "CREATE INDEX i ON customers (lower(first_name))",
        "SELECT * FROM schema_migrations",
        "INSERT INTO schema_migrations VALUES (99, 'forged', 'x')",
    ]
    try:
        for sql in attempts:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("LOCK TABLE schema_migrations")
        # Its data is its own to use.
        await conn.execute("INSERT INTO customers (telegram_id) VALUES (1)")
        assert await conn.fetchval("SELECT count(*) FROM customers") == 1
    finally:
        await conn.close()


async def test_migrations_run_as_the_owner_and_record_only_platform_rows(
    make_tenant: MakeTenant, pg: asyncpg.Connection
) -> None:
    tenant = await make_tenant()
    extra = "ALTER TABLE customers ADD COLUMN probe text DEFAULT current_user"
    migrations = [*load_migrations("tenant")]
    migrations.append(Migration(900, "probe", extra, hashlib.sha256(extra.encode()).hexdigest()))
    report = await migrate_tenant(pg, tenant.tenant_id, migrations=migrations)
    assert report.applied == ["0900_probe"]
    conn = await asyncpg.connect(tenant.dsn)
    try:
        await conn.execute("INSERT INTO customers (telegram_id) VALUES (5)")
        # The column's default was set by the migration as the owner role; rows the tenant
        # writes get the tenant's name: nothing of the admin leaked into the schema.
        assert await conn.fetchval("SELECT probe FROM customers") == tenant.tenant_id
    finally:
        await conn.close()


# -------------------------------------------- schemas from before the split: refused, not run


@pytest.mark.parametrize("what", sorted(PLANTS))
async def test_planted_code_in_a_legacy_schema_never_runs_as_the_admin(
    legacy_tenant: TenantDatabase,
    pg: asyncpg.Connection,
    pg_dsn: str,
    tmp_path: Path,
    what: str,
) -> None:
    tid = legacy_tenant.tenant_id
    await plant(legacy_tenant, what)

    # migrate: the conversion audits first and refuses; the migrator refuses the old shape.
    with pytest.raises(TenantCodeError, match=r"spy|set_config|customers_view"):
        await secure_tenant_schema(pg, tid)
    assert (
        await pg.fetchval(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", tid
        )
        == tid
    )  # left as it was, for an operator to inspect
    with pytest.raises(MigrationError, match="owned by"):
        await migrate_tenant(pg, tid)

    # backup: pg_dump reads catalogs and copies rows; nothing of the tenant's runs.
    server = Server(pg_dsn)
    dump = await dump_tenant(server, tid, tmp_path)

    # restore, scratch and in place: refused before a single row goes in.
    with pytest.raises(TenantCodeInBackupError, match="tenant code"):
        await restore_tenant(server, dump.path, tid, into="scratch")
    assert not await pg.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", f"{tid}_restored")
    with pytest.raises(TenantCodeInBackupError):
        await restore_tenant(server, dump.path, tid, into="inplace", backups_dir=tmp_path)
    conn = await asyncpg.connect(legacy_tenant.dsn)
    try:  # the live schema is intact and still the tenant's
        assert await conn.fetchval("SELECT count(*) FROM services") == 0
    finally:
        await conn.close()

    # stats: a schema not in the owner shape is not read with admin rights.
    await pg.execute(
        "INSERT INTO control.tenants (tenant_id, number, plan, business_name, owner_telegram_id,"
        " status) VALUES ($1, $2, 'start', 'Spy', 1, 'active')",
        tid,
        int(tid.removeprefix("client_")),
    )
    try:
        pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
        try:
            await collect_stats(pool, None, now=datetime.now(UTC))
        finally:
            await pool.close()
    finally:
        await pg.execute("DELETE FROM control.tenants WHERE tenant_id = $1", tid)

    # legacy import writes as the admin: refused into such a schema.
    legacy = tmp_path / f"{tid}.db"
    import sqlite3

    sqlite3.connect(legacy).close()
    report = await import_file(pg, tid, legacy)
    assert report.error is not None and "make migrate" in report.error

    # rotate-keys reads and writes control.tenants only; the master's final backup on delete
    # is a pg_dump like the one above.
    await rotate_secrets(pg, Fernet.generate_key().decode())
    await dump_schema(pg_dsn, tid, tmp_path / "final")

    assert await evidence_of_admin(pg, tid) == []


async def test_scripts_migrate_reports_a_planted_schema_and_migrates_the_others(
    legacy_tenant: TenantDatabase, make_tenant: MakeTenant, pg: asyncpg.Connection, pg_dsn: str
) -> None:
    await plant(legacy_tenant, "view")
    clean = await make_tenant(migrate=False)
    for tenant in (legacy_tenant, clean):
        await pg.execute(
            "INSERT INTO control.tenants (tenant_id, number, plan, business_name,"
            " owner_telegram_id) VALUES ($1, $2, 'start', 'T', 1)",
            tenant.tenant_id,
            int(tenant.tenant_id.removeprefix("client_")),
        )
    try:
        run = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "scripts.migrate",
                "--tenant",
                legacy_tenant.tenant_id,
                "--tenant",
                clean.tenant_id,
            ],
            env={**os.environ, "DATABASE_URL": pg_dsn},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        await pg.execute(
            "DELETE FROM control.tenants WHERE tenant_id = ANY($1::text[])",
            [legacy_tenant.tenant_id, clean.tenant_id],
        )
    assert run.returncode == 1
    assert f"{legacy_tenant.tenant_id}: FAILED:" in run.stderr and "customers_view" in run.stderr
    assert f"{clean.tenant_id}: " in run.stdout  # the clean one was migrated all the same
    assert await pg.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{clean.schema}.bookings")
    assert await evidence_of_admin(pg, legacy_tenant.tenant_id) == []


async def test_a_clean_legacy_schema_is_converted_and_keeps_its_data(
    legacy_tenant: TenantDatabase, pg: asyncpg.Connection
) -> None:
    conn = await asyncpg.connect(legacy_tenant.dsn)
    await conn.execute("INSERT INTO customers (telegram_id, first_name) VALUES (7, 'Vera')")
    await conn.close()
    await secure_tenant_schema(pg, legacy_tenant.tenant_id)
    owner = f"{legacy_tenant.tenant_id}_owner"
    owners = await pg.fetch(
        "SELECT DISTINCT relowner::regrole::text AS o FROM pg_class"
        " WHERE relnamespace = $1::regnamespace",
        legacy_tenant.tenant_id,
    )
    assert [r["o"] for r in owners] == [owner]
    assert (await migrate_tenant(pg, legacy_tenant.tenant_id)).applied == []  # ledger kept
    conn = await asyncpg.connect(legacy_tenant.dsn)
    try:
        assert await conn.fetchval("SELECT first_name FROM customers") == "Vera"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE VIEW v AS SELECT 1")
    finally:
        await conn.close()


# ---------------------------------------------------------------------------- locks and limits


def _old_migration_key(schema: str) -> int:
    digest = hashlib.blake2b(f"botfleet.migrate.{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def test_advisory_locks_of_a_tenant_stall_no_platform_work(
    make_tenant: MakeTenant, pg_dsn: str
) -> None:
    attacker = await make_tenant()
    conn = await asyncpg.connect(attacker.dsn)
    try:
        # Every lock the platform used to take: the DDL lock, the migration locks.
        for key in (0x626F74666C656574, _old_migration_key("control")):
            await conn.execute("SELECT pg_advisory_lock($1)", key)
        victim_id = new_tenant_id()
        await conn.execute("SELECT pg_advisory_lock($1)", _old_migration_key(victim_id))
        admin = await asyncpg.connect(pg_dsn)
        try:
            # Provisioning another tenant and migrating finish (they hung for ever before).
            _victim, report = await asyncio.wait_for(
                create_tenant_database(admin, victim_id, server_dsn=pg_dsn), 20
            )
            assert report.applied
            await asyncio.wait_for(migrate_tenant(admin, victim_id), 10)
            await drop_tenant_database(admin, victim_id, drop_data=True)
        finally:
            await admin.close()
    finally:
        await conn.close()


async def test_a_tenant_holding_its_tables_locked_cannot_stall_its_migration(
    make_tenant: MakeTenant, pg: asyncpg.Connection
) -> None:
    tenant = await make_tenant()
    conn = await asyncpg.connect(tenant.dsn)
    tx = conn.transaction()
    await tx.start()
    await conn.execute("SET idle_in_transaction_session_timeout = 0")  # its own choice
    await conn.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
    extra = "ALTER TABLE customers ADD COLUMN note2 text"
    migrations = [*load_migrations("tenant")]
    migrations.append(Migration(901, "note2", extra, hashlib.sha256(extra.encode()).hexdigest()))
    report = await asyncio.wait_for(migrate_tenant(pg, tenant.tenant_id, migrations=migrations), 30)
    assert report.applied == ["0901_note2"]
    with pytest.raises(
        (
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
        )
    ):
        await conn.fetchval("SELECT 1")  # its session was closed to let the migration in
    conn.terminate()


async def test_session_limits_are_set_and_the_tenant_cannot_keep_its_own(
    make_tenant: MakeTenant, pg: asyncpg.Connection
) -> None:
    tenant = await make_tenant()
    conn = await asyncpg.connect(tenant.dsn)
    try:
        assert await conn.fetchval("SHOW statement_timeout") == "30s"
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "1min"
        assert await conn.fetchval("SHOW lock_timeout") == "10s"
        # PostgreSQL lets a role change its own defaults...
        await conn.execute(f"ALTER ROLE \"{tenant.role}\" SET work_mem = '2GB'")
        await conn.execute(f'ALTER ROLE "{tenant.role}" SET statement_timeout = 0')
    finally:
        await conn.close()
    await secure_tenant_schema(pg, tenant.tenant_id)  # what `make migrate` and provisioning do
    conn = await asyncpg.connect(tenant.dsn)
    try:  # ...and the platform puts its own back.
        assert await conn.fetchval("SHOW work_mem") == "4MB"
        assert await conn.fetchval("SHOW statement_timeout") == "30s"
    finally:
        await conn.close()


async def test_a_statement_the_tenant_unlimited_itself_is_terminated(
    make_tenant: MakeTenant, pg: asyncpg.Connection
) -> None:
    tenant = await make_tenant()
    conn = await asyncpg.connect(tenant.dsn)
    await conn.execute("SET statement_timeout = 0")
    sleeper = asyncio.create_task(conn.fetchval("SELECT pg_sleep(60)"))
    await asyncio.sleep(1.0)
    closed = await terminate_runaway_sessions(pg, statement_seconds=0.5)
    assert f"{tenant.role} (statement)" in closed
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        await asyncio.wait_for(sleeper, 10)
    conn.terminate()


async def test_suspension_ends_open_sessions(
    make_tenant: MakeTenant, pg: asyncpg.Connection
) -> None:
    tenant = await make_tenant()
    conn = await asyncpg.connect(tenant.dsn)
    assert await conn.fetchval("SELECT count(*) FROM customers") == 0
    await disable_tenant_login(pg, tenant.tenant_id)
    with pytest.raises(
        (
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
        )
    ):
        await conn.fetchval("SELECT count(*) FROM customers")
    conn.terminate()
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        await asyncpg.connect(tenant.dsn)


async def test_another_tenant_cannot_block_a_tenants_leads(make_tenant: MakeTenant) -> None:
    from client_bot.store.assistant import AssistantStore

    victim, attacker = await make_tenant(), await make_tenant()
    conn = await asyncpg.connect(victim.dsn)
    customer = await conn.fetchval(
        "INSERT INTO customers (telegram_id) VALUES (1) RETURNING telegram_id"
    )
    await conn.close()
    hostile = await asyncpg.connect(attacker.dsn)
    pool = await asyncpg.create_pool(victim.dsn, min_size=1, max_size=2)
    try:
        # The key the victim's bot used to serialise a customer's leads, held by another tenant.
        await hostile.execute(
            "SELECT pg_advisory_lock(hashtext($1 || ':lead'), $2)", victim.schema, customer
        )
        store = AssistantStore(pool, lambda: None)
        saved = await asyncio.wait_for(
            store.save_lead(
                customer_id=customer,
                name="Anna",
                phone="+79001234567",
                interest="haircut",
                comment="",
                now=datetime.now(UTC),
            ),
            5,
        )
        assert saved.created
    finally:
        await pool.close()
        await hostile.close()


async def test_a_database_created_after_provisioning_is_closed_by_the_masters_guard(
    make_tenant: MakeTenant, pg_server_dsn: str, pg_dsn: str
) -> None:
    from master_bot.guard import guard_pass

    tenant = await make_tenant()
    name = f"later_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')  # open to PUBLIC, as every new database
    try:
        later = parse_dsn(tenant.dsn).with_database(name)
        probe = await asyncpg.connect(later)  # the hole: the tenant gets in
        await probe.close()
        pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
        try:
            await guard_pass(pool)
        finally:
            await pool.close()
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await asyncpg.connect(later)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_tenant_migrations_create_no_code_and_the_audit_sees_code(
    make_tenant: MakeTenant, pg: asyncpg.Connection
) -> None:
    from database.audit import tenant_code_objects

    tenant = await make_tenant()
    # Every tenant migration keeps to tables, sequences, indexes and plain constraints (the
    # restore and conversion audits rely on it): a new one that adds code fails here.
    assert await tenant_code_objects(pg, tenant.schema) == []
    await pg.execute(
        f'ALTER TABLE "{tenant.schema}".services ADD CONSTRAINT probe'
        " CHECK (set_config('role', 'postgres', true) IS NOT NULL) NOT VALID"
    )
    found = await tenant_code_objects(pg, tenant.schema)
    assert found == ["constraint probe calls set_config(text,text,boolean)"]
