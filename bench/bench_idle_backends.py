"""PostgreSQL backends held by client bots: N tenants' bots in one process, idle and in a burst.

    python -m bench.bench_idle_backends [--tenants 100] [--idle 10] [--window 70] [--compare]

Each tenant has its own login role and schema in a scratch database (real PostgreSQL, real
Redis ACL users, the local Telegram emulator). The bots are real `ClientBot`s, all polling.
Backends are counted in pg_stat_activity (the tenant roles' backends in the scratch database),
sampled every 0.1 s:
- start: the peak while the N bots start;
- idle: past the idle time, the mean and the maximum over `--window` seconds (long enough for
  the workers' periodic passes: reminders, admin notices), and the PSS of those backends;
- burst: one customer's /start to every tenant at once, the peak and the time until every tenant
  has answered; then the count once the idle time has passed again;
- latency: a /start to one tenant after another (`--latency-tenants`), its pool as idle left it
  (today: no connection, so the answer includes opening one), then at once again.
`--compare` first runs the same with the pool settings before issue 13 (min_size=1, connections
closed after 300 s unused, a reminder pass at least every 30 s), then with today's. Both run
today's code otherwise: the workers' first passes one after another (before issue 13 they ran at
once, and a starting tenant opened 3-4 connections).

This takes up to N×3 backends of the server's max_connections in the old mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from bench.scratch import summary
from client_bot.app import ClientBot
from client_bot.clock import SystemClock
from core.settings import ClientBotSettings
from core.telegram import build_bot
from database.dsn import parse_dsn
from database.identifiers import quote_ident
from database.migrator import migrate_control
from database.pool import create_pool
from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from database.tenants import create_tenant_database, drop_tenant_database
from telegram_emulator import EmulatorClient, EmulatorServer


@dataclass(frozen=True)
class Mode:
    label: str
    min_size: int
    idle_seconds: float
    reminder_interval: float


OLD = Mode("old pool (min_size=1, idle 300 s; reminder sleep ≤ 30 s)", 1, 300.0, 30.0)


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    token: str
    dsn: str
    redis_url: str


@contextlib.asynccontextmanager
async def scratch_tenants(n: int) -> AsyncIterator[tuple[str, list[Tenant]]]:
    """(scratch database name, tenants) with a login role, schema and Redis user each; all
    dropped afterwards."""
    server_dsn, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    name = f"botfleet_bench_idle_{os.getpid()}"
    dsn = parse_dsn(server_dsn).with_database(name)
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
    conn = await asyncpg.connect(dsn)
    redis = Redis.from_url(redis_url)
    ids = [f"client_74{os.getpid() % 100000:05d}{i:04d}" for i in range(1, n + 1)]
    made: list[str] = []
    try:
        await migrate_control(conn)
        tenants = []
        for i, tenant_id in enumerate(ids, start=1):
            made.append(tenant_id)
            db, _ = await create_tenant_database(conn, tenant_id, server_dsn=dsn)
            user = await create_tenant_redis_user(redis, tenant_id, server_url=redis_url)
            token = f"{74000000 + i}:bench-idle-backends-token-{i:06d}"
            tenants.append(Tenant(tenant_id, token, db.dsn, user.url))
        yield name, tenants
    finally:
        for tenant_id in made:
            await remove_tenant_redis(redis, tenant_id, drop_data=True)
        await redis.aclose()
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        for tenant_id in made:
            await drop_tenant_database(conn, tenant_id, drop_data=True)
        await conn.close()
        await admin.execute(f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")
        await admin.close()


# The tenants' backends in the scratch database (this benchmark's admin connections excluded).
OURS = (
    "datname = current_database() AND backend_type = 'client backend' AND usename <> current_user"
)


class Backends:
    """Samples the client backends of the scratch database (this benchmark's own excluded)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.samples: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def count(self) -> int:
        n: int = await self.conn.fetchval(f"SELECT count(*) FROM pg_stat_activity WHERE {OURS}")
        return n

    async def pss_mib(self) -> float | None:
        """PSS of those backends (None when /proc of the server's processes is not readable)."""
        pids = await self.conn.fetch(f"SELECT pid FROM pg_stat_activity WHERE {OURS}")
        total = 0
        for row in pids:
            try:
                text = await asyncio.to_thread(Path(f"/proc/{row['pid']}/smaps_rollup").read_text)
            except OSError:
                return None
            total += next(int(x.split()[1]) for x in text.splitlines() if x.startswith("Pss:"))
        return total / 1024

    async def _run(self) -> None:
        while True:
            self.samples.append(await self.count())
            await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def sampling(self) -> AsyncIterator[list[int]]:
        self.samples = []
        self._task = asyncio.create_task(self._run())
        try:
            yield self.samples
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self.samples.append(await self.count())


async def build(mode: Mode | None, idle: float, tenant: Tenant, api: str) -> ClientBot:
    settings = ClientBotSettings(
        tenant_id=tenant.tenant_id, bot_token=tenant.token, database_url=tenant.dsn,
        redis_url=tenant.redis_url, telegram_api_url=api, admin_ids=[],
        database_idle_seconds=idle, _env_file=None,
    )  # fmt: skip
    if mode is None:  # today's path, exactly as `python -m client_bot` builds it
        return await ClientBot.create(settings, clock=SystemClock())
    pool = await create_pool(
        tenant.dsn,
        min_size=mode.min_size,
        max_size=5,
        stateless=True,
        idle_seconds=mode.idle_seconds,
    )
    return ClientBot(
        settings,
        pool=pool,
        redis=Redis.from_url(tenant.redis_url),
        bot=build_bot(tenant.token, api, settings.telegram_timeout),
        clock=SystemClock(),
        reminder_interval=mode.reminder_interval,
    )


async def start_latency(
    client: EmulatorClient, tenants: list[Tenant]
) -> tuple[list[float], list[float]]:
    """Seconds from a /start to the answer, tenant after tenant: first with the tenant's pool as
    idle left it, then at once again (its connection, if it opened one, still open)."""
    cold: list[float] = []
    warm: list[float] = []
    for i, t in enumerate(tenants):
        user, last = 910000 + i, 0
        for bucket in (cold, warm):
            began = time.perf_counter()
            await client.send_message(t.token, user, "/start", first_name="Bench")
            answer = await client.wait_for_message(
                t.token, user, contains="", after_message_id=last, timeout=60
            )
            bucket.append(time.perf_counter() - began)
            await asyncio.sleep(0.2)  # anything else the bot sends for it
            last = max(m.message_id for m in await client.messages(t.token, user))
            assert last >= answer.message_id
    return cold, warm


async def run_mode(
    label: str, mode: Mode | None, tenants: list[Tenant], db: str, args: argparse.Namespace
) -> None:
    n = len(tenants)
    idle = mode.idle_seconds if mode is not None else args.idle
    emulator = EmulatorServer()
    await emulator.start()
    client = EmulatorClient(emulator.base_url)
    admin = await asyncpg.connect(parse_dsn(os.environ["DATABASE_URL"]).with_database(db))
    backends = Backends(admin)
    apps: list[ClientBot] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for t in tenants:
            await client.register_bot(t.token, f"idle{t.tenant_id[-4:]}_bot")
        began = time.perf_counter()
        async with backends.sampling() as at_start:
            for t in tenants:
                app = await build(mode, args.idle, t, emulator.base_url)
                apps.append(app)
                tasks.append(asyncio.create_task(app.run(handle_signals=False)))
            for t in tenants:
                await client.wait_for_calls(t.token, "getUpdates", timeout=120)
        started = time.perf_counter() - began

        settle = min(idle, args.idle) + 2  # the old pools keep theirs for 300 s: not waited for
        await asyncio.sleep(settle)
        async with backends.sampling() as at_idle:
            await asyncio.sleep(args.window)
        pss = await backends.pss_mib()

        began = time.perf_counter()
        async with backends.sampling() as in_burst:
            for i, t in enumerate(tenants):
                await client.send_message(t.token, 900000 + i, "/start", first_name="Bench")
            await asyncio.gather(
                *(
                    client.wait_for_message(t.token, 900000 + i, contains="", timeout=120)
                    for i, t in enumerate(tenants)
                )
            )
        answered = time.perf_counter() - began
        await asyncio.sleep(settle)
        after = await backends.count()
        cold, warm = await start_latency(client, tenants[: args.latency_tenants])

        mean = statistics.fmean(at_idle)
        print(f"--- {label}: {n} tenants in one process")
        print(f"  start (all polling after {started:5.1f} s): peak {max(at_start)} backends")
        print(
            f"  idle, {args.window:.0f} s from {settle:.0f} s after start: mean {mean:6.1f}"
            f" backends ({mean / n:.2f} per tenant), max {max(at_idle)}"
            + (f", PSS {pss:.1f} MiB ({pss / n:.2f} MiB per tenant)" if pss is not None else "")
        )
        print(
            f"  /start burst to every tenant: peak {max(in_burst)} backends, all answered in"
            f" {answered:5.2f} s; {settle:.0f} s later {after} backends"
        )
        print(summary("  /start, one tenant at a time, cold pool", cold))
        print(summary("  /start again at once (connection open)", warm))
    finally:
        for app in apps:
            await app.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for app in apps:
            await app.close()
        await admin.close()
        await client.close()
        await emulator.stop()


async def main(args: argparse.Namespace) -> None:
    async with scratch_tenants(args.tenants) as (db, tenants):
        if args.compare:
            await run_mode(OLD.label, OLD, tenants, db, args)
        await run_mode(f"now (min_size=0, idle {args.idle:g} s)", None, tenants, db, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--idle", type=float, default=10.0, help="DATABASE_IDLE_SECONDS")
    parser.add_argument("--window", type=float, default=70.0, help="seconds of idle sampling")
    parser.add_argument("--latency-tenants", type=int, default=20, help="for the /start latency")
    parser.add_argument("--compare", action="store_true", help="also the pool before issue 13")
    asyncio.run(main(parser.parse_args()))
