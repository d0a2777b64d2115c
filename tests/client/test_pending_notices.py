"""A notice to an owner who cannot get it yet is kept and delivered later, oldest first, once."""

from __future__ import annotations

import asyncio

from client_bot.workers.notices import NoticeRetry
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


async def test_a_quiet_tenant_retries_less_often_and_a_kept_notice_brings_the_pace_back(
    bot_factory,
):
    """With nothing waiting the retry's pause doubles up to its maximum (a quiet tenant then
    opens a PostgreSQL connection for it every 15 minutes, not every minute); a notice kept for
    later brings it back to the interval, and wakes it at once."""
    bot = await bot_factory()
    assert (bot.app.notice_retry.interval, bot.app.notice_retry.max_interval) == (60.0, 900.0)
    retry = NoticeRetry(bot.app.ctx, bot.app.bot)  # the bot's own runs on its scheduler
    delays = [await retry.pass_and_delay() for _ in range(6)]
    assert delays == [120.0, 240.0, 480.0, 900.0, 900.0, 900.0]

    # Telegram refuses the new-booking notice to the owner for now: it is kept, and the retry
    # is woken and back at its interval.
    await bot.admin()
    await bot.client.inject_fault(
        bot.token, "sendMessage", error_code=502, description="Bad Gateway", chat_id=ADMIN, count=1
    )
    anna = bot.customer(405)
    await anna.press(await book(anna, time_="14:00"), "✅ Подтвердить", "Вы записаны")
    # Woken at once (its next pass was up to 15 minutes away): the retry delivers it.
    await bot.client.wait_for_message(bot.token, ADMIN, contains="Новая запись", timeout=10)
    left = await fetch(bot.tenant.dsn, "SELECT 1 FROM admin_notices WHERE sent_at IS NULL")
    assert left == []
