"""Many tenants provisioned and removed at once, while other databases of the cluster come and go.

Issue 13: a benchmark provisioning 6-16 tenants at once failed at the database step with
"tuple concurrently deleted". Catalog rows two transactions update at once make PostgreSQL
fail the second one (`tuple concurrently updated/deleted`, SQLSTATE XX000) instead of waiting:
here the rows of `pg_database` (a database's ACL), which every creation writes (its own
database's, and that of every database still open to PUBLIC) and a removal writes too
(`DROP OWNED BY` revokes the tenant's CONNECT), and which a `DROP DATABASE` elsewhere on the
cluster (a backup restore's scratch database, another fleet's tests) deletes.
"""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest

from database.dsn import parse_dsn
from database.tenants import create_tenant_database, drop_tenant_database
from tests.conftest import new_tenant_id

ROUNDS = 3
AT_ONCE = 14


async def _churn_databases(server_dsn: str, stop: asyncio.Event, names: list[str]) -> int:
    """Create and drop scratch databases until `stop`: each is open to PUBLIC (a new database's
    ACL is the default) until it is dropped, so creators meanwhile revoke on a row being
    deleted. Returns how many came and went."""
    conn = await asyncpg.connect(server_dsn)
    cycles = 0
    try:
        while not stop.is_set():
            name = f"botfleet_test_churn_{secrets.token_hex(4)}"
            names.append(name)
            await conn.execute(f'CREATE DATABASE "{name}"')
            for attempt in range(5):
                try:  # a creator's REVOKE on its row may be in flight: the drop is retried
                    await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                    break
                except asyncpg.InternalServerError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.02)
            cycles += 1
    finally:
        await conn.close()
    return cycles


async def test_tenants_created_and_dropped_at_once_while_databases_come_and_go(
    pg_dsn: str, pg_server_dsn: str
) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=AT_ONCE + 4, max_size=AT_ONCE + 4)
    churned: list[str] = []
    live: list[str] = []
    passwords: dict[str, str] = {}

    async def create(tenant_id: str) -> None:
        async with pool.acquire() as conn:  # as the master's database step does
            await create_tenant_database(
                conn,
                tenant_id,
                server_dsn=pg_dsn,
                password=passwords[tenant_id],
                migrate=False,
            )

    async def drop(tenant_id: str) -> None:
        async with pool.acquire() as conn:
            await drop_tenant_database(conn, tenant_id, drop_data=True)

    try:
        cycles = 0
        for _ in range(ROUNDS):
            batch = [new_tenant_id() for _ in range(AT_ONCE)]
            passwords.update({t: secrets.token_urlsafe(16) for t in batch})
            gone, live = live[: AT_ONCE // 2], live[AT_ONCE // 2 :] + batch
            stop = asyncio.Event()
            churn = asyncio.create_task(_churn_databases(pg_server_dsn, stop, churned))
            try:
                results = await asyncio.gather(
                    *(create(t) for t in batch),
                    *(drop(t) for t in gone),
                    return_exceptions=True,
                )
            finally:
                stop.set()
                cycles += await churn
            failures = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, Exception)]
            assert failures == [], failures
        assert cycles >= ROUNDS  # databases did come and go during the creations

        # What the tenants notice: each live one logs in to its own schema; dropped ones are gone.
        async with pool.acquire() as conn:
            roles = {
                r["rolname"]
                for r in await conn.fetch(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])",
                    list(passwords),
                )
            }
        assert roles == set(live)
        server = parse_dsn(pg_dsn)
        for tenant_id in live[-AT_ONCE:]:
            tenant = await asyncpg.connect(server.with_credentials(tenant_id, passwords[tenant_id]))
            try:
                assert await tenant.fetchval("SELECT current_schema()") == tenant_id
            finally:
                await tenant.close()
    finally:
        async with pool.acquire() as conn:
            for tenant_id in passwords:  # a failed drop left its roles: all are dropped
                await drop_tenant_database(conn, tenant_id, drop_data=True)
        await pool.close()
        admin = await asyncpg.connect(pg_server_dsn)
        try:
            for name in churned:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_provisioning_again_takes_back_temp_and_create_on_the_database(
    make_tenant, pg
) -> None:
    """A login given TEMPORARY/CREATE on the database by hand loses them when provisioned
    again (the database step's retry), and keeps CONNECT."""
    tenant = await make_tenant()
    database = await pg.fetchval("SELECT current_database()")
    await pg.execute(f'GRANT TEMPORARY, CREATE ON DATABASE "{database}" TO "{tenant.role}"')
    again = await make_tenant(tenant.tenant_id)  # the master's retry of the database step
    conn = await asyncpg.connect(again.dsn)  # CONNECT kept
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TEMPORARY TABLE evil (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE SCHEMA evil")
    finally:
        await conn.close()
