"""Restore drills: seed tenants -> dump -> drop -> restore -> every tenant table is identical."""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
import pytest

import scripts.backup.dump as dumps
from database.identifiers import quote_ident
from scripts.backup import (
    BackupError,
    LockBudget,
    Server,
    dump_database,
    dump_tenant,
    lock_budget,
    prune,
    restore_database,
    restore_tenant,
    table_fingerprints,
)
from tests.ops.conftest import CliResult, Fleet, run_cli, seed_rows

Prints = dict[str, dict[str, tuple[int, str]]]
# The tables of staff and group classes (tenant migrations 0007-0010): each holds rows in every
# seeded tenant, so a drill that restores identical fingerprints proves backups carry them.
STAFF_AND_CLASSES = (
    "staff",
    "staff_hours",
    "staff_breaks",
    "staff_days_off",
    "staff_services",
    "staff_invites",
    "class_timetable",
    "class_sessions",
    "class_waitlist",
)


def files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


async def fingerprints(dsn: str, schemas: list[str]) -> Prints:
    conn = await asyncpg.connect(dsn)
    try:
        return {s: await table_fingerprints(conn, s) for s in [*schemas, "control"]}
    finally:
        await conn.close()


async def seed_staff_and_classes(conn: asyncpg.Connection, tenant_id: str) -> None:
    """A second staff member with own hours, a break, a day off, a service at their own price,
    a linked Telegram account and an invite, and a booking at the same time as the first staff
    member's; a class with a timetable, a session, a booked seat and a waiting customer."""
    s = quote_ident(tenant_id)
    staff = await conn.fetchval(
        f"INSERT INTO {s}.staff (name, description, position, own_hours, all_services,"
        " telegram_id) VALUES ('Мария', 'колорист', 1, true, false, 880001) RETURNING id"
    )
    await conn.execute(
        f"INSERT INTO {s}.staff_hours (staff_id, weekday, opens, closes)"
        " VALUES ($1, 0, '09:00', '18:00'), ($1, 2, '12:00', '21:00')",
        staff,
    )
    await conn.execute(
        f"INSERT INTO {s}.staff_breaks (staff_id, weekday, starts, ends)"
        " VALUES ($1, 0, '13:00', '14:00')",
        staff,
    )
    await conn.execute(
        f"INSERT INTO {s}.staff_days_off (staff_id, day) VALUES ($1, '2030-03-08')", staff
    )
    service = await conn.fetchval(f"SELECT min(id) FROM {s}.services")
    await conn.execute(
        f"INSERT INTO {s}.staff_services (staff_id, service_id, price, duration_min)"
        " VALUES ($1, $2, 2500.00, 90)",
        staff,
        service,
    )
    await conn.execute(
        f"INSERT INTO {s}.staff_invites (code_hash, staff_id, created_by, expires_at)"
        " VALUES ($1, $2, 42, now() + interval '3 days')",
        secrets.token_bytes(32),
        staff,
    )
    await conn.execute(
        f"INSERT INTO {s}.bookings (customer_id, service_id, staff_id, starts_at, ends_at,"
        " customer_name, phone) VALUES (700000, $1, $2, '2030-03-04 09:00Z',"
        " '2030-03-04 10:30Z', 'Имя 0', '+79000000000')",
        service,
        staff,
    )
    yoga = await conn.fetchval(
        f"INSERT INTO {s}.services (name, price, duration_min, position, capacity)"
        " VALUES ('Йога', 700.00, 60, 3, 12) RETURNING id"
    )
    timetable = await conn.fetchval(
        f"INSERT INTO {s}.class_timetable (service_id, weekday, starts, staff_id)"
        " VALUES ($1, 1, '19:00', $2) RETURNING id",
        yoga,
        staff,
    )
    session = await conn.fetchval(
        f"INSERT INTO {s}.class_sessions (service_id, starts_at, ends_at, staff_id, capacity,"
        " booked, timetable_id) VALUES ($1, '2030-03-05 16:00Z', '2030-03-05 17:00Z', $2, 12,"
        " 1, $3) RETURNING id",
        yoga,
        staff,
        timetable,
    )
    await conn.execute(
        f"INSERT INTO {s}.bookings (customer_id, service_id, staff_id, session_id, starts_at,"
        " ends_at, customer_name, phone) VALUES (700001, $1, $2, $3, '2030-03-05 16:00Z',"
        " '2030-03-05 17:00Z', 'Имя 1', '+79000000001')",
        yoga,
        staff,
        session,
    )
    await conn.execute(
        f"INSERT INTO {s}.class_waitlist (session_id, customer_id, customer_name, phone)"
        " VALUES ($1, 700000, 'Имя 0', '+79000000000')",
        session,
    )


async def seeded(fleet: Fleet, n: int = 3) -> list[str]:
    tenants = [await fleet.add_tenant() for _ in range(n)]
    conn = await fleet.connect()
    try:
        for i, tenant_id in enumerate(tenants):
            await seed_rows(conn, tenant_id, customers=2 + i)
            await seed_staff_and_classes(conn, tenant_id)
    finally:
        await conn.close()
    return tenants


async def table_owners(fleet: Fleet, schema: str) -> dict[str, str]:
    conn = await fleet.connect()
    try:
        rows = await conn.fetch(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1", schema
        )
    finally:
        await conn.close()
    return {r[0]: r[1] for r in rows}


async def tenant_can_read(fleet: Fleet, tenant_id: str, database: str | None = None) -> int:
    """Log in as the tenant's own role (its password) and count its bookings."""
    tenant = fleet.tenants[tenant_id]
    dsn = tenant.dsn
    if database:
        from database.dsn import parse_dsn

        dsn = parse_dsn(dsn).with_database(database)
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM bookings"))
    finally:
        await conn.close()


def test_lock_budget_detection() -> None:
    # The defaults (64 locks x 100 connections) and 300 tenants of ~23 relations: too many.
    low = LockBudget(
        relations=300 * 23,
        max_locks_per_transaction=64,
        max_connections=100,
        max_prepared_transactions=0,
    )
    assert not low.fits
    assert low.needed_max_locks() == 138
    assert "does NOT fit" in low.explain() and "at least 138" in low.explain()
    # What docker-compose and scripts/services.sh configure: plenty.
    high = LockBudget(300 * 23, 1024, 400, 0)
    assert high.fits and "fits" in high.explain()
    assert LockBudget(100, 1, 100, 100).fits  # prepared transactions count too


def mode(path: Path) -> int:
    """Permission bits of a backup file or folder."""
    return path.stat().st_mode & 0o777


async def test_whole_database_drill(fleet: Fleet, tmp_path: Path) -> None:
    tenants = await seeded(fleet)
    before = await fingerprints(fleet.dsn, tenants)
    assert before[tenants[0]]["bookings"][0] == 6 and before[tenants[2]]["customers"][0] == 4
    assert all(before[t][table][0] > 0 for t in tenants for table in STAFF_AND_CLASSES)
    server = Server(fleet.dsn)

    result = await dump_database(server, tmp_path, mode="auto")
    assert result.mode == "whole" and result.path.suffix == ".dump"
    assert result.schemas == 3
    assert result.roles is not None
    roles = result.roles.read_text()
    assert all(f"CREATE ROLE {t};" in roles for t in tenants)
    assert not files(tmp_path, "*.partial")
    # Every row of every tenant and the roles' password hashes: for the platform's user only.
    assert mode(tmp_path) == 0o700
    assert mode(result.path) == 0o600
    assert mode(result.roles) == 0o600

    # Drop the whole database, then restore it in place under the same name.
    conn = await asyncpg.connect(fleet.server_dsn)
    try:
        await conn.execute(f"DROP DATABASE {quote_ident(fleet.name)} WITH (FORCE)")
    finally:
        await conn.close()
    restored = await restore_database(server, result.path, into="inplace")
    assert restored.target == fleet.name
    assert await fingerprints(fleet.dsn, tenants) == before
    # Database-level grants are not in a dump: the restore gives tenants CONNECT back.
    assert await tenant_can_read(fleet, tenants[0]) == 6

    # The same dump into a scratch database beside the live one.
    scratch = f"{fleet.name}_scratch"
    fleet.databases.append(scratch)
    copy = await restore_database(server, result.path, into="scratch", name=scratch)
    assert copy.target == scratch
    assert await fingerprints(server.with_database(scratch), tenants) == before
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="CONNECT"):
        await tenant_can_read(fleet, tenants[0], scratch)  # a scratch copy is admin-only


async def test_per_schema_drill_when_locks_are_short(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = await seeded(fleet)
    before = await fingerprints(fleet.dsn, tenants)

    async def low_budget(conn: asyncpg.Connection) -> LockBudget:
        real = await original(conn)
        return LockBudget(real.relations, 1, 10, 0)  # as if max_locks_per_transaction were 1

    original = lock_budget
    monkeypatch.setattr(dumps, "lock_budget", low_budget)  # what dump_database asks
    server = Server(fleet.dsn)
    result = await dump_database(server, tmp_path, mode="auto")
    assert result.mode == "per-schema" and result.path.suffix == ".d"
    assert "does NOT fit" in result.note and "max_locks_per_transaction" in result.note
    files = sorted(p.name for p in result.path.iterdir())
    assert files == sorted(["_base.dump", "manifest.json", *(f"{t}.dump" for t in tenants)])
    assert mode(result.path) == 0o700
    assert {mode(p) for p in result.path.glob("*.dump")} == {0o600}

    conn = await asyncpg.connect(fleet.server_dsn)
    try:
        await conn.execute(f"DROP DATABASE {quote_ident(fleet.name)} WITH (FORCE)")
    finally:
        await conn.close()
    await restore_database(server, result.path, into="inplace")
    assert await fingerprints(fleet.dsn, tenants) == before
    assert await tenant_can_read(fleet, tenants[1]) == 6


async def test_tenant_drill_in_place_and_scratch(fleet: Fleet, tmp_path: Path) -> None:
    tenants = await seeded(fleet, 2)
    target, other = tenants
    before = await fingerprints(fleet.dsn, tenants)
    owners_before = await table_owners(fleet, target)
    server = Server(fleet.dsn)
    dump = await dump_tenant(server, target, tmp_path)
    assert dump.path.name.startswith(f"{target}-") and dump.path.suffix == ".dump"

    # Scratch: the dump beside the live schema, under another name, same rows.
    await restore_tenant(server, dump.path, target, into="scratch")
    conn = await fleet.connect()
    try:
        scratch = await table_fingerprints(conn, f"{target}_restored")
        owner = await conn.fetchval(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1",
            f"{target}_restored",
        )
        await conn.execute(f"DROP SCHEMA {quote_ident(target + '_restored')} CASCADE")
        # Lose the tenant's data (the role stays), then restore it in place.
        await conn.execute(f"DELETE FROM {quote_ident(target)}.bookings")
        await conn.execute(f"DROP TABLE {quote_ident(target)}.admins")
    finally:
        await conn.close()
    assert scratch == before[target]
    assert owner != target  # the scratch copy belongs to the admin, not to the tenant

    result = await restore_tenant(server, dump.path, target, into="inplace", backups_dir=tmp_path)
    assert result.safety_dump is not None and result.safety_dump.exists()
    assert await fingerprints(fleet.dsn, tenants) == before  # the other tenant untouched
    assert await tenant_can_read(fleet, target) == 6  # owned by the tenant again
    conn = await fleet.connect()
    try:
        leftovers = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1", f"{target}_%"
        )
    finally:
        await conn.close()
    assert await table_owners(fleet, target) == owners_before  # the tenant's tables are its own
    assert owners_before["bookings"] == f"{target}_owner"  # the platform's owner role
    assert leftovers == 0

    # A tenant is restorable from a whole-database dump too.
    whole = await dump_database(server, tmp_path / "whole", mode="whole")
    await restore_tenant(server, whole.path, other, into="scratch", scratch="other_copy")
    conn = await fleet.connect()
    try:
        assert await table_fingerprints(conn, "other_copy") == before[other]
    finally:
        await conn.close()

    with pytest.raises(BackupError, match="already exists"):
        await restore_tenant(server, whole.path, other, into="scratch", scratch="other_copy")
    with pytest.raises(BackupError, match="holds no table"):
        await restore_tenant(server, dump.path, other, into="scratch")


def test_retention_keeps_the_newest(tmp_path: Path) -> None:
    names = [
        "botfleet-20300101T000000000000Z.dump",
        "botfleet-20300101T000000000000Z.roles.sql",
        "botfleet-20300102T000000000000Z.d",
        "botfleet-20300102T000000000000Z.roles.sql",
        "botfleet-20300103T000000000000Z.dump",
        "botfleet-20300103T000000000000Z.roles.sql",
        "client_001-20300101T000000000000Z.dump",
        "client_001-20300105T000000000000Z.dump",
        "notes.txt",
    ]
    for name in names:
        path = tmp_path / name
        path.mkdir() if name.endswith(".d") else path.write_text("x")
    removed = prune(tmp_path, "botfleet", keep=2)
    assert sorted(p.name for p in removed) == names[:2]
    assert prune(tmp_path, "client_001", keep=0) == []  # 0 keeps everything
    assert [p.name for p in prune(tmp_path, "client_001", keep=1)] == [names[6]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:6] + names[7:])


async def test_cli_dump_check_and_refusal(fleet: Fleet, tmp_path: Path) -> None:
    await seeded(fleet, 1)
    env = {"DATABASE_URL": fleet.dsn}

    async def cli(*args: str) -> CliResult:
        return await run_cli("scripts.backup", *args, env=env)

    check = await cli("check")
    assert check.returncode == 0 and "1 tenant schema(s)" in check.stdout and "fits" in check.stdout
    for _ in range(2):
        assert (await cli("dump", "--dir", str(tmp_path), "--keep", "1")).returncode == 0
    assert len(files(tmp_path, "*.roles.sql")) == 1
    [dump] = files(tmp_path, "*.dump")
    refused = await cli("restore", str(dump), "--into", "inplace")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    missing = await cli("restore", str(tmp_path / "nope.dump"))
    assert missing.returncode == 1 and "no backup at" in missing.stderr
