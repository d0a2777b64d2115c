"""The sales bot on real PostgreSQL, Redis and HTTP: the Telegram emulator, the YooKassa fake
(reached by the real `yookassa` SDK) and a master — a small stand-in here, the real one in the
headline test.

Notifications come from 127.0.0.2 (trusted: YOOKASSA_TRUSTED_NETWORKS=127.0.0.2/32) or from
127.0.0.1 (anybody else).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from core.settings import SalesSettings
from sales_bot.app import SalesApp, Tuning
from sales_bot.billing import Draft
from sales_bot.master import MasterApi
from sales_bot.store import Order
from telegram_emulator import EmulatorClient, EmulatorServer, SentMessage
from tests.sales.master_stub import TOKEN as STUB_TOKEN
from tests.sales.master_stub import MasterStub
from tests.support import wait_until
from yookassa_emulator import YooKassaFake

TRUSTED = "127.0.0.2"
UNTRUSTED = "127.0.0.1"
SALES_TOKEN = "4242424242:sales-bot-token-" + "s" * 20
OWNER = 7101


def bot_token() -> str:
    return f"{6_000_000 + secrets.randbelow(3_000_000)}:client-token-{secrets.token_hex(10)}"


@pytest.fixture
async def tg() -> AsyncIterator[tuple[EmulatorServer, EmulatorClient]]:
    server = EmulatorServer()
    await server.start()
    client = EmulatorClient(server.base_url)
    await client.register_bot(SALES_TOKEN, "botfleet_sales_bot", "Botfleet")
    yield server, client
    await client.close()
    await server.stop()


@pytest.fixture
async def kassa() -> AsyncIterator[YooKassaFake]:
    fake = YooKassaFake()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def stub() -> AsyncIterator[MasterStub]:
    master = MasterStub()
    await master.start()
    yield master
    await master.stop()


@pytest.fixture
async def clean_sales(pg_dsn: str, redis_admin: Redis) -> AsyncIterator[None]:
    """No orders, subscriptions, dialog state or language choices left from an earlier test;
    no subscriptions left for later ones either (make stats counts them)."""

    async def truncate(tables: str) -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"TRUNCATE {tables}")
        finally:
            await conn.close()

    await truncate(
        "control.sales_notices, control.sales_outbox, control.sales_notifications,"
        " control.sales_orders, control.sales_subscriptions, control.renewal_alerts"
    )
    keys = [key async for key in redis_admin.scan_iter(match="sales:*")]
    if keys:
        await redis_admin.delete(*keys)
    yield
    await truncate("control.sales_subscriptions, control.renewal_alerts")


def make_settings(
    pg_dsn: str, redis_url: str, telegram_url: str, kassa: YooKassaFake, master_url: str,
    master_token: str, **overrides: Any,
) -> SalesSettings:  # fmt: skip
    values: dict[str, Any] = {
        "database_url": pg_dsn,
        "redis_url": redis_url,
        "telegram_api_url": telegram_url,
        "sales_bot_token": SALES_TOKEN,
        "master_api_url": master_url,
        "master_api_token": master_token,
        "master_api_timeout": 120,
        "yookassa_shop_id": kassa.shop_id,
        "yookassa_secret_key": kassa.secret_key,
        "yookassa_api_url": kassa.api_url,
        "yookassa_trusted_networks": f"{TRUSTED}/32",
        "yookassa_timeout": 10,
        "webhook_host": "127.0.0.1",
        "webhook_port": 1,  # replaced: tests bind port 0
        "sales_check_interval": 0.2,
        "sales_check_after": 0,
        "sales_slow_after": 3600,
        "sales_retry_max_delay": 0.2,
        "_env_file": None,
    }
    values.update(overrides)
    return SalesSettings(**values)


FAST = Tuning(relay_base_delay=0.02, relay_poll=0.05, relay_lease=1.0, notification_retry_after=0)


@dataclass
class Shop:
    """One running sales bot and the world around it."""

    app: SalesApp
    kassa: YooKassaFake
    tg: EmulatorClient
    webhook_url: str
    pg_dsn: str
    polling: asyncio.Task[None] | None = None
    tokens: list[str] = field(default_factory=list)

    async def order(
        self, *, user_id: int = OWNER, plan: str = "start", token: str | None = None
    ) -> Order:
        """A checked-out order (payment created in the fake), as the dialog would leave it."""
        token = token or bot_token()
        await self.tg.send_message(SALES_TOKEN, user_id, "/start")  # the owner opened the bot
        identity = await self.tg.register_bot(token, f"shop{secrets.token_hex(3)}_bot", "Shop")
        catalog_plan = self.app.catalog.get(plan)
        assert catalog_plan is not None
        order = await self.app.billing.open_new(
            Draft(
                user_id=user_id, locale="ru", plan=catalog_plan, email="owner@example.com",
                business_name="Салон «Ромашка»", category="beauty", timezone="Europe/Moscow",
                bot_id=int(identity["id"]), bot_username=str(identity["username"]), token=token,
            )
        )  # fmt: skip
        return await self.app.billing.checkout(order, description="test", item="test")

    async def notify(
        self, event: str, object_id: str, *, source: str = TRUSTED, **kwargs: Any
    ) -> int:
        return await self.kassa.notify(self.webhook_url, event, object_id, source=source, **kwargs)

    async def pay(self, order: Order) -> int:
        assert order.payment_id is not None
        self.kassa.succeed(order.payment_id)
        return await self.notify("payment.succeeded", order.payment_id)

    async def reload(self, order: Order) -> Order:
        fresh = await self.app.store.get(order.order_id)
        assert fresh is not None
        return fresh

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.pg_dsn)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    async def outbox_open(self, order_id: str) -> int:
        rows = await self.fetch(
            "SELECT 1 FROM control.sales_outbox WHERE order_id = $1 AND done_at IS NULL"
            " AND next_attempt_at < 'infinity'",
            order_id,
        )
        return len(rows)

    async def settle(self, order: Order, timeout: float = 15.0) -> None:
        """Let the background work finish: notifications processed, the outbox delivered."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            await self.app.billing.drain()
            await self.app.relay.run_once()
            if not await self.outbox_open(order.order_id) and not self.app.billing._tasks:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("outbox not delivered in time")
            await asyncio.sleep(0.03)

    async def wait(self, predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
        await wait_until(predicate, timeout)

    async def messages(self, user_id: int = OWNER) -> list[SentMessage]:
        return await self.tg.messages(SALES_TOKEN, user_id)


@pytest.fixture
async def make_shop(
    pg_dsn: str,
    redis_url: str,
    tg: tuple[EmulatorServer, EmulatorClient],
    kassa: YooKassaFake,
    stub: MasterStub,
    clean_sales: None,
) -> AsyncIterator[Callable[..., Awaitable[Shop]]]:
    server, client = tg
    shops: list[Shop] = []
    keys = Fernet.generate_key().decode()  # shared by every restart of the sales bot

    async def make(
        *, master: MasterApi | None = None, master_url: str | None = None,
        master_token: str = STUB_TOKEN, workers: bool = False, polling: bool = False,
        tuning: Tuning = FAST, **overrides: Any,
    ) -> Shop:  # fmt: skip
        settings = make_settings(
            pg_dsn, redis_url, server.base_url, kassa, master_url or stub.url, master_token,
            **{"encryption_keys": keys, **overrides},
        )  # fmt: skip
        app = await SalesApp.create(settings, master=master, tuning=tuning)
        port = await app.start_webhook(port=0)
        shop = Shop(app, kassa, client, f"http://127.0.0.1:{port}/yookassa/webhook", pg_dsn)
        shops.append(shop)
        if workers:
            app.start_workers()
        if polling:
            shop.polling = asyncio.create_task(
                app.dp.start_polling(
                    app.bot, handle_signals=False, close_bot_session=False,
                    allowed_updates=app.dp.resolve_used_update_types(),
                )
            )  # fmt: skip
            await client.wait_for_calls(SALES_TOKEN, "getUpdates", timeout=10)
        return shop

    yield make
    for shop in shops:
        if shop.polling is not None:
            await shop.app.stop()
            await asyncio.wait_for(shop.polling, 10)
        await shop.app.close()


@pytest.fixture
async def shop(make_shop: Callable[..., Awaitable[Shop]]) -> Shop:
    return await make_shop()
