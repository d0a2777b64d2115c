"""Two tenants' bots in one process, served by one Dispatcher (the hub's shape): each sees only its
own data, speaks its own language, and keeps its dialog state in its own Redis, under its own
ACL user and prefix."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Chat, Message, Update, User
from redis.exceptions import NoPermissionError

from client_bot.app import SharedDispatcher
from database.redis_tenants import key_prefix
from tests.client.conftest import T0, fetch


async def test_two_tenants_in_one_process(bot_factory):
    shared = SharedDispatcher()
    first = await bot_factory(dispatcher=shared)
    second = await bot_factory(dispatcher=shared)
    assert first.app.dp is second.app.dp  # the routers are built once
    await second.store.update_business(name="Barbershop", welcome_text="", locale="en")
    second.app.ctx.refresh()

    anna = first.customer(601, "Анна")
    boris = second.customer(601, "Boris")  # the same Telegram user in both bots
    assert "Ромашка" in (await anna.ask("/start", "Добро пожаловать")).plain_text
    assert "Barbershop" in (await boris.ask("/start", "Here you can see our services")).plain_text
    assert "Ромашка" in (await anna.ask("/start", "Добро пожаловать")).plain_text  # still ru

    assert [
        r["first_name"] for r in await fetch(first.tenant.dsn, "SELECT first_name FROM customers")
    ] == ["Анна"]
    assert [
        r["first_name"] for r in await fetch(second.tenant.dsn, "SELECT first_name FROM customers")
    ] == ["Boris"]


async def test_one_dispatcher_keeps_each_tenants_state_apart(bot_factory, redis_admin):
    """FSM state goes to the storage of the bot the key names, on that tenant's own Redis user;
    a bot no tenant has is refused, never served with a neighbour's context or storage."""
    shared = SharedDispatcher()
    first = await bot_factory(dispatcher=shared)
    second = await bot_factory(dispatcher=shared)
    user = 602
    a_key = StorageKey(bot_id=first.app.bot.id, chat_id=user, user_id=user)
    b_key = StorageKey(bot_id=second.app.bot.id, chat_id=user, user_id=user)
    await shared.storage.set_state(a_key, "booking:confirm")
    assert await shared.storage.get_state(a_key) == "booking:confirm"
    assert await shared.storage.get_state(b_key) is None  # the same user in B's bot: nothing
    a_prefix, b_prefix = key_prefix(first.tenant.tenant_id), key_prefix(second.tenant.tenant_id)
    a_keys = await redis_admin.keys(f"{a_prefix}fsm:*:{user}:*")
    assert a_keys
    assert not await redis_admin.keys(f"{b_prefix}fsm:*")
    # B's storage names every key under B's prefix, whatever bot the key says, and runs on B's
    # own ACL user, which may not even read A's key.
    assert await shared.storage.by_bot[b_key.bot_id].get_state(a_key) is None
    with pytest.raises(NoPermissionError):
        await second.app.redis.get(a_keys[0])
    with pytest.raises(LookupError):
        await shared.storage.get_state(StorageKey(bot_id=42, chat_id=user, user_id=user))

    # An update through a Bot object no tenant registered (here: A's token, another object) is
    # refused before any handler runs, and nobody answers it.
    forged = Bot(token=first.token, session=first.app.bot.session)
    when = T0.replace(tzinfo=None)
    update = Update(
        update_id=1,
        message=Message(
            message_id=1,
            date=when,
            chat=Chat(id=user, type="private"),
            from_user=User(id=user, is_bot=False, first_name="Мэллори"),
            text="/start",
        ),
    )
    with pytest.raises(LookupError):
        await shared.dp.feed_update(forged, update)
    assert await first.customer(user).seen() == 0
