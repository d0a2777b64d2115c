"""Moving a tenant between two PostgreSQL servers (master_bot/dbmove.py), by its size.

    python -m bench.bench_db_move [--rows 1000 10000 100000]

The platform's server is DATABASE_URL's (a scratch control database, dropped afterwards); the
second one is a throwaway PostgreSQL started here (tests/pg_local.py). Per size: one tenant
with that many customers (plus what its migrations create), moved from the platform's server to
the second one. The bot is the in-memory backend's, so what is measured is the move itself:
prints the total time, the time the bot was down (stop until started again), the rows and
tables verified, and rows per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from pathlib import Path

import asyncpg
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from bench.bench_reconcile import insert_tenants
from core.secrets import SecretBox
from database.dsn import parse_dsn
from database.migrator import migrate_control
from database.tenants import create_tenant_database
from master_bot.dbmove import move_to_server
from master_bot.dbservers import register
from master_bot.deploy.base import ClientSpec, RuntimeStatus
from master_bot.deploy.memory import MemoryBackend
from master_bot.deps import Deps, MasterConfig
from master_bot.store import TenantStore
from master_bot.telegram import TelegramGateway
from tests.pg_local import local_pg


class TimedBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.stopped_at = 0.0
        self.started_at = 0.0

    async def stop(self, tenant_id: str) -> RuntimeStatus:
        self.stopped_at = time.perf_counter()
        return await super().stop(tenant_id)

    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        self.started_at = time.perf_counter()
        return await super().deploy(spec)


async def main(sizes: list[int]) -> None:
    server = os.environ["DATABASE_URL"]
    name = f"botfleet_bench_move_{os.getpid()}"
    dsn = parse_dsn(server).with_database(name)
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
    redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        with local_pg() as second:
            box = SecretBox(Fernet.generate_key().decode())
            backend = TimedBackend()
            deps = Deps(
                config=MasterConfig(
                    tenant_database_url=dsn,
                    tenant_redis_url="redis://127.0.0.1:6379/0",
                    telegram_api_url="http://127.0.0.1:9",
                    clients_dir=Path("/nonexistent"),
                    backups_dir=Path("/nonexistent"),
                    admin_database_url=dsn,
                ),
                pool=pool,
                redis=redis,
                backend=backend,
                box=box,
                telegram=TelegramGateway("http://127.0.0.1:9"),
                store=TenantStore(pool),
            )
            async with pool.acquire() as conn:
                await migrate_control(conn)
            await register(deps, "second", second.dsn, None, actor="bench")
            print(
                f"{'rows':>9} {'move s':>8} {'bot down s':>11} {'verified rows':>14} {'rows/s':>9}"
            )
            for size in sizes:
                number = 7 * 10**10 + secrets.randbelow(10**9)
                async with pool.acquire() as conn:
                    (tid,) = await insert_tenants(conn, box, "basic", {number: "active"})
                    tenant = await deps.store.get(tid)
                    assert tenant is not None and tenant.db_password_enc is not None
                    await create_tenant_database(
                        conn, tid, server_dsn=dsn, password=box.decrypt(tid, tenant.db_password_enc)
                    )
                    await conn.execute(
                        f'INSERT INTO "{tid}".customers (telegram_id, first_name, phone)'
                        " SELECT g, 'Customer ' || g, '+7900' || lpad(g::text, 7, '0')"
                        " FROM generate_series(1, $1) g",
                        size,
                    )
                report = await move_to_server(deps, tid, "second", actor="bench")
                down = backend.started_at - backend.stopped_at
                print(
                    f"{size:>9} {report.seconds:>8.2f} {down:>11.2f} {report.rows:>14}"
                    f" {report.rows / report.seconds:>9.0f}"
                )
            await deps.db_pools.close()
    finally:
        await pool.close()
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    asyncio.run(main(parser.parse_args().rows))
