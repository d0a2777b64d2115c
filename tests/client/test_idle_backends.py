"""Connections grow with activity, not with tenants: an idle client bot holds no PostgreSQL
backend and no Redis connection, and a quiet tenant's reminder worker sleeps until the next reminder is due (woken by a
new booking in the process), instead of polling PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from client_bot.booking_service import Booker, place_booking
from client_bot.clock import SystemClock
from client_bot.store import Booking
from database.dsn import parse_dsn
from tests.client.conftest import T0, fetch

IDLE = 1.0  # DATABASE_IDLE_SECONDS in these tests


async def backends(pg, role: str) -> int:
    return await pg.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role)


async def until_backends(pg, role: str, expected: int, timeout: float = 30) -> None:
    """Wait for the role's backend count to be `expected` (generous: the machine is shared)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (count := await backends(pg, role)) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{role} holds {count} backends, expected {expected}")
        await asyncio.sleep(0.1)


async def test_an_idle_bot_holds_no_backend(bot_factory, pg):
    bot = await bot_factory(settings={"database_idle_seconds": IDLE})
    role = parse_dsn(bot.tenant.dsn).user
    assert bot.app.pool.get_min_size() == 0
    # Start-up (seeding, the workers' first passes) opened connections; they close when idle.
    await until_backends(pg, role, 0)
    # And stay closed: no worker touches PostgreSQL every few seconds.
    await asyncio.sleep(3 * IDLE)
    assert await backends(pg, role) == 0

    anna = bot.customer(301, "Анна")
    menu = await anna.ask("/start", "Добро пожаловать")
    assert "Ромашка" in menu.plain_text
    services = await anna.press(menu, "💇 Услуги", "Наши услуги")
    assert "Стрижка" in services.plain_text
    await until_backends(pg, role, 0)
    await asyncio.sleep(2 * IDLE)
    assert await backends(pg, role) == 0
    # The /start really went through PostgreSQL (the customer is recorded).
    rows = await fetch(bot.tenant.dsn, "SELECT first_name FROM customers")
    assert [r["first_name"] for r in rows] == ["Анна"]


async def redis_clients(redis_admin, user: str) -> int:
    return sum(c.get("user") == user for c in await redis_admin.client_list())


async def test_a_quiet_bot_holds_no_redis_connection(bot_factory, redis_admin):
    bot = await bot_factory(settings={"redis_idle_seconds": IDLE})
    user = unquote(urlsplit(bot.tenant.redis_url).username or "")
    anna = bot.customer(303, "Анна")
    menu = await anna.ask("/start", "Добро пожаловать")
    assert await redis_clients(redis_admin, user) >= 1  # the update used one (FSM, throttling)
    for _ in range(2):  # closed once quiet; the next update opens one again and it closes again
        deadline = asyncio.get_running_loop().time() + 30
        while (count := await redis_clients(redis_admin, user)) != 0:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{user} still holds {count} Redis connections")
            await asyncio.sleep(0.1)
        services = await anna.press(menu, "💇 Услуги", "Наши услуги")
        assert "Стрижка" in services.plain_text
        menu = await anna.ask("/start", "Добро пожаловать")


def zone_near_ten_am(now: datetime) -> str:
    """A fixed-offset zone where it is about 10:00 now (so a slot a minute ahead is mid-day)."""
    k = ((10 - now.hour + 12) % 24) - 12  # UTC+k, within Etc/GMT's -12..+14
    return "Etc/GMT" if k == 0 else f"Etc/GMT{-k:+d}"  # Etc/GMT-3 is UTC+3


async def reminders_in(bot, customer_id: int) -> list[str]:
    messages = await bot.client.messages(bot.token, customer_id)
    return [m.plain_text for m in messages if "Напоминание" in m.plain_text]


async def test_a_new_booking_wakes_the_sleeping_reminder_worker(bot_factory):
    # The real clock, and the worker's safety-net sleep at its default (15 min): without the
    # wake-up, the reminder below would come a quarter of an hour late.
    bot = await bot_factory(clock=SystemClock(), seed=False)
    worker = bot.app.reminders
    assert worker.interval >= 600
    anna = bot.customer(302, "Анна")
    await anna.ask("/start", "")  # Telegram delivers only to chats that exist

    now = datetime.now(UTC)
    zone = zone_near_ten_am(now)
    start = (now + timedelta(seconds=66)).replace(microsecond=0)
    local = start.astimezone(ZoneInfo(zone))
    await bot.store.update_business(
        timezone=zone, lead_time_min=0, buffer_min=0, reminder_offsets_min=[1]
    )
    # Open from exactly `start` (so it is on the slot grid) until 23:00 that day.
    await bot.store.set_hours(local.weekday(), [(local.time(), time(23))])
    service = await bot.store.add_service("Стрижка", Decimal("1500"), 30)

    # The worker has made its first pass (nothing due, nothing upcoming) and sleeps.
    for _ in range(100):
        if worker.passes >= 1:
            break
        await asyncio.sleep(0.05)
    assert worker.passes >= 1

    booked = await place_booking(
        bot.app.ctx, Booker(302, "Анна"), service, start, name="Анна", phone="+79001234567"
    )
    assert isinstance(booked, Booking), booked
    due = start - timedelta(minutes=1)  # a few seconds from now

    reminder = await anna.wait("Напоминание", timeout=60)
    assert "Стрижка" in reminder.plain_text
    rows = await fetch(
        bot.tenant.dsn, "SELECT due_at, sent_at FROM reminders WHERE booking_id = $1", booked.id
    )
    assert len(rows) == 1 and rows[0]["due_at"] == due
    assert rows[0]["sent_at"] >= due  # not early
    await asyncio.sleep(1.5)  # the passes that follow send nothing more
    assert len(await reminders_in(bot, 302)) == 1


async def test_an_undeliverable_reminder_does_not_stop_the_others(bot_factory):
    # A web customer (negative id) has no Telegram chat: "chat not found". The reminder due
    # after it, claimed in the same pass, still goes out.
    bot = await bot_factory(reminder_interval=0.1)
    anna = bot.customer(304, "Анна")
    await anna.ask("/start", "Добро пожаловать")
    service = (await bot.store.services())[0]
    await bot.store.touch_customer(-5, "Веб", None, None)
    visit = T0 + timedelta(days=1, hours=1)  # 10:00 on 2 Dec
    for customer, start, due in ((-5, visit, T0 + timedelta(minutes=10)),
                                 (304, visit + timedelta(hours=1), T0 + timedelta(minutes=20))):  # fmt: skip
        await bot.store.create_booking(
            customer_id=customer, service=service, starts_at=start, customer_name="Имя",
            phone="+79001234567", reminders=[(60, due)],
        )  # fmt: skip
    bot.clock.set(T0 + timedelta(minutes=30))  # both due
    assert "Стрижка" in (await anna.wait("Напоминание")).plain_text
