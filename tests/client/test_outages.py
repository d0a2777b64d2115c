"""Nothing lost to a crash or an outage (issue 12, observations 10 and 11).

- The tenant's PostgreSQL login disabled for ~3 s (suspension's NOLOGIN + its sessions closed)
  while a broadcast runs: the workers log it and go on by themselves; everyone gets the
  broadcast exactly once, the reminder due meanwhile goes out, and a customer who writes during
  the outage is told to try again shortly.
- Redis: the bot's connections killed by the server, then Redis stopped and started again (a
  throwaway redis-server of the test's own): the next /start is answered each time, and during
  the outage the customer gets "try again shortly".
- A bot killed while a handler is mid-way: the update was not confirmed to Telegram, so the
  restarted bot handles it, once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import AsyncGenerator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from database.roles import login_role
from database.tenants import disable_tenant_login, enable_tenant_login
from tests.client.conftest import T0, TenantCreds, fetch
from tests.client.test_booking import book
from tests.client.test_broadcast_claims import (
    add_customers,
    delivered,
    kill,
    statuses,
    wait_for,
)
from tests.support import free_port

UNAVAILABLE = "Бот ненадолго недоступен"
WELCOME = "Добро пожаловать в «Ромашку»!"
TEXT = "Мы открылись после ремонта!"


async def test_workers_go_on_through_a_postgresql_outage(
    bot_factory, emulator, pg_dsn, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING)
    server, client = emulator
    bot = await bot_factory(broadcast_rate=100)
    anna = bot.customer(401)
    await anna.press(await book(anna, day="2", time_="10:00"), "✅ Подтвердить", "Вы записаны")
    await add_customers(server, bot, 300)
    recipients = {r["telegram_id"] for r in await fetch(bot.tenant.dsn, "SELECT * FROM customers")}
    broadcast_id = await bot.store.create_broadcast(TEXT, 7001)
    bot.app.broadcasts.start(broadcast_id)

    async def some_sent() -> bool:
        return sum((await delivered(client, bot.token, TEXT)).values()) >= 20

    await wait_for(some_sent, 15, "the first sends")
    admin = await asyncpg.connect(pg_dsn)
    try:
        await disable_tenant_login(admin, bot.tenant.tenant_id)
        off = asyncio.get_running_loop().time()
        # Meanwhile a customer writes, and the 24 h reminder of Anna's visit falls due.
        boris = bot.customer(402, "Борис")
        await boris.ask("/start", UNAVAILABLE)
        bot.clock.set(T0 + timedelta(hours=1, seconds=1))
        bot.app.ctx.reminders_changed.set()
        await asyncio.sleep(max(0.0, 3.0 - (asyncio.get_running_loop().time() - off)))
        stalled = await delivered(client, bot.token, TEXT)
        assert sum(stalled.values()) < len(recipients), "the outage came mid-broadcast"
    finally:
        await enable_tenant_login(admin, bot.tenant.tenant_id)
        await admin.close()

    async def finished() -> bool:
        rows = await fetch(bot.tenant.dsn, "SELECT status FROM broadcasts")
        return [r["status"] for r in rows] == ["done"]

    await wait_for(finished, 30, "the broadcast finished after the outage")
    after = await delivered(client, bot.token, TEXT)
    assert dict(after) == dict.fromkeys(recipients, 1), "everyone exactly once"
    assert await statuses(bot.tenant.dsn) == {"sent": len(recipients)}
    bot.app.ctx.reminders_changed.set()  # its retry would come in 30 s: wake it now
    reminder = await anna.wait("Напоминание", timeout=10)
    assert "Стрижка" in reminder.plain_text
    assert all(not job.cancelled for job in bot.app._jobs), "every worker is still scheduled"
    await boris.ask("/start", WELCOME)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"broadcast {broadcast_id} interrupted" in logged
    assert "reminder pass failed" in logged
    assert "a dependency is unavailable" in logged


# ---------------------------------------------------------------- Redis of the test's own
class RedisServer:
    """A throwaway redis-server on a free port, stopped and started at will (the shared one
    is never touched)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: the Redis outage test needs it"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--protected-mode", "no"]
        self.process = subprocess.Popen(  # noqa: ASYNC220 - starts at once, waited below
            [binary, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    if await probe.ping():
                        return
                except (OSError, RedisError):  # not listening yet
                    pass
                await asyncio.sleep(0.025)
            raise AssertionError("redis-server did not start")
        finally:
            await probe.aclose()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    yield server
    server.stop()


async def test_redis_dead_connections_and_outage(bot_factory, make_tenant, own_redis):
    await own_redis.start()
    db = await make_tenant()
    bot = await bot_factory(tenant=TenantCreds(db.tenant_id, db.dsn, own_redis.url))
    anna = bot.customer(501)
    await anna.ask("/start", WELCOME)
    await anna.ask("/start", WELCOME)  # the pool holds connections now

    # Redis closes every client connection (a restart, a proxy, suspension's CLIENT KILL).
    admin = Redis.from_url(own_redis.url)
    try:
        killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "normal")
        assert killed >= 1, "the bot had connections to kill"
    finally:
        await admin.aclose()
    before = await anna.seen()
    await anna.ask("/start", WELCOME)
    assert not [m for m in (await anna.client.messages(bot.token, 501))[before:]
                if "пошло не так" in m.plain_text or UNAVAILABLE in m.plain_text]  # fmt: skip

    # Redis down: a polite "try again shortly"; back up: answered again at once.
    own_redis.stop()
    await anna.ask("/start", UNAVAILABLE)
    await own_redis.start()
    await anna.ask("/start", WELCOME)


# ---------------------------------------------------------------- kill -9 mid-handler
async def hold_customers(pg_dsn: str, tenant_id: str) -> AsyncGenerator[Any, None]:
    """An admin transaction holding the tenant's customers table: /start waits on it."""
    conn = await asyncpg.connect(pg_dsn)
    tx = conn.transaction()
    await tx.start()
    await conn.execute(f'LOCK TABLE "{tenant_id}".customers IN ACCESS EXCLUSIVE MODE')
    try:
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


async def test_an_update_being_handled_at_a_kill_is_handled_after_the_restart(
    bot_factory, emulator, pg_dsn
):
    server, _client = emulator
    bot = await bot_factory()
    role = login_role(bot.tenant.tenant_id)
    lock = hold_customers(pg_dsn, bot.tenant.tenant_id)
    conn = await lock.__anext__()
    try:
        anna = bot.customer(601)
        await anna.send("/start")

        async def mid_way() -> bool:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1"
                " AND wait_event_type = 'Lock'",
                role,
            )
            return bool(waiting)

        await wait_for(mid_way, 10, "the /start handler waiting on the customers table")
        await kill(bot)
    finally:
        await lock.aclose()
    assert await anna.seen() == 0, "killed before it answered"

    pending = server.state.bots[bot.token].updates
    assert [u["update_id"] for u in pending], "the update was not confirmed to Telegram"

    await bot_factory(tenant=bot.tenant, token=bot.token, seed=False)
    await anna.wait(WELCOME)

    async def confirmed() -> bool:
        return not server.state.bots[bot.token].updates

    await wait_for(confirmed, 15, "the update confirmed once handled")
    got = [m for m in await anna.client.messages(bot.token, 601) if WELCOME in m.plain_text]
    assert len(got) == 1, "answered once"
