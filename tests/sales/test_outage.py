"""Telegram is down when the sales bot starts: payments are still taken and provisioned, the
owner's "your bot is live" waits for Telegram instead of being lost, and the bot comes up."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from cryptography.fernet import Fernet

from sales_bot.app import SalesApp
from sales_bot.billing import Draft
from sales_bot.orders import OrderStatus
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.sales.conftest import (
    FAST,
    OWNER,
    SALES_TOKEN,
    TRUSTED,
    Shop,
    bot_token,
    make_settings,
)
from tests.sales.master_stub import TOKEN as STUB_TOKEN
from tests.sales.master_stub import MasterStub
from tests.sales.people import Person
from tests.support import free_port, wait_until
from yookassa_emulator import YooKassaFake


async def test_a_payment_during_a_telegram_outage_provisions_and_the_owner_is_told_later(
    pg_dsn: str, redis_url: str, kassa: YooKassaFake, stub: MasterStub, clean_sales: None
) -> None:
    telegram_port = free_port()  # nothing listens here until Telegram "comes back"
    settings = make_settings(
        pg_dsn, redis_url, f"http://127.0.0.1:{telegram_port}", kassa, stub.url, STUB_TOKEN,
        encryption_keys=Fernet.generate_key().decode(), telegram_timeout=2,
    )  # fmt: skip
    app = await SalesApp.create(settings, tuning=FAST)
    running = asyncio.create_task(app.run(handle_signals=False, webhook_port=0))
    # Telegram as it was before the outage (the owner has a chat with the sales bot); it does
    # not listen until it "comes back" below.
    telegram = EmulatorServer()
    sales_bot = telegram.state.register_bot(SALES_TOKEN, "botfleet_sales_bot", "Botfleet")
    telegram.state.ensure_chat(sales_bot, telegram.state.upsert_user(OWNER, first_name="Owner"))
    try:

        async def webhook_up() -> bool:
            return app.webhook_port != 0

        await wait_until(webhook_up)
        base = f"http://127.0.0.1:{app.webhook_port}"
        async with aiohttp.ClientSession() as http, http.get(f"{base}/health") as resp:
            assert resp.status == 200
        assert not running.done()  # waiting for Telegram, not crashed

        # An order from before the outage is paid now.
        token = bot_token()
        stub.usernames[token] = "romashka_salon_bot"
        catalog_plan = app.catalog.get("start")
        assert catalog_plan is not None
        order = await app.billing.open_new(
            Draft(
                user_id=OWNER, locale="ru", plan=catalog_plan, email="owner@example.com",
                business_name="Ромашка", category="beauty", timezone="Europe/Moscow",
                bot_id=6_100_000, bot_username="romashka_salon_bot", token=token,
            )
        )  # fmt: skip
        order = await app.billing.checkout(order, description="test", item="test")
        assert order.payment_id is not None
        kassa.succeed(order.payment_id)
        webhook = f"{base}/yookassa/webhook"
        assert (
            await kassa.notify(webhook, "payment.succeeded", order.payment_id, source=TRUSTED)
            == 200
        )

        async def provisioned() -> bool:
            fresh = await app.store.get(order.order_id)
            return fresh is not None and fresh.fulfilled_at is not None

        await wait_until(provisioned)
        assert stub.provision_calls() == 1
        fresh = await app.store.get(order.order_id)
        assert fresh is not None and fresh.status is OrderStatus.PAID

        async def notice() -> dict[str, Any]:
            rows = await app.pool.fetch(
                "SELECT kind, attempts, sent_at, last_error FROM control.sales_notices"
                " WHERE order_id = $1",
                order.order_id,
            )
            return dict(rows[0]) if rows else {}

        async def retried() -> bool:
            return (await notice()).get("attempts", 0) >= 2

        await wait_until(retried)  # the message could not be sent yet, and is kept
        kept = await notice()
        assert kept["kind"] == "live" and kept["sent_at"] is None
        assert "TelegramNetworkError" in kept["last_error"]

        # Telegram is back: the bot starts polling and the owner gets the message, once.
        await telegram.start(port=telegram_port)
        async with EmulatorClient(telegram.base_url) as client:
            await client.wait_for_calls(SALES_TOKEN, "getUpdates", timeout=20)
            owner = Person(client, SALES_TOKEN, OWNER)
            live = await owner.wait("Ваш бот @romashka_salon_bot запущен", timeout=20)
            assert "/admin" in live.plain_text

            async def sent() -> bool:
                return (await notice()).get("sent_at") is not None

            await wait_until(sent)
            await app.relay.run_once()  # nothing due: the message is not sent twice
            messages = await client.messages(SALES_TOKEN, OWNER)
            assert sum("запущен" in m.plain_text for m in messages) == 1
            # And the bot answers.
            home = await owner.ask("/start", "Botfleet")
            assert "Тарифы от 990" in home.plain_text
    finally:
        await app.stop()
        _, waiting = await asyncio.wait({running}, timeout=10)
        for task in waiting:  # still waiting for Telegram: the test failed before it came back
            task.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await app.close()
        await telegram.stop()


async def test_an_owner_who_blocked_the_bot_is_not_retried_forever(shop: Shop, stub: MasterStub):
    order = await shop.order()
    await shop.tg.block(SALES_TOKEN, OWNER)
    assert await shop.pay(order) == 200
    await shop.settle(order)
    assert stub.provision_calls() == 1  # provisioned all the same
    [notice] = await shop.fetch(
        "SELECT kind, sent_at, gave_up_at, last_error FROM control.sales_notices"
        " WHERE order_id = $1",
        order.order_id,
    )
    assert notice["kind"] == "live" and notice["sent_at"] is None
    assert notice["gave_up_at"] is not None and "blocked" in notice["last_error"]
    assert await shop.app.relay.run_once() == 0  # nothing left to retry


async def test_slow_provisioning_is_told_honestly_then_followed_up(make_shop, stub: MasterStub):
    stub.fail_with = 503  # the master is up but cannot provision yet
    shop: Shop = await make_shop(workers=True, sales_slow_after=0.3)
    order = await shop.order(token=(token := bot_token()))
    stub.usernames[token] = "slow_salon_bot"
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    before = await owner.seen()
    assert await shop.pay(order) == 200
    await owner.wait("занимает чуть больше времени, чем обычно", after=before)
    stub.fail_with = None
    await owner.wait("Ваш бот @slow_salon_bot запущен", after=before)
    texts = [m.plain_text for m in (await shop.messages())[before:]]
    told = [
        "delay" if "чуть больше времени" in t else "live" for t in texts
        if "чуть больше времени" in t or "запущен" in t
    ]  # fmt: skip
    assert told == ["delay", "live"]  # each once: first the delay, then the follow-up
    kinds = await shop.fetch(
        "SELECT kind FROM control.sales_notices WHERE order_id = $1 AND sent_at IS NOT NULL"
        " ORDER BY id",
        order.order_id,
    )
    assert [r["kind"] for r in kinds] == ["setting_up", "live"]
