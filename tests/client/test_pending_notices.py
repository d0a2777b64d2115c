"""A notice to an owner who cannot get it yet is kept and delivered later, oldest first, once."""

from __future__ import annotations

import asyncio

from tests.client.conftest import ADMIN, Customer, fetch
from tests.client.test_booking import book


async def admin_notes(bot, contains: str) -> list[str]:
    return [
        m.plain_text
        for m in await bot.client.messages(bot.token, ADMIN)
        if contains in m.plain_text
    ]


async def test_an_owner_who_never_opened_the_bot_gets_the_booking_notice_on_start(bot_factory):
    bot = await bot_factory()  # the owner (ADMIN) has never written to the bot
    anna, boris = bot.customer(401, "Анна"), bot.customer(402, "Борис")
    for customer, time_ in ((anna, "10:00"), (boris, "11:00")):
        summary = await book(customer, time_=time_)
        await customer.press(summary, "✅ Подтвердить", "Вы записаны")
    calls = await bot.client.calls(bot.token, "sendMessage")
    tried = [c for c in calls if c.params.get("chat_id") == ADMIN]
    assert tried and all(not c.ok for c in tried)  # "chat not found": nothing delivered yet
    kept = await fetch(bot.tenant.dsn, "SELECT admin_id FROM admin_notices WHERE sent_at IS NULL")
    assert [r["admin_id"] for r in kept] == [ADMIN, ADMIN]

    owner = Customer(bot.client, bot.token, ADMIN, "Владелец")
    await owner.send("/start")
    await bot.client.wait_for_message(bot.token, ADMIN, contains="Новая запись", count=2)
    notes = await admin_notes(bot, "Новая запись")
    assert len(notes) == 2
    assert "Анна" in notes[0] and "Борис" in notes[1]  # oldest first

    await owner.send("/start")  # writing again does not repeat them
    await owner.wait("Добро пожаловать", after=await owner.seen() - 1)
    await asyncio.sleep(0.3)
    assert len(await admin_notes(bot, "Новая запись")) == 2
    left = await fetch(bot.tenant.dsn, "SELECT 1 FROM admin_notices WHERE sent_at IS NULL")
    assert left == []


async def test_a_notice_that_failed_on_a_bad_moment_is_retried_periodically(bot_factory):
    bot = await bot_factory(notice_retry_interval=0.2)
    await bot.admin()
    await bot.client.inject_fault(
        bot.token, "sendMessage", error_code=502, description="Bad Gateway", chat_id=ADMIN, count=3
    )
    anna = bot.customer(403)
    summary = await book(anna, time_="12:00")
    await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    await bot.client.wait_for_message(bot.token, ADMIN, contains="Новая запись", timeout=10)
    await asyncio.sleep(0.6)  # a few more retry passes: nothing is sent twice
    assert len(await admin_notes(bot, "Новая запись")) == 1
