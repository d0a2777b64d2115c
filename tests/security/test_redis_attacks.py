"""A hostile tenant with exactly the REDIS_URL the master hands its client bot.

Every test is an attack: it must be refused, and the other tenant must not notice it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from aiogram.fsm.storage.base import StorageKey
from redis.asyncio import Redis
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoPermissionError,
    OutOfMemoryError,
    ResponseError,
)

from database.redis_tenants import (
    TENANT_COMMANDS,
    TenantRedis,
    create_tenant_redis_user,
    disable_tenant_redis_user,
    fsm_isolation,
    fsm_storage,
    remove_tenant_redis,
)
from tests.conftest import new_tenant_id
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
# ~0.6 s of a busy server if it were allowed (8 million iterations stalled others by 124 ms).
SLOW_SCRIPT = "local i = 0 while i < 80000000 do i = i + 1 end return i"


@contextlib.asynccontextmanager
async def tenants(admin: Redis, server_url: str, n: int = 2) -> AsyncIterator[list[TenantRedis]]:
    made = [
        await create_tenant_redis_user(admin, new_tenant_id(), server_url=server_url)
        for _ in range(n)
    ]
    try:
        yield made
    finally:
        for t in made:
            await remove_tenant_redis(admin, t.tenant_id, drop_data=True)


@pytest.fixture
async def pair(redis_admin: Redis, redis_url: str) -> AsyncIterator[tuple[TenantRedis, ...]]:
    async with tenants(redis_admin, redis_url) as made:
        yield tuple(made)


# ------------------------------------------------------------------------------ 1. scripting


async def test_a_tenant_cannot_run_scripts_or_functions(pair, redis_admin: Redis) -> None:
    attacker, _ = pair
    sha = await redis_admin.script_load("return 1")  # a script the platform itself loaded
    assert sha == hashlib.sha1(b"return 1").hexdigest()  # noqa: S324 - Redis's own script id
    library = "#!lua name=evil\nredis.register_function('spin', function() return 1 end)"
    refused = [
        ("EVAL", SLOW_SCRIPT, 0),
        ("EVAL_RO", "return 1", 0),
        ("EVALSHA", sha, 0),
        ("EVALSHA_RO", sha, 0),
        ("SCRIPT", "LOAD", SLOW_SCRIPT),
        ("SCRIPT", "EXISTS", sha),
        ("SCRIPT", "FLUSH"),
        ("SCRIPT", "KILL"),
        ("FUNCTION", "LOAD", library),
        ("FUNCTION", "LIST"),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "DELETE", "evil"),
        ("FCALL", "spin", 0),
        ("FCALL_RO", "spin", 0),
    ]
    client = Redis.from_url(attacker.url)
    try:
        for command in refused:
            with pytest.raises(NoPermissionError):
                await client.execute_command(*command)
        assert not any(
            c.split("|")[0] in {"eval", "evalsha", "script", "fcall"} for c in TENANT_COMMANDS
        )
        # Inside a transaction the script is refused too (EXECABORT, nothing runs).
        pipe = client.pipeline(transaction=True)
        pipe.eval(SLOW_SCRIPT, 0)
        with pytest.raises((NoPermissionError, ResponseError)):
            await pipe.execute()
    finally:
        await client.aclose()


async def test_the_other_tenant_is_not_stalled(pair) -> None:
    attacker, victim = pair
    a, b = Redis.from_url(attacker.url), Redis.from_url(victim.url)
    try:
        await a.ping()
        await b.ping()

        async def attack() -> None:
            with contextlib.suppress(NoPermissionError):
                await a.eval(SLOW_SCRIPT, 0)

        task = asyncio.create_task(attack())
        await asyncio.sleep(0.05)  # the script (if it were allowed) is running now
        loop = asyncio.get_running_loop()
        started = loop.time()
        await b.get(f"{victim.key_prefix}fsm:probe")
        waited = loop.time() - started
        await task
        assert waited < 0.2, f"the victim waited {waited:.3f} s behind the attacker's script"
    finally:
        await a.aclose()
        await b.aclose()


async def test_the_event_isolation_lock_works_without_scripts(pair, redis_admin: Redis) -> None:
    tenant, other = pair
    client = Redis.from_url(tenant.url)
    try:
        isolation = fsm_isolation(client, tenant.tenant_id, timeout=5, poll=0.01)
        key = StorageKey(bot_id=1, chat_id=7, user_id=7)
        order: list[str] = []

        async def handler(name: str) -> None:
            async with isolation.lock(key):
                order.append(f"{name}+")
                await asyncio.sleep(0.05)
                order.append(f"{name}-")

        await asyncio.gather(handler("a"), handler("b"))
        assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])  # never interleaved
        lock_key = f"{tenant.key_prefix}fsm:1:7:7:default:lock"
        assert await redis_admin.exists(lock_key) == 0  # released
        # A holder whose lock expired must not release the lock someone else holds now.
        async with isolation.lock(key):
            await redis_admin.set(lock_key, "someone-else")
        assert await redis_admin.get(lock_key) == b"someone-else"
        await redis_admin.delete(lock_key)
        # FSM storage of aiogram under the tenant's user needs no script either.
        storage = fsm_storage(client, tenant.tenant_id)
        await storage.set_state(key, "Booking:date")
        assert await storage.get_state(key) == "Booking:date"
        # The lock key is under the tenant's prefix: the other tenant cannot touch it.
        with pytest.raises(NoPermissionError):
            await client.get(f"{other.key_prefix}fsm:1:7:7:default:lock")
    finally:
        await client.aclose()


# ------------------------------------------------------------------------------ 2. memory


def _redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run `make test` (scripts/services.sh)")
    return binary


@pytest.fixture
def small_redis() -> Iterator[str]:
    """A throwaway redis-server of this test only (random port), no password, no persistence."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [
                _redis_server(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


async def _admin(url: str) -> Redis:
    admin = Redis.from_url(url)
    for _ in range(100):
        with contextlib.suppress(ConnectionError, OSError):
            await admin.ping()
            return admin
        await asyncio.sleep(0.05)
    raise AssertionError(f"throwaway redis-server at {url} did not answer")


async def test_a_tenant_filling_memory_gets_oom_and_cannot_evict_others(small_redis: str) -> None:
    admin = await _admin(small_redis)
    try:
        used = int((await admin.info("memory"))["used_memory"])
        await admin.config_set("maxmemory", used + 4 * 2**20)
        await admin.config_set("maxmemory-policy", "noeviction")
        async with tenants(admin, small_redis) as (attacker, victim):
            b = Redis.from_url(victim.url)
            a = Redis.from_url(attacker.url)
            try:
                key = StorageKey(bot_id=1, chat_id=42, user_id=42)
                victim_fsm = fsm_storage(b, victim.tenant_id)
                await victim_fsm.set_state(key, "Booking:time")
                await victim_fsm.set_data(key, {"service_id": 7, "slot": "10:00"})
                blob = b"x" * 64 * 1024
                with pytest.raises(OutOfMemoryError):
                    for i in range(1000):  # 64 MiB at most: far beyond the 4 MiB left
                        await a.set(f"{attacker.key_prefix}ai:{i}", blob)
                # The victim's dialog state is intact and readable.
                assert await victim_fsm.get_state(key) == "Booking:time"
                assert await victim_fsm.get_data(key) == {"service_id": 7, "slot": "10:00"}
                assert int((await admin.info("stats"))["evicted_keys"]) == 0
                # Writes are refused for everyone until memory is freed (an error, not a crash).
                with pytest.raises(OutOfMemoryError):
                    await victim_fsm.set_data(key, {"big": "y" * 2**20})
                assert await b.ping()
                # Deleting is allowed when full: the operator (or the tenant) can recover.
                assert await remove_tenant_redis(admin, attacker.tenant_id, drop_data=True) > 0
                await victim_fsm.set_state(key, "Booking:done")
                assert await victim_fsm.get_state(key) == "Booking:done"
            finally:
                await a.aclose()
                await b.aclose()
    finally:
        await admin.aclose()


def test_compose_redis_has_a_memory_cap_that_never_evicts() -> None:
    redis = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["redis"]
    script = redis["entrypoint"][-1]
    assert redis["environment"]["REDIS_MAXMEMORY"] == "${REDIS_MAXMEMORY:-512mb}"
    assert '--maxmemory "$$REDIS_MAXMEMORY" --maxmemory-policy noeviction' in script


# ------------------------------------------------------------------------------ 3. accounting


async def test_per_tenant_key_count_and_memory(pair, redis_admin: Redis) -> None:
    from scripts.redis_keys import tenant_usage

    a, b = pair
    client = Redis.from_url(a.url)
    try:
        await client.mset({f"{a.key_prefix}fsm:{i}": "v" * 100 for i in range(37)})
        await client.hset(f"{a.key_prefix}ai:history", mapping={"k": "v" * 1000})
    finally:
        await client.aclose()
    usage = await tenant_usage(redis_admin, [a.tenant_id, b.tenant_id], count=10)
    assert usage[a.tenant_id].keys == 38
    assert usage[b.tenant_id].keys == 0 and usage[b.tenant_id].bytes == 0
    assert usage[a.tenant_id].bytes is not None and usage[a.tenant_id].bytes > 38 * 100


# ------------------------------------------------------------------------------ 4. suspension


async def test_suspension_cuts_open_connections_and_refuses_relogin(pair, redis_admin) -> None:
    tenant, other = pair
    # Connections opened before the suspension: one bare (no retry), one as a bot has it.
    bare = Redis.from_url(tenant.url, single_connection_client=True, retry=None)
    pooled = Redis.from_url(tenant.url)
    bystander = Redis.from_url(other.url)
    try:
        await bare.set(f"{tenant.key_prefix}x", "1")
        await pooled.ping()
        await bystander.ping()
        await disable_tenant_redis_user(redis_admin, tenant.tenant_id)
        with pytest.raises(ConnectionError):
            await bare.get(f"{tenant.key_prefix}x")
        with pytest.raises((ConnectionError, AuthenticationError)):
            await pooled.get(f"{tenant.key_prefix}x")  # the retry logs in again: refused
        fresh = Redis.from_url(tenant.url)
        with pytest.raises(AuthenticationError):
            await fresh.ping()
        await fresh.aclose()
        users = {c.get("user") for c in await redis_admin.client_list()}
        assert tenant.tenant_id not in users
        assert await bystander.ping()  # the other tenant kept its connection
        assert await redis_admin.get(f"{tenant.key_prefix}x") == b"1"  # data kept
    finally:
        for c in (bare, pooled, bystander):
            await c.aclose()
