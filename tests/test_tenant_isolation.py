"""A tenant's PostgreSQL role reaches its own schema and nothing else (docs/architecture.md, Isolation)."""

from __future__ import annotations

import asyncpg
import pytest

from core.tenant_id import InvalidTenantIdError
from database.audit import unpinned_security_definers
from database.dsn import parse_dsn
from database.tenants import (
    create_tenant_database,
    drop_tenant_database,
    tenant_exists,
)


async def test_tenant_role_uses_its_schema_but_owns_nothing(make_tenant, pg):
    a = await make_tenant()
    conn = await asyncpg.connect(a.dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == a.tenant_id
        assert await conn.fetchval("SHOW search_path") == a.tenant_id
        await conn.execute("INSERT INTO customers (telegram_id, first_name) VALUES (1, 'Anna')")
        assert await conn.fetchval("SELECT first_name FROM customers") == "Anna"
        # Data only: not even in its own schema can it create, alter or drop anything.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE notes (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE customers ADD COLUMN x int")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DROP TABLE customers")
    finally:
        await conn.close()
    owners = await pg.fetch(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = $1", a.tenant_id
    )
    assert [r["tableowner"] for r in owners] == [f"{a.tenant_id}_owner"]
    assert (
        await pg.fetchval(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", a.tenant_id
        )
        == f"{a.tenant_id}_owner"
    )
    assert not await pg.fetchval(
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", f"{a.tenant_id}_owner"
    )


async def test_tenant_cannot_reach_another_tenant(make_tenant):
    a = await make_tenant()
    b = await make_tenant()
    conn_b = await asyncpg.connect(b.dsn)
    await conn_b.execute("INSERT INTO customers (telegram_id) VALUES (42)")
    await conn_b.close()

    conn = await asyncpg.connect(a.dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(f'SELECT * FROM "{b.schema}".customers')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'INSERT INTO "{b.schema}".customers (telegram_id) VALUES (1)')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'CREATE TABLE "{b.schema}".evil (id int)')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'SET ROLE "{b.role}"')
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET ROLE postgres")
        # Its own customers table is not B's, even by name.
        assert await conn.fetchval("SELECT count(*) FROM customers") == 0
    finally:
        await conn.close()


async def test_tenant_cannot_create_in_public_temp_or_control(make_tenant):
    a = await make_tenant()
    conn = await asyncpg.connect(a.dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.evil (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TEMPORARY TABLE evil (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM control.tenants")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE SCHEMA evil")
    finally:
        await conn.close()


async def test_tenant_cannot_connect_to_other_databases(make_tenant, pg_dsn):
    a = await make_tenant()
    for other in ("postgres", "template1"):
        dsn = parse_dsn(a.dsn).with_database(other)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            conn = await asyncpg.connect(dsn)
            await conn.close()


async def test_wrong_password_is_refused(make_tenant):
    a = await make_tenant()
    wrong = parse_dsn(a.dsn).with_credentials(a.role, "not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_create_is_idempotent_and_resets_the_password(make_tenant, pg, pg_dsn):
    a = await make_tenant()
    conn = await asyncpg.connect(a.dsn)
    await conn.execute("INSERT INTO customers (telegram_id) VALUES (7)")
    await conn.close()
    again, report = await create_tenant_database(pg, a.tenant_id, server_dsn=pg_dsn)
    assert report.applied == []  # nothing re-applied
    assert again.password != a.password
    conn = await asyncpg.connect(again.dsn)
    try:  # data survived, new password works
        assert await conn.fetchval("SELECT count(*) FROM customers") == 1
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(a.dsn)


async def test_drop_requires_an_explicit_yes(make_tenant, pg):
    a = await make_tenant()
    with pytest.raises(ValueError, match="dropping data is explicit"):
        await drop_tenant_database(pg, a.tenant_id, drop_data=False)
    assert await tenant_exists(pg, a.tenant_id)
    await drop_tenant_database(pg, a.tenant_id, drop_data=True)
    assert not await tenant_exists(pg, a.tenant_id)
    for role in (a.tenant_id, f"{a.tenant_id}_owner"):
        assert await pg.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role) == 0


@pytest.mark.parametrize(
    "bad", ["client_", "client_1; DROP TABLE x", 'client_1"', "CLIENT_1", "tenant_1", "", None, 5]
)
async def test_invalid_tenant_ids_are_rejected(pg, pg_dsn, bad):
    with pytest.raises(InvalidTenantIdError, match="expected 'client_' followed by"):
        await create_tenant_database(pg, bad, server_dsn=pg_dsn)


async def test_no_security_definer_function_without_pinned_search_path(make_tenant, pg):
    await make_tenant()
    assert await unpinned_security_definers(pg) == []
    # The check itself can fail: an unpinned SECURITY DEFINER function is reported.
    await pg.execute("CREATE SCHEMA audit_probe")
    try:
        await pg.execute(
            "CREATE FUNCTION audit_probe.leaky() RETURNS int LANGUAGE sql SECURITY DEFINER "
            "AS 'SELECT 1'"
        )
        await pg.execute(
            "CREATE FUNCTION audit_probe.pinned() RETURNS int LANGUAGE sql SECURITY DEFINER "
            "SET search_path = pg_catalog AS 'SELECT 1'"
        )
        assert await unpinned_security_definers(pg) == ["audit_probe.leaky"]
    finally:
        await pg.execute("DROP SCHEMA audit_probe CASCADE")
