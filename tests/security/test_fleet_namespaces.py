"""Two fleets on one PostgreSQL cluster and one Redis (staging beside production): each
provisions the same tenant id, both keep working, and neither takes over the other's names.

The attack of the issue: a second fleet provisioning `client_001` used to reset the first
fleet's role password and ACL user. Containers: tests/master/test_docker_master.py (fleet labels).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiogram.fsm.storage.base import StorageKey
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from database.dsn import parse_dsn
from database.migrator import migrate_control
from database.redis_tenants import create_tenant_redis_user, fsm_storage, remove_tenant_redis
from database.roles import NameTakenError, fleet_mark
from database.tenants import create_tenant_database, drop_tenant_database
from tests.conftest import new_tenant_id


@pytest.fixture
async def second_database(pg_server_dsn: str) -> AsyncIterator[str]:
    """Another fleet's platform database on the same cluster (control migrations applied)."""
    name = f"botfleet_other_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = parse_dsn(pg_server_dsn).with_database(name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate_control(conn)
    finally:
        await conn.close()
    yield dsn
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def _fleet_id(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SELECT id::text FROM control.fleet"))


async def test_two_fleets_each_provision_the_same_tenant_and_both_keep_working(
    pg_dsn: str, second_database: str, redis_url: str, redis_admin: Redis
) -> None:
    tid = new_tenant_id()
    prod = await asyncpg.connect(pg_dsn)
    staging = await asyncpg.connect(second_database)
    try:
        a, _ = await create_tenant_database(prod, tid, server_dsn=pg_dsn)
        ra = await create_tenant_redis_user(
            redis_admin,
            tid,
            server_url=redis_url,
            mark=fleet_mark("botfleet", await _fleet_id(prod)),
        )
        b, _ = await create_tenant_database(
            staging, tid, server_dsn=second_database, fleet="staging"
        )
        rb = await create_tenant_redis_user(
            redis_admin,
            tid,
            server_url=redis_url,
            fleet="staging",
            mark=fleet_mark("staging", await _fleet_id(staging)),
        )
        assert (a.role, b.role) == (tid, f"staging_{tid}")
        assert (ra.key_prefix, rb.key_prefix) == (f"{{{tid}}}:", f"{{staging_{tid}}}:")

        # Both logins work after both provisioned: the second did not reset the first.
        for tenant, row in ((a, 1), (b, 2)):
            conn = await asyncpg.connect(tenant.dsn)
            try:
                await conn.execute("INSERT INTO customers (telegram_id) VALUES ($1)", row)
                assert await conn.fetchval("SELECT array_agg(telegram_id) FROM customers") == [row]
            finally:
                await conn.close()
        # And each Redis user reaches its own fleet's keys only.
        ca, cb = Redis.from_url(ra.url), Redis.from_url(rb.url)
        try:
            await ca.set(f"{{{tid}}}:probe", "prod")
            await cb.set(f"{{staging_{tid}}}:probe", "staging")
            with pytest.raises(ResponseError, match="no permissions"):
                await cb.get(f"{{{tid}}}:probe")
            storage = fsm_storage(cb, tid, rb.key_prefix)
            key = storage.key_builder.build(StorageKey(bot_id=1, chat_id=2, user_id=3))
            assert key.startswith(f"{{staging_{tid}}}:fsm:")
        finally:
            await ca.aclose()
            await cb.aclose()
    finally:
        await remove_tenant_redis(redis_admin, tid, drop_data=True)
        await remove_tenant_redis(redis_admin, tid, drop_data=True, fleet="staging")
        await drop_tenant_database(prod, tid, drop_data=True)
        await drop_tenant_database(staging, tid, drop_data=True, fleet="staging")
        await prod.close()
        await staging.close()


async def test_a_fleet_left_at_the_same_name_cannot_take_over_the_others_tenant(
    pg_dsn: str, second_database: str, redis_url: str, redis_admin: Redis
) -> None:
    tid = new_tenant_id()
    prod = await asyncpg.connect(pg_dsn)
    twin = await asyncpg.connect(second_database)  # also FLEET_NAME=botfleet: a misconfiguration
    try:
        a, _ = await create_tenant_database(prod, tid, server_dsn=pg_dsn)
        prod_mark = fleet_mark("botfleet", await _fleet_id(prod))
        await create_tenant_redis_user(redis_admin, tid, server_url=redis_url, mark=prod_mark)

        with pytest.raises(NameTakenError, match="FLEET_NAME"):
            await create_tenant_database(twin, tid, server_dsn=second_database)
        with pytest.raises(NameTakenError, match="FLEET_NAME"):
            await create_tenant_redis_user(
                redis_admin,
                tid,
                server_url=redis_url,
                mark=fleet_mark("botfleet", await _fleet_id(twin)),
            )
        # The first fleet's tenant is untouched: same password, same grants.
        conn = await asyncpg.connect(a.dsn)
        try:
            assert await conn.fetchval("SELECT current_database()") == parse_dsn(pg_dsn).database
        finally:
            await conn.close()
    finally:
        await remove_tenant_redis(redis_admin, tid, drop_data=True)
        await drop_tenant_database(prod, tid, drop_data=True)
        await prod.close()
        await twin.close()
