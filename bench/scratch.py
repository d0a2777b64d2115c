"""What the benchmarks share: a scratch tenant, a free port and the per-operation summary line."""

from __future__ import annotations

import os
import socket
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from database.dsn import parse_dsn
from database.migrator import migrate_control
from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from database.tenants import create_tenant_database, drop_tenant_database


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server started next."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class ScratchTenant:
    tenant_id: str
    dsn: str  # the tenant role's DSN
    redis_url: str  # the tenant ACL user's URL


@asynccontextmanager
async def scratch_tenant(tenant_id: str, label: str) -> AsyncIterator[ScratchTenant]:
    """A tenant (schema, role, Redis user) in a scratch database on DATABASE_URL's server and
    REDIS_URL; everything is dropped afterwards."""
    server_dsn = os.environ["DATABASE_URL"]
    redis_url = os.environ["REDIS_URL"]
    db_name = f"botfleet_bench_{label}_{os.getpid()}"
    dsn = parse_dsn(server_dsn).with_database(db_name)
    admin_pg = await asyncpg.connect(server_dsn)
    await admin_pg.execute(f'CREATE DATABASE "{db_name}"')
    conn = await asyncpg.connect(dsn)
    admin_redis = Redis.from_url(redis_url)
    try:
        await migrate_control(conn)
        tenant, _ = await create_tenant_database(conn, tenant_id, server_dsn=dsn)
        user = await create_tenant_redis_user(admin_redis, tenant_id, server_url=redis_url)
        yield ScratchTenant(tenant_id, tenant.dsn, user.url)
    finally:
        await remove_tenant_redis(admin_redis, tenant_id, drop_data=True)
        await admin_redis.aclose()
        await drop_tenant_database(conn, tenant_id, drop_data=True)
        await conn.close()
        await admin_pg.execute(f'DROP DATABASE "{db_name}" WITH (FORCE)')
        await admin_pg.close()


def summary(label: str, seconds: list[float], width: int = 46) -> str:
    """`label  median x ms  p95 y ms  (n=N)`."""
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[max(0, int(len(ms) * 0.95) - 1)]
    return f"{label:<{width}} median {statistics.median(ms):6.2f} ms   p95 {p95:6.2f} ms   (n={len(ms)})"
