"""A tenant's Redis ACL user works with aiogram's FSM under its prefix and nothing else."""

from __future__ import annotations

import pytest
from aiogram.fsm.storage.base import StorageKey
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError

from core.tenant_id import InvalidTenantIdError
from database.redis_tenants import (
    create_tenant_redis_user,
    disable_tenant_redis_user,
    fsm_isolation,
    fsm_storage,
    remove_tenant_redis,
    revoke_tenant_scripting,
)
from tests.conftest import new_tenant_id


@pytest.fixture
async def two_tenants(redis_admin, redis_url):
    a_id, b_id = new_tenant_id(), new_tenant_id()
    a = await create_tenant_redis_user(redis_admin, a_id, server_url=redis_url)
    b = await create_tenant_redis_user(redis_admin, b_id, server_url=redis_url)
    ra, rb = Redis.from_url(a.url), Redis.from_url(b.url)
    yield a, b, ra, rb
    await ra.aclose()
    await rb.aclose()
    for t in (a_id, b_id):
        await remove_tenant_redis(redis_admin, t, drop_data=True)


async def test_fsm_set_get_data_and_lock_under_tenant_prefix(two_tenants, redis_admin):
    a, _, ra, _ = two_tenants
    storage = fsm_storage(ra, a.tenant_id)
    key = StorageKey(bot_id=1001, chat_id=5, user_id=5)
    await storage.set_state(key, "Booking:date")
    await storage.set_data(key, {"service_id": 3, "date": "2026-12-01"})
    assert await storage.get_state(key) == "Booking:date"
    assert await storage.get_data(key) == {"service_id": 3, "date": "2026-12-01"}
    async with fsm_isolation(ra, a.tenant_id).lock(key):
        await storage.update_data(key, {"slot": "10:00"})
    assert (await storage.get_data(key))["slot"] == "10:00"
    keys = sorted([k.decode() async for k in redis_admin.scan_iter(match=f"{a.key_prefix}*")])
    assert keys == [
        f"{a.key_prefix}fsm:1001:5:5:default:data",
        f"{a.key_prefix}fsm:1001:5:5:default:state",
    ]  # the lock key is released and gone


async def test_other_tenant_keys_and_keyless_commands_are_refused(two_tenants):
    _, b, ra, rb = two_tenants
    await rb.set(f"{b.key_prefix}secret", "b-data")
    with pytest.raises(NoPermissionError):
        await ra.get(f"{b.key_prefix}secret")
    with pytest.raises(NoPermissionError):
        await ra.set(f"{b.key_prefix}secret", "overwritten")
    with pytest.raises(NoPermissionError):
        await ra.set("unprefixed", "x")
    for command in (
        ("SCAN", 0),
        ("KEYS", "*"),
        ("RANDOMKEY",),
        ("DBSIZE",),
        ("SELECT", 1),
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("SCRIPT", "FLUSH"),
        ("CONFIG", "GET", "*"),
        ("ACL", "LIST"),
    ):
        with pytest.raises(NoPermissionError):
            await ra.execute_command(*command)
    # Scripts are refused outright (tests/security/test_redis_attacks.py has the rest).
    with pytest.raises(NoPermissionError):
        await ra.eval("return redis.call('GET', KEYS[1])", 1, f"{b.key_prefix}secret")
    assert await rb.get(f"{b.key_prefix}secret") == b"b-data"


async def test_disable_and_remove(two_tenants, redis_admin, redis_url):
    a, _, ra, _ = two_tenants
    await ra.set(f"{a.key_prefix}x", "1")
    await disable_tenant_redis_user(redis_admin, a.tenant_id)
    fresh = Redis.from_url(a.url)
    with pytest.raises(AuthenticationError, match="user is disabled"):
        await fresh.ping()
    await fresh.aclose()
    assert await redis_admin.get(f"{a.key_prefix}x") == b"1"  # suspending keeps data
    assert await remove_tenant_redis(redis_admin, a.tenant_id, drop_data=True) == 1
    assert await redis_admin.exists(f"{a.key_prefix}x") == 0


async def test_rejects_bad_tenant_ids(redis_admin, redis_url):
    with pytest.raises(InvalidTenantIdError):
        await create_tenant_redis_user(redis_admin, "default", server_url=redis_url)


async def test_users_from_before_the_upgrade_lose_scripting(two_tenants, redis_admin) -> None:
    a, b, ra, rb = two_tenants
    # What create_tenant_redis_user granted before scripting was refused.
    await redis_admin.execute_command(
        "ACL", "SETUSER", a.tenant_id, "+eval", "+evalsha", "+script|load", "+script|exists"
    )
    assert await ra.eval("return 1", 0) == 1
    changed = await revoke_tenant_scripting(redis_admin)  # (also leftovers of older test runs)
    assert a.tenant_id in changed and b.tenant_id not in changed
    with pytest.raises(NoPermissionError):
        await ra.eval("return 1", 0)
    await ra.set(f"{a.key_prefix}still", "works")  # password, keys and commands kept
    assert await rb.ping()
    assert a.tenant_id not in await revoke_tenant_scripting(redis_admin)
