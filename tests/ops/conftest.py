"""Fixtures of the operations tests: a fresh platform database per test, tenants with rows.

Tenant ids are random (`new_tenant_id`), because roles are cluster-wide and other test runs
share the server. Every database and role a test creates is dropped afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from database.dsn import parse_dsn
from database.identifiers import quote_ident
from database.migrator import migrate_control
from database.tenants import TenantDatabase, create_tenant_database
from tests.conftest import new_tenant_id


@dataclass
class Fleet:
    """A platform database of its own, and what the test created in it."""

    server_dsn: str
    dsn: str
    name: str
    tenants: dict[str, TenantDatabase] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)

    async def connect(self, database: str | None = None) -> asyncpg.Connection:
        target = parse_dsn(self.dsn).with_database(database) if database else self.dsn
        return await asyncpg.connect(target)

    async def add_tenant(
        self,
        *,
        status: str = "active",
        plan: str = "basic",
        expires_in: timedelta | None = timedelta(days=30),
        now: datetime | None = None,
        timezone: str = "Europe/Moscow",
        schema: bool = True,
        name: str | None = None,
    ) -> str:
        tenant_id = new_tenant_id()
        conn = await self.connect()
        try:
            number = int(tenant_id.removeprefix("client_"))
            await conn.execute(
                "INSERT INTO control.tenants (tenant_id, number, status, plan, business_name,"
                " owner_telegram_id, timezone, expires_at, provision_step)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'done')",
                tenant_id,
                number,
                status,
                plan,
                name or f"Business {tenant_id[-4:]}",
                10_000 + number % 1000,
                timezone,
                (now or datetime.now(UTC)) + expires_in if expires_in is not None else None,
            )
            if schema:
                self.tenants[tenant_id], _ = await create_tenant_database(
                    conn, tenant_id, server_dsn=self.dsn
                )
        finally:
            await conn.close()
        return tenant_id


async def seed_rows(
    conn: asyncpg.Connection,
    tenant_id: str,
    *,
    customers: int = 3,
    bookings: list[tuple[datetime, str]] | None = None,
) -> None:
    """Services, customers, an admin, settings and bookings in the tenant's schema."""
    s = quote_ident(tenant_id)
    await conn.execute(
        f"INSERT INTO {s}.services (name, description, price, duration_min, position)"
        " VALUES ('Стрижка', 'мужская', 1500.00, 60, 1), ('Маникюр', '', 990.50, 30, 2)"
    )
    for i in range(customers):
        await conn.execute(
            f"INSERT INTO {s}.customers (telegram_id, first_name, username, phone)"
            " VALUES ($1, $2, $3, $4)",
            700_000 + i,
            f"Имя {i}",
            f"user{i}",
            f"+7900000{i:04d}",
        )
    await conn.execute(f"INSERT INTO {s}.admins (telegram_id) VALUES (42)")
    await conn.execute(
        f"INSERT INTO {s}.settings (key, value) VALUES ('greeting', '\"привет\"'::jsonb)"
    )
    service = await conn.fetchval(f"SELECT min(id) FROM {s}.services")
    plan = bookings
    if plan is None:
        base = datetime(2030, 3, 4, 9, tzinfo=UTC)
        plan = [(base + timedelta(hours=2 * i), "confirmed") for i in range(4)]
    for i, (starts, status) in enumerate(plan):
        await conn.execute(
            f"INSERT INTO {s}.bookings (customer_id, service_id, starts_at, ends_at, status,"
            " customer_name, phone) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            700_000 + i % max(1, customers),
            service,
            starts,
            starts + timedelta(minutes=60),
            status,
            f"Имя {i}",
            "+79000000000",
        )


async def add_order(
    conn: asyncpg.Connection, *, status: str, amount: str, paid_at: datetime | None
) -> None:
    order_id = "ord_" + secrets.token_hex(12)
    await conn.execute(
        "INSERT INTO control.sales_orders (order_id, kind, status, user_id, plan, period_days,"
        " amount, email, idempotence_key, paid_at)"
        " VALUES ($1, 'new', $2, 1, 'basic', 30, $3, 'a@b.ru', $1, $4)",
        order_id,
        status,
        Decimal(amount),
        paid_at,
    )


async def drop_database(server_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
async def fleet(pg_server_dsn: str) -> AsyncIterator[Fleet]:
    name = f"botfleet_ops_{secrets.token_hex(4)}"
    dsn = parse_dsn(pg_server_dsn).with_database(name)
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate_control(conn)
    finally:
        await conn.close()
    fleet = Fleet(pg_server_dsn, dsn, name)
    fleet.databases.append(name)
    yield fleet
    for database in fleet.databases:
        await drop_database(pg_server_dsn, database)
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        for tenant_id in fleet.tenants:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                tenant_id,
            )
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", tenant_id):
                await conn.execute(f"DROP ROLE {quote_ident(tenant_id)}")
    finally:
        await conn.close()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(module: str, *args: str, env: dict[str, str], timeout: float = 120) -> CliResult:
    """`python -m <module> args...` in a subprocess, without blocking the event loop."""
    import asyncio
    import os
    import sys

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())
