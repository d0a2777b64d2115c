"""Migrate N tenant schemas on this machine (issue: 500 in under 60 s).

    python -m bench.bench_migrate [--tenants 500] [--concurrency 8]

Uses DATABASE_URL's server, in a scratch database that is dropped afterwards. Prints the time to
create the roles and schemas, and the time to apply every tenant migration to all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import asyncpg

from database.dsn import parse_dsn
from database.migrator import load_migrations, migrate_control, migrate_tenants
from database.tenants import create_tenant_database, drop_tenant_database


async def main(tenants: int, concurrency: int) -> None:
    server = os.environ["DATABASE_URL"]
    name = f"botfleet_bench_{os.getpid()}"
    dsn = parse_dsn(server).with_database(name)
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    ids = [f"client_{8 * 10**10 + i}" for i in range(1, tenants + 1)]
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        async with pool.acquire() as conn:
            await migrate_control(conn)
        semaphore = asyncio.Semaphore(concurrency)

        async def create(tenant_id: str) -> None:
            async with semaphore, pool.acquire() as conn:
                await create_tenant_database(conn, tenant_id, server_dsn=dsn, migrate=False)

        started = time.perf_counter()
        await asyncio.gather(*(create(t) for t in ids))
        create_s = time.perf_counter() - started

        fleet = await migrate_tenants(pool, ids, concurrency=concurrency)
        assert not fleet.failures, fleet.failures
        again = await migrate_tenants(pool, ids, concurrency=concurrency)
        files = len(load_migrations("tenant"))
        print(f"tenants: {tenants}, tenant migration files: {files}, concurrency: {concurrency}")
        print(
            f"create roles+schemas: {create_s:7.2f} s  ({create_s / tenants * 1000:.1f} ms/tenant)"
        )
        print(
            f"migrate (all pending): {fleet.seconds:7.2f} s  "
            f"({fleet.seconds / tenants * 1000:.1f} ms/tenant)"
        )
        print(
            f"migrate (up to date):  {again.seconds:7.2f} s  "
            f"({again.seconds / tenants * 1000:.1f} ms/tenant)"
        )
    finally:
        async with pool.acquire() as conn:
            for tenant_id in ids:
                if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", tenant_id):
                    await drop_tenant_database(conn, tenant_id, drop_data=True)
        await pool.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.tenants, args.concurrency))
