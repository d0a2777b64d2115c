"""Shared fixtures: a real PostgreSQL and a real Redis, never mocks.

`make test` starts throwaway servers when DATABASE_URL / REDIS_URL don't answer. When neither is
available the tests fail and say why: they never skip silently.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest
from _pytest.nodeid import coerce_node_id
from redis.asyncio import Redis
from redis.exceptions import RedisError

from database.dsn import parse_dsn
from database.migrator import migrate_control
from database.tenants import TenantDatabase, create_tenant_database, drop_tenant_database

HOW_TO = "run the suite with `make test`, which starts PostgreSQL and Redis when they are absent"


# Fixtures whose state is server-wide rather than per test session (each xdist worker has a
# database of its own, but all share one Redis): their tests run in one worker, in turn.
SERIAL_FIXTURES = {
    "clean_sales": "sales",  # empties the sales bot's `sales:*` keys (fixed bot and user ids)
}


# Scheduled before the rest (the operator's drill alone is ~4.5 minutes of engine time).
LONG_GROUPS = {"engine:shared": 0, "engine:swarm": 1, "sales": 2, "engine:restart": 3}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """How `make test` spreads the suite over xdist workers (`--dist loadgroup`): a module's
    tests stay together in one worker (they share fixed bot tokens and user ids); engine tests
    in one worker per Docker Engine, one after another (`engine(dockerd="swarm")`: a dockerd of
    their own, which only reads images from the shared one); and so are the tests of each
    SERIAL_FIXTURES group.

    xdist's scheduler groups by a `@<group>` suffix of the node id, which its own hook writes
    to `item._nodeid`; pytest 9 keeps the id in `item._id`, so that had no effect and every test
    went wherever a worker was free (two workers then ran the sales bot's dialogs at once). The
    suffix is written here, where pytest 9 reads it."""
    grouping = bool(getattr(config.option, "loadgroup", False))  # an xdist worker, loadgroup
    groups: dict[int, str] = {}  # id(item) -> its group
    for item in items:
        if (engine := item.get_closest_marker("engine")) is not None:
            group = f"engine:{engine.kwargs.get('dockerd', 'shared')}"
        else:
            fixtures = set(getattr(item, "fixturenames", ()))
            shared = sorted(SERIAL_FIXTURES[f] for f in fixtures & SERIAL_FIXTURES.keys())
            group = shared[0] if shared else item.nodeid.split("::", 1)[0].removeprefix("tests/")
        groups[id(item)] = group
        item.add_marker(pytest.mark.xdist_group(group))
        if grouping and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{group}")
    # The longest groups first, so that no worker starts one of them near the end of the run.
    items.sort(key=lambda item: LONG_GROUPS.get(groups[id(item)], len(LONG_GROUPS)))


def new_tenant_id() -> str:
    """A tenant id no other test (or leftover of an earlier run) uses."""
    return f"client_{9 * 10**10 + secrets.randbelow(10**10)}"


def _require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: {HOW_TO}")
    return value


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    dsn = _require_env("DATABASE_URL")

    async def check() -> None:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise RuntimeError(
                f"PostgreSQL at {parse_dsn(dsn).describe()} does not answer ({exc}): {HOW_TO}"
            ) from None
        await conn.close()

    asyncio.run(check())
    return dsn


@pytest.fixture(scope="session")
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    """Admin DSN of a fresh database for this test session, with control migrations applied."""
    name = f"botfleet_test_{secrets.token_hex(4)}"
    server = parse_dsn(pg_server_dsn)
    dsn = server.with_database(name)

    async def setup() -> None:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(dsn)
        try:
            await migrate_control(conn)
        finally:
            await conn.close()

    async def teardown() -> None:
        conn = await asyncpg.connect(pg_server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(setup())
    yield dsn
    asyncio.run(teardown())


@pytest.fixture
async def pg(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def make_tenant(
    pg_dsn: str,
) -> AsyncIterator[Callable[..., Awaitable[TenantDatabase]]]:
    """Create tenant schemas+roles for a test; all are dropped afterwards."""
    created: list[str] = []

    async def make(tenant_id: str | None = None, **kwargs: object) -> TenantDatabase:
        tenant_id = tenant_id or new_tenant_id()
        conn = await asyncpg.connect(pg_dsn)
        try:
            created.append(tenant_id)
            tenant, _ = await create_tenant_database(conn, tenant_id, server_dsn=pg_dsn, **kwargs)  # type: ignore[arg-type]
        finally:
            await conn.close()
        return tenant

    yield make
    conn = await asyncpg.connect(pg_dsn)
    try:
        for tenant_id in created:
            await drop_tenant_database(conn, tenant_id, drop_data=True)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = _require_env("REDIS_URL")

    async def check() -> None:
        client = Redis.from_url(url)
        try:
            await client.ping()
        except (OSError, RedisError) as exc:
            raise RuntimeError(f"Redis at {url} does not answer ({exc}): {HOW_TO}") from None
        finally:
            await client.aclose()

    asyncio.run(check())
    return url


@pytest.fixture
async def redis_admin(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
