from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from database.migrator import (
    Migration,
    MigrationError,
    load_migrations,
    migrate_schema,
    migrate_tenants,
)
from tests.conftest import new_tenant_id

ROOT = Path(__file__).resolve().parents[1]


def mig(version: int, sql: str, name: str = "step") -> Migration:
    return Migration(version, name, sql, hashlib.sha256(sql.encode()).hexdigest())


@pytest.fixture
async def scratch(pg):
    schema = f"scratch_{os.getpid()}_{id(pg) % 10000}"
    yield schema
    await pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_applies_in_order_records_checksums_and_is_idempotent(pg, scratch):
    migrations = [
        mig(1, "CREATE TABLE items (id int PRIMARY KEY)"),
        mig(2, "ALTER TABLE items ADD COLUMN name text"),
    ]
    report = await migrate_schema(pg, scratch, migrations)
    assert report.applied == ["0001_step", "0002_step"]
    rows = await pg.fetch(f'SELECT version, checksum FROM "{scratch}".schema_migrations ORDER BY 1')
    assert [(r["version"], r["checksum"]) for r in rows] == [
        (1, migrations[0].checksum),
        (2, migrations[1].checksum),
    ]
    again = await migrate_schema(pg, scratch, migrations)
    assert again.applied == [] and again.pending == []


async def test_a_failing_file_rolls_back_alone(pg, scratch):
    good = mig(1, "CREATE TABLE a (id int)")
    bad = mig(2, "CREATE TABLE b (id int); SELECT 1/0")
    with pytest.raises(MigrationError, match="0002_step failed on schema"):
        await migrate_schema(pg, scratch, [good, bad])
    assert await pg.fetchval(f"SELECT to_regclass('{scratch}.a') IS NOT NULL")
    assert await pg.fetchval(f"SELECT to_regclass('{scratch}.b') IS NULL")
    versions = await pg.fetch(f'SELECT version FROM "{scratch}".schema_migrations')
    assert [r["version"] for r in versions] == [1]


async def test_changed_checksum_is_an_error(pg, scratch):
    await migrate_schema(pg, scratch, [mig(1, "CREATE TABLE a (id int)")])
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await migrate_schema(pg, scratch, [mig(1, "CREATE TABLE a (id bigint)")])


async def test_deleted_applied_file_is_an_error(pg, scratch):
    await migrate_schema(pg, scratch, [mig(1, "SELECT 1"), mig(2, "SELECT 2")])
    with pytest.raises(MigrationError, match="no such file exists"):
        await migrate_schema(pg, scratch, [mig(1, "SELECT 1")])


async def test_dry_run_lists_pending_without_applying(pg, scratch):
    await migrate_schema(pg, scratch, [mig(1, "CREATE TABLE a (id int)")])
    report = await migrate_schema(
        pg,
        scratch,
        [mig(1, "CREATE TABLE a (id int)"), mig(2, "CREATE TABLE b (id int)")],
        dry_run=True,
    )
    assert report.pending == ["0002_step"] and report.applied == []
    assert await pg.fetchval(f"SELECT to_regclass('{scratch}.b') IS NULL")


async def test_concurrent_runners_are_serialised(pg_dsn, pg, scratch):
    # Each runner would insert a row; with the advisory lock exactly one applies it.
    migrations = [
        mig(1, "CREATE TABLE runs (n int)"),
        mig(2, "SELECT pg_sleep(0.2); INSERT INTO runs VALUES (1)"),
    ]
    conns = [await asyncpg.connect(pg_dsn) for _ in range(4)]
    try:
        reports = await asyncio.gather(*(migrate_schema(c, scratch, migrations) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert sum(len(r.applied) for r in reports) == 2
    assert await pg.fetchval(f'SELECT count(*) FROM "{scratch}".runs') == 1


def test_files_on_disk_are_well_formed():
    for kind in ("control", "tenant"):
        migrations = load_migrations(kind)
        assert migrations, kind
        assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))


async def test_many_tenants_in_parallel(make_tenant, pg_dsn, pg):
    tenants = [await make_tenant(migrate=False) for _ in range(12)]
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    try:
        fleet = await migrate_tenants(pool, [t.tenant_id for t in tenants], concurrency=4)
        fleet_again = await migrate_tenants(pool, [t.tenant_id for t in tenants], concurrency=4)
        broken = await migrate_tenants(pool, [tenants[0].tenant_id, "client_x"], concurrency=2)
    finally:
        await pool.close()
    expected = [m.label for m in load_migrations("tenant")]
    assert fleet.failures == {}
    assert sorted(r.schema for r in fleet.reports) == sorted(t.tenant_id for t in tenants)
    assert all(r.applied == expected for r in fleet.reports)
    assert all(r.applied == [] for r in fleet_again.reports)
    assert list(broken.failures) == ["client_x"]  # one bad id does not stop the others
    owner = await pg.fetchval(
        "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'customers'",
        tenants[0].tenant_id,
    )
    assert owner == f"{tenants[0].tenant_id}_owner"  # the platform's owner role, not the login
    # The bookkeeping belongs to the owner role; the tenant's login role has no right on it.
    ledger = f"{tenants[0].tenant_id}.schema_migrations"
    assert (
        await pg.fetchval(
            "SELECT relowner::regrole::text FROM pg_class WHERE oid = $1::regclass", ledger
        )
        == owner
    )
    for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"):
        assert not await pg.fetchval(
            "SELECT has_table_privilege($1, $2, $3)", tenants[0].tenant_id, ledger, privilege
        )


async def test_cli_dry_run_then_apply(make_tenant, pg_dsn, pg):
    tenant = await make_tenant(migrate=False)
    await pg.execute(
        "INSERT INTO control.tenants (tenant_id, number, plan, business_name, owner_telegram_id)"
        " VALUES ($1, $2, 'start', 'Test', 1)",
        tenant.tenant_id,
        int(tenant.tenant_id.removeprefix("client_")),
    )
    env = {**os.environ, "DATABASE_URL": pg_dsn}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scripts.migrate", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    labels = [m.label for m in load_migrations("tenant")]
    listed = f"{len(labels)} pending ({', '.join(labels)})"
    # A tenant still provisioning has no schema yet: skipped, not a failure that would keep
    # `migrate` (and with it the master) from starting.
    waiting = new_tenant_id()
    await pg.execute(
        "INSERT INTO control.tenants (tenant_id, number, plan, business_name, owner_telegram_id)"
        " VALUES ($1, $2, 'start', 'Waiting', 1)",
        waiting,
        int(waiting.removeprefix("client_")),
    )
    try:
        dry = cli("--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"{tenant.tenant_id}: {listed}" in dry.stdout
        assert await pg.fetchval(f"SELECT to_regclass('{tenant.schema}.customers') IS NULL")
        real = cli()
        assert real.returncode == 0, real.stderr
        assert f"{tenant.tenant_id}: {listed.replace('pending', 'applied')}" in real.stdout
        assert f"{waiting}: no schema yet (provisioning creates it): skipped" in real.stdout
        assert await pg.fetchval(f"SELECT to_regclass('{tenant.schema}.customers') IS NOT NULL")
    finally:
        await pg.execute(
            "DELETE FROM control.tenants WHERE tenant_id = ANY($1::text[])",
            [tenant.tenant_id, waiting],
        )


def test_new_tenant_ids_differ():
    assert new_tenant_id() != new_tenant_id()
