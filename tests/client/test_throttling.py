"""Flood protection: one user's burst is cut off politely; others are not affected."""

from __future__ import annotations

import asyncio


async def test_a_flood_from_one_user_is_throttled(bot_factory):
    bot = await bot_factory()
    flooder, other = bot.customer(801, "Флуд"), bot.customer(802, "Ольга")
    for i in range(30):
        await flooder.send(f"сообщение {i}")
    await flooder.wait("Слишком много запросов")
    await asyncio.sleep(0.5)
    messages = await bot.client.messages(bot.token, 801)
    pointers = [m for m in messages if "кнопки меню" in m.plain_text]
    warnings = [m for m in messages if "Слишком много запросов" in m.plain_text]
    assert len(pointers) == 20 and len(warnings) == 1  # limit 20 per 10 s, one warning
    # The counter lives under the tenant's prefix.
    assert await bot.app.redis.get(f"{{{bot.settings.tenant_id}}}:throttle:801") is not None
    # Another customer is served normally at the same time.
    assert "Добро пожаловать" in (await other.ask("/start", "Добро пожаловать")).plain_text
