"""A scratch platform database with N tenant schemas (no login roles) and some rows, for the
stats and backup benchmarks. Tenant migrations run as the admin; with `owner_roles` each schema
is then given to a NOLOGIN role of the owner shape (database/roles.py), as `make stats` reads only
schemas so owned; the roles are dropped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg

from database.dsn import parse_dsn
from database.identifiers import quote_ident
from database.migrator import load_migrations, migrate_control, migrate_schema
from database.roles import owner_role


def tenant_ids(n: int) -> list[str]:
    return [f"client_{7 * 10**10 + i}" for i in range(1, n + 1)]


async def seed_tenant(conn: asyncpg.Connection, tenant_id: str, i: int) -> None:
    s = quote_ident(tenant_id)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    await conn.execute(
        f"INSERT INTO {s}.services (name, price, duration_min) VALUES ('Стрижка', 1500, 60)"
    )
    await conn.execute(
        f"INSERT INTO {s}.customers (telegram_id, first_name)"
        " SELECT g, 'Имя ' || g FROM generate_series(1, 20) AS g"
    )
    await conn.execute(
        f"INSERT INTO {s}.bookings (customer_id, service_id, starts_at, ends_at, phone)"
        " SELECT 1 + g % 20, (SELECT min(id) FROM " + s + ".services),"
        " $1::timestamptz + g * interval '1 hour', $1::timestamptz + g * interval '1 hour'"
        " + interval '50 minutes', '+7900' FROM generate_series(0, 9) AS g",
        now - timedelta(hours=5) + timedelta(minutes=i % 7),
    )
    await conn.execute(
        "INSERT INTO control.tenants (tenant_id, number, status, plan, business_name,"
        " owner_telegram_id, expires_at, provision_step)"
        " VALUES ($1, $2, $3, $4, $5, 1, $6, 'done')",
        tenant_id,
        int(tenant_id.removeprefix("client_")),
        "active" if i % 10 else "suspended",
        "basic" if i % 3 else "pro",
        f"Business {i}",
        now + timedelta(days=i % 40),
    )


@contextlib.asynccontextmanager
async def scratch_fleet(
    n: int, *, concurrency: int = 8, owner_roles: bool = False
) -> AsyncIterator[tuple[str, list[str]]]:
    """(dsn, tenant ids) of a fresh database with n seeded tenant schemas; dropped afterwards."""
    server = os.environ["DATABASE_URL"]
    name = f"botfleet_bench_{os.getpid()}"
    dsn = parse_dsn(server).with_database(name)
    admin = await asyncpg.connect(server)
    await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
    ids = tenant_ids(n)
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=concurrency)
        try:
            async with pool.acquire() as conn:
                await migrate_control(conn)
            migrations = load_migrations("tenant")
            semaphore = asyncio.Semaphore(concurrency)

            async def one(i: int, tenant_id: str) -> None:
                async with semaphore, pool.acquire() as conn:
                    await migrate_schema(conn, tenant_id, migrations)
                    await seed_tenant(conn, tenant_id, i)
                    if owner_roles:
                        owner = quote_ident(owner_role(tenant_id))
                        await conn.execute(f"DROP ROLE IF EXISTS {owner}")  # left by a crash
                        await conn.execute(f"CREATE ROLE {owner} NOLOGIN")
                        await conn.execute(
                            f"ALTER SCHEMA {quote_ident(tenant_id)} OWNER TO {owner}"
                        )

            await asyncio.gather(*(one(i, t) for i, t in enumerate(ids)))
        finally:
            await pool.close()
        yield dsn, ids
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        if owner_roles:
            for tenant_id in ids:
                await admin.execute(f"DROP ROLE IF EXISTS {quote_ident(owner_role(tenant_id))}")
        await admin.close()
