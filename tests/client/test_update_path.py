"""The customers' update path stays cheap (docs/profiling.md, bench/bench_updates.py): no thread
hop for a filter, one admin check per update, no Redis deletes for a /start without a dialog —
and a /start in the middle of a dialog still ends it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.client.test_booking import book


async def test_a_whole_booking_hops_to_no_thread_and_checks_admins_once_per_update(
    bot_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = await bot_factory()
    await bot.admin()
    hops: list[str] = []
    to_thread = asyncio.to_thread

    async def counted(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        hops.append(repr(func))
        return await to_thread(func, *args, **kwargs)

    # aiogram runs a synchronous filter or handler through asyncio.to_thread.
    monkeypatch.setattr(asyncio, "to_thread", counted)
    checks = Counter[int]()
    is_admin = bot.app.ctx.is_admin

    async def counted_is_admin(user_id: int) -> bool:
        checks[user_id] += 1
        return await is_admin(user_id)

    monkeypatch.setattr(bot.app.ctx, "is_admin", counted_is_admin)

    anna = bot.customer(301)
    menu = await anna.ask("/start", "Добро пожаловать")
    before = checks[301]
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    # A button: the admin routers' one parent filter, not one check per admin router.
    assert checks[301] - before == 1
    await anna.ask("/start", "Добро пожаловать")
    summary = await book(anna)
    done = await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    assert "Стрижка" in done.plain_text and services is not None
    assert hops == [], hops


async def test_start_deletes_nothing_without_a_dialog_and_ends_one_in_progress(
    bot_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = await bot_factory()
    await bot.admin()
    redis = bot.app.redis  # the FSM storage's client
    commands: list[str] = []
    execute = redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]).upper())
        return await execute(*args, **options)

    monkeypatch.setattr(redis, "execute_command", counted)
    anna = bot.customer(302)
    await anna.ask("/start", "Добро пожаловать")
    # The FSM read, no DEL of state and data: nothing was stored.
    assert "DEL" not in commands and "GET" in commands, commands

    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    button = next(b for row in services.buttons() for b in row if b.startswith("Стрижка"))
    calendar = await anna.press(services, button, "Выберите день")
    slots = await anna.press(calendar, "2", "Выберите время")
    await anna.press(slots, "10:00", "Поделитесь номером телефона")
    commands.clear()
    await anna.ask("/start", "Добро пожаловать")
    assert commands.count("DEL") == 2, commands  # the dialog's state and data
    # The phone is no answer to a question any more: no booking summary.
    after = await anna.seen()
    await anna.send("+7 900 123-45-67")
    reply = await anna.wait("", after=after)
    assert "Проверьте запись" not in reply.plain_text
