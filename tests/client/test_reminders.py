"""Reminders 24 h and 2 h before a visit: sent once each, also across a restart."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.client.conftest import T0
from tests.client.test_booking import book


async def reminders_in(bot, customer_id: int) -> list[str]:
    messages = await bot.client.messages(bot.token, customer_id)
    return [m.plain_text for m in messages if "Напоминание" in m.plain_text]


async def test_reminders_are_sent_exactly_once_across_restarts(bot_factory):
    bot = await bot_factory(reminder_interval=0.1)
    anna = bot.customer(401)
    await anna.press(await book(anna, day="2", time_="10:00"), "✅ Подтвердить", "Вы записаны")
    await asyncio.sleep(0.3)
    assert await reminders_in(bot, 401) == []  # 25 h before: nothing is due yet

    bot.clock.set(T0 + timedelta(hours=1, seconds=1))  # 24 h before the visit
    first = await anna.wait("Напоминание")
    assert "Стрижка" in first.plain_text and "ср, 2 дек., 10:00" in first.plain_text
    assert "Москва, ул. Ленина, 1" in first.plain_text
    await asyncio.sleep(0.4)  # several more passes
    assert len(await reminders_in(bot, 401)) == 1

    # A restart does not resend it; the 2-hour reminder follows once.
    tenant, token, clock = bot.tenant, bot.token, bot.clock
    await bot.stop()
    again = await bot_factory(
        tenant=tenant, token=token, clock=clock, seed=False, reminder_interval=0.1
    )
    await asyncio.sleep(0.4)
    assert len(await reminders_in(again, 401)) == 1
    clock.set(T0 + timedelta(hours=23, seconds=1))  # 08:00 on 2 Dec
    for _ in range(50):
        if len(await reminders_in(again, 401)) == 2:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    assert len(await reminders_in(again, 401)) == 2


async def test_no_reminder_for_a_cancelled_booking(bot_factory):
    bot = await bot_factory(reminder_interval=0.1)
    boris = bot.customer(402, "Борис")
    await boris.press(await book(boris, day="2", time_="11:00"), "✅ Подтвердить", "Вы записаны")
    booking = (await bot.store.upcoming_bookings(402, bot.clock.now()))[0]
    await bot.store.cancel_booking(booking.id, by="admin", note="болеем")
    bot.clock.set(T0 + timedelta(hours=26))
    await asyncio.sleep(0.5)
    assert await reminders_in(bot, 402) == []


async def test_a_reminder_that_fails_temporarily_is_retried(bot_factory):
    bot = await bot_factory(reminder_interval=0.1)
    vera = bot.customer(403, "Вера")
    await vera.press(await book(vera, day="2", time_="12:00"), "✅ Подтвердить", "Вы записаны")
    await bot.client.inject_fault(
        bot.token, "sendMessage", error_code=429, description="Too Many Requests: retry after 1",
        retry_after=1, chat_id=403, count=1,
    )  # fmt: skip
    bot.clock.set(T0 + timedelta(hours=3, seconds=1))
    await vera.wait("Напоминание")
    await asyncio.sleep(0.3)
    assert len(await reminders_in(bot, 403)) == 1
