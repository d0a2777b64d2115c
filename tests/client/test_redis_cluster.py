"""The bots on a Redis Cluster (REDIS_URL `redis+cluster://`): a local 3-master cluster from
Debian's redis-server, an ACL file on every node (tests/redis_cluster.py).

Tenant ACL users are made on every node by the master's admin client; a tenant's keys share one
slot (its hash tag); its user reaches them through `RedisCluster` and never another tenant's;
a client bot serves /start and a booking through the emulator with its REDIS_URL on the cluster.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial

import pytest
from aiogram.fsm.storage.base import StorageKey
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoPermissionError

from core.redis import redis_client
from database.redis_tenants import (
    create_tenant_redis_user,
    disable_tenant_redis_user,
    fsm_storage,
    move_tenant_keys,
    remove_tenant_redis,
)
from middlewares.throttling import ThrottlingMiddleware
from scripts.redis_keys import tenant_usage
from tests.client.conftest import TenantCreds, fetch
from tests.conftest import new_tenant_id
from tests.ops.conftest import run_cli
from tests.redis_cluster import LocalCluster, local_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory.mktemp("redis-cluster") / "nodes") as running:
        yield running


@pytest.fixture
async def admin(cluster: LocalCluster) -> AsyncIterator[Redis]:
    client = redis_client(cluster.admin_url)  # what the master makes of its REDIS_URL
    assert isinstance(client, RedisCluster)
    yield client
    await client.aclose()


async def _acl(node: Redis, user: str, field: str) -> object:
    """One field of `ACL GETUSER` on one node (None: no such user there)."""
    rules = await node.acl_getuser(user)
    return None if rules is None else rules[field]


async def _nodes(cluster: LocalCluster) -> list[Redis]:
    return [Redis.from_url(cluster.node_url(port)) for port in cluster.ports]


async def test_tenant_users_on_every_node_and_no_reach_into_another_tenant(cluster, admin):
    a_id, b_id = new_tenant_id(), new_tenant_id()
    a = await create_tenant_redis_user(admin, a_id, server_url=cluster.admin_url)
    b = await create_tenant_redis_user(admin, b_id, server_url=cluster.admin_url)
    assert a.url.startswith(f"redis+cluster://{a_id}:")
    nodes = await _nodes(cluster)
    ra, rb = redis_client(a.url), redis_client(b.url)
    try:
        # The same user on every node, saved in every node's ACL file (ACL SAVE on each).
        for node, folder in zip(nodes, cluster.dirs, strict=True):
            assert await _acl(node, a_id, "keys") == [f"~{{{a_id}}}:*"]
            assert f"user {a_id} on" in (folder / "users.acl").read_text()

        # Tenant A's FSM and throttling keys through RedisCluster, all in one slot.
        storage = fsm_storage(ra, a_id, a.key_prefix)
        key = StorageKey(bot_id=42, chat_id=7, user_id=7)
        await storage.set_state(key, "Booking:phone")
        await storage.set_data(key, {"service_id": 3, "slot": "10:00"})
        assert await storage.get_state(key) == "Booking:phone"
        assert await storage.get_data(key) == {"service_id": 3, "slot": "10:00"}
        throttling = ThrottlingMiddleware(ra, a.key_prefix)
        async with ra.pipeline(transaction=False) as pipe:  # what the middleware sends
            pipe.incr(f"{throttling.prefix}7")
            pipe.expire(f"{throttling.prefix}7", 10, nx=True)
            assert await pipe.execute() == [1, True]
        a_keys = [k.decode() async for k in admin.scan_iter(match=f"{a.key_prefix}*")]
        assert len(a_keys) == 3
        assert len({await admin.cluster_keyslot(k) for k in a_keys}) == 1

        # The attack: A goes for B's keys, wherever B's slot lives, and for keys of no tenant.
        await rb.set(f"{b.key_prefix}fsm:42:9:9:default:data", '{"phone": "+79001112233"}')
        b_data = f"{b.key_prefix}fsm:42:9:9:default:data"
        attempts: list[Callable[[], Awaitable[object]]] = [
            lambda: ra.get(b_data),
            lambda: ra.set(b_data, "{}"),
            lambda: ra.delete(b_data),
            lambda: ra.get(f"{b_id}:fsm:42:9:9:default:data"),  # the name before hash tags
            lambda: ra.set("unprefixed", "x"),
        ]
        for port in cluster.ports:  # keyless commands, on each node as A
            one = Redis(host="127.0.0.1", port=port, username=a_id, password=a.password)
            nodes.append(one)
            for command in (("KEYS", "*"), ("SCAN", 0), ("CLUSTER", "NODES"), ("ACL", "LIST")):
                attempts.append(partial(one.execute_command, *command))
        for attempt in attempts:
            with pytest.raises(NoPermissionError):
                await attempt()
        assert (
            await rb.get(f"{b.key_prefix}fsm:42:9:9:default:data") == b'{"phone": "+79001112233"}'
        )

        # Suspension and deletion reach every node too.
        await disable_tenant_redis_user(admin, b_id)
        for node in nodes[: len(cluster.ports)]:
            assert "off" in str(await _acl(node, b_id, "flags"))
        assert await move_tenant_keys(admin) == {}  # nothing to move on a cluster
        assert await remove_tenant_redis(admin, a_id, drop_data=True) == 3
        assert [k async for k in admin.scan_iter(match=f"{a.key_prefix}*")] == []
        for node in nodes[: len(cluster.ports)]:
            assert await node.acl_getuser(a_id) is None
    finally:
        await remove_tenant_redis(admin, b_id, drop_data=True)
        for client in (ra, rb, *nodes):
            await client.aclose()


async def test_a_client_bot_on_the_cluster_takes_a_booking(
    cluster, admin, bot_factory, make_tenant
):
    db = await make_tenant()
    user = await create_tenant_redis_user(admin, db.tenant_id, server_url=cluster.admin_url)
    try:
        bot = await bot_factory(tenant=TenantCreds(db.tenant_id, db.dsn, user.url))
        assert isinstance(bot.app.redis, RedisCluster)
        anna = bot.customer(141)
        menu = await anna.ask("/start", "Добро пожаловать")
        services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
        calendar = await anna.press(services, "Стрижка · 1\u00a0500 ₽", "Выберите день")
        slots = await anna.press(calendar, "2", "Выберите время")
        await anna.press(slots, "10:00", "Поделитесь номером телефона")
        # The dialog's state is in the cluster, under the tenant's hash tag.
        state = f"{user.key_prefix}fsm:{bot.app.bot.id}:141:141:default:state"
        assert await admin.get(state) is not None
        summary = await anna.ask("+7 900 123-45-67", "Проверьте запись")
        assert "Стрижка" in summary.plain_text and "ср, 2 дек., 10:00" in summary.plain_text
        await anna.press(summary, "✅ Подтвердить", "Вы записаны")
        rows = await fetch(db.dsn, "SELECT customer_id FROM bookings")
        assert [r["customer_id"] for r in rows] == [141]
        await bot.stop()
    finally:
        await remove_tenant_redis(admin, db.tenant_id, drop_data=True)


async def test_redis_keys_and_stats_count_the_keys_of_every_node(
    cluster: LocalCluster, admin: Redis
) -> None:
    """`make redis-keys` and `make stats` on a cluster: one SCAN per primary node, so a tenant
    whose slot lives on another node than the one REDIS_URL names is counted all the same."""
    tenants = [new_tenant_id() for _ in range(6)]
    for i, tenant in enumerate(tenants):
        await admin.mset({f"{{{tenant}}}:fsm:{n}:state": "x" * 50 for n in range(i + 1)})
    nodes_with_keys = 0
    for port in cluster.ports:
        node = Redis.from_url(cluster.node_url(port))
        try:
            nodes_with_keys += await node.dbsize() > 0
        finally:
            await node.aclose()
    assert nodes_with_keys >= 2  # six tenants' slots: spread over the nodes

    usage = await tenant_usage(admin, [*tenants, "client_1"])
    assert [usage[t].keys for t in tenants] == [1, 2, 3, 4, 5, 6]
    assert all(usage[t].bytes > 50 for t in tenants) and usage["client_1"].bytes == 0
    result = await run_cli("scripts.redis_keys", "--json", env={"REDIS_URL": cluster.admin_url})
    assert result.returncode == 0, result.stderr
    counted = json.loads(result.stdout)["tenants"]
    assert {t: counted.get(t) for t in tenants} == dict(zip(tenants, range(1, 7), strict=True))
    assert cluster.password not in result.stdout + result.stderr
