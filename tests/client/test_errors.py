"""An exception in a handler never leaves the customer in silence: they get a short "something
went wrong" in the business's language, and a pressed button is answered too."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from tests.client.conftest import fetch
from tests.client.test_booking import book

RU = "Что-то пошло не так"
EN = "Something went wrong"


async def rename(admin_dsn: str, tenant_id: str, table: str, to: str) -> None:
    """As the platform (the tenant's login role does not own its tables)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'ALTER TABLE "{tenant_id}"."{table}" RENAME TO "{to}"')
    finally:
        await conn.close()


async def test_a_failing_message_handler_answers_in_russian(bot_factory, pg_dsn, caplog):
    bot = await bot_factory()
    anna = bot.customer(301)
    await anna.ask("/start", "Добро пожаловать")
    # The database loses a table /start writes to (a real failure of a real query).
    await rename(pg_dsn, bot.tenant.tenant_id, "customers", "customers_gone")
    with caplog.at_level(logging.ERROR):
        reply = await anna.ask("/start", RU)
    assert "попробуйте ещё раз" in reply.plain_text
    assert any("UndefinedTableError" in r.getMessage() for r in caplog.records)
    await rename(pg_dsn, bot.tenant.tenant_id, "customers_gone", "customers")
    await anna.ask("/start", "Добро пожаловать")  # and the bot still works afterwards


async def test_a_failing_button_is_answered_and_the_customer_told(bot_factory, pg_dsn):
    bot = await bot_factory()
    anna = bot.customer(302)
    summary = await book(anna)
    await rename(pg_dsn, bot.tenant.tenant_id, "bookings", "bookings_gone")
    before = await anna.seen()
    query_id = await anna.click(summary, "✅ Подтвердить")
    answer = await bot.client.wait_for_callback_answer(bot.token, query_id)
    assert answer.text is not None and RU in answer.text
    told = await anna.wait(RU, after=before)
    assert "попробуйте ещё раз" in told.plain_text
    rows = await fetch(bot.tenant.dsn, "SELECT count(*) AS n FROM bookings_gone")
    assert rows[0]["n"] == 0


@pytest.mark.parametrize("locale", ["en"])
async def test_the_error_message_speaks_the_business_language(bot_factory, pg_dsn, locale):
    bot = await bot_factory()
    await bot.store.update_business(locale=locale)
    bot.app.ctx.refresh()
    anna = bot.customer(303)
    await anna.ask("/start", "Добро пожаловать")
    await rename(pg_dsn, bot.tenant.tenant_id, "customers", "customers_gone")
    reply = await anna.ask("/start", EN)
    assert "please try again" in reply.plain_text
