"""One reconciler pass over N tenants: database state in PostgreSQL, a fake in-memory runtime.

    python -m bench.bench_reconcile [--tenants 500] [--passes 10]

Uses DATABASE_URL's server, in a scratch database that is dropped afterwards. Redis is a fake
that reports every tenant's ACL user as present (no users are created on a real server).
Prints the cold pass (every active tenant deployed), the steady pass (nothing to do) and a pass
after 10% of the bots crashed. Issue 5 aims at under 1 s for 500 tenants.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any, cast

import asyncpg
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from core.secrets import SecretBox
from core.tenant_id import format_tenant_id
from database.dsn import parse_dsn
from database.migrator import migrate_control
from master_bot.deploy.memory import MemoryBackend
from master_bot.deps import Deps, MasterConfig
from master_bot.provision import Provisioner
from master_bot.reconciler import Reconciler
from master_bot.store import TenantStore
from master_bot.telegram import TelegramGateway


class FakeAclRedis:
    def __init__(self, users: dict[str, bool]) -> None:
        self.lines = [
            f"user {u} {'on' if on else 'off'} #x ~{u}:* -@all" for u, on in users.items()
        ]

    async def acl_list(self) -> list[str]:
        return self.lines


async def insert_tenants(
    conn: asyncpg.Connection, box: SecretBox, plan: str, statuses: dict[int, str]
) -> list[str]:
    """Provisioned tenant rows (number -> status), secrets encrypted as the master's; their ids."""
    rows: list[tuple[Any, ...]] = []
    for i, (number, status) in enumerate(statuses.items(), start=1):
        tid = format_tenant_id(number)
        rows.append(
            (
                tid,
                number,
                status,
                plan,
                f"Business {i}",
                1000 + i,
                1_000_000 + i,
                box.encrypt(tid, f"{1_000_000 + i}:bench-token-{secrets.token_hex(12)}"),
                secrets.token_hex(32),
                box.encrypt(tid, secrets.token_urlsafe(24)),
                box.encrypt(tid, secrets.token_urlsafe(24)),
            )
        )
    await conn.executemany(
        "INSERT INTO control.tenants (tenant_id, number, status, plan, business_name,"
        " owner_telegram_id, bot_id, bot_token_enc, bot_token_sha256, db_password_enc,"
        " redis_password_enc, provision_step, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'done', now() + interval '30 days')",
        rows,
    )
    return [r[0] for r in rows]


async def seed(conn: asyncpg.Connection, box: SecretBox, n: int) -> dict[str, bool]:
    """Insert n provisioned tenants; returns {tenant id: its Redis user is enabled}."""
    statuses = {
        8 * 10**10 + i: "active"
        if i % 20 not in (0, 1)
        else ("stopped" if i % 20 == 0 else "suspended")
        for i in range(1, n + 1)
    }
    ids = await insert_tenants(conn, box, "basic", statuses)
    return {tid: status != "suspended" for tid, status in zip(ids, statuses.values(), strict=True)}


async def main(tenants: int, passes: int) -> None:
    server = os.environ["DATABASE_URL"]
    name = f"botfleet_bench_reconcile_{os.getpid()}"
    dsn = parse_dsn(server).with_database(name)
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)
    try:
        box = SecretBox(Fernet.generate_key().decode())
        async with pool.acquire() as conn:
            await migrate_control(conn)
            ids = await seed(conn, box, tenants)
        backend = MemoryBackend()
        deps = Deps(
            config=MasterConfig(
                tenant_database_url=dsn,
                tenant_redis_url="redis://127.0.0.1:6379/0",
                telegram_api_url="http://127.0.0.1:9",
                clients_dir=Path("/nonexistent"),
                backups_dir=Path("/nonexistent"),
            ),
            pool=pool,
            redis=cast(Redis, FakeAclRedis(ids)),
            backend=backend,
            box=box,
            telegram=TelegramGateway("http://127.0.0.1:9"),
            store=TenantStore(pool),
        )
        now = [0.0]
        reconciler = Reconciler(deps, Provisioner(deps), clock=lambda: now[0])

        started = time.perf_counter()
        cold = await reconciler.run_once()
        cold_ms = (time.perf_counter() - started) * 1000
        deployed = sum(1 for a in cold if a.act.value == "deploy")

        steady = []
        for _ in range(passes):
            started = time.perf_counter()
            assert await reconciler.run_once() == []
            steady.append((time.perf_counter() - started) * 1000)

        crashed = [t for t in list(ids)[::10] if backend.states.get(t) is not None]
        for tid in crashed:
            backend.crash(tid)
        now[0] += 600.0  # past any backoff
        started = time.perf_counter()
        restarts = await reconciler.run_once()
        crash_ms = (time.perf_counter() - started) * 1000

        print(f"tenants: {tenants} (active {deployed}), fake runtime, real PostgreSQL")
        print(f"cold pass (deploys {deployed}):     {cold_ms:8.1f} ms")
        print(
            f"steady pass (no action), mean of {passes}: {sum(steady) / len(steady):8.1f} ms"
            f"  (min {min(steady):.1f}, max {max(steady):.1f})"
        )
        print(f"pass after {len(crashed)} crashes ({len(restarts)} restarts): {crash_ms:8.1f} ms")
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--passes", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.tenants, args.passes))
