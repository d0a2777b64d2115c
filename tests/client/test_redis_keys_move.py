"""Keys from before hash tags (`client_001:fsm:...`) move to `{client_001}:...` under a running
bot, and a customer half-way through a booking goes on from where they were."""

from __future__ import annotations

import pytest
from redis.exceptions import NoPermissionError

from database.redis_tenants import move_tenant_keys
from tests.client.conftest import fetch


async def test_a_booking_half_way_goes_on_after_the_keys_move(bot_factory, redis_admin):
    bot = await bot_factory()
    user, new = bot.settings.tenant_id, bot.settings.redis_key_prefix
    assert new == f"{{{user}}}:"
    anna = bot.customer(131)
    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    calendar = await anna.press(services, "Стрижка · 1\u00a0500 ₽", "Выберите день")
    slots = await anna.press(calendar, "2", "Выберите время")
    await anna.press(slots, "10:00", "Поделитесь номером телефона")  # the bot waits for a phone

    # What the previous version left: the same keys without the hash tag, its ACL user on the
    # old pattern only (as create_tenant_redis_user made it then).
    keys = sorted([k.decode() async for k in redis_admin.scan_iter(match=f"{new}*")])
    assert any(k.endswith(":state") for k in keys) and any(":throttle:" in k for k in keys)
    for key in keys:
        await redis_admin.rename(key, f"{user}:{key[len(new) :]}")
    await redis_admin.execute_command("ACL", "SETUSER", user, "resetkeys", f"~{user}:*")

    moved = await move_tenant_keys(redis_admin)
    assert moved[user] == len(keys)
    assert sorted([k.decode() async for k in redis_admin.scan_iter(match=f"{new}*")]) == keys
    assert [k async for k in redis_admin.scan_iter(match=f"{user}:*")] == []
    throttle = next(k for k in keys if ":throttle:" in k)
    assert 0 < await redis_admin.pttl(throttle) <= 10_000  # values and TTLs kept
    assert user not in await move_tenant_keys(redis_admin)  # done: nothing more to move
    assert (await redis_admin.acl_getuser(user))["keys"] == [f"~{new}*"]
    with pytest.raises(NoPermissionError):  # the old names are out of the tenant's reach now
        await bot.app.redis.get(f"{user}:fsm:x")

    # Anna types her phone: the bot still knows the service, the day and the time she chose.
    summary = await anna.ask("+7 900 123-45-67", "Проверьте запись")
    assert "Стрижка" in summary.plain_text and "ср, 2 дек., 10:00" in summary.plain_text
    await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    rows = await fetch(bot.tenant.dsn, "SELECT customer_id, phone FROM bookings")
    assert [(r["customer_id"], r["phone"]) for r in rows] == [(131, "+79001234567")]
