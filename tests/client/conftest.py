"""A real client bot (aiogram, real HTTP) against the Telegram emulator, PostgreSQL and Redis.

`bot_factory` starts `ClientBot` for a fresh tenant (schema + role, Redis ACL user) with a
controllable clock; `Customer` acts as a Telegram user and reads what the bot sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from client_bot.app import ClientBot
from client_bot.clock import ManualClock
from client_bot.store import Service, Store
from core.settings import ClientBotSettings
from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from telegram_emulator import EmulatorClient, EmulatorServer, SentMessage

# Tuesday 1 December 2026, 09:00 in Moscow.
T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ADMIN = 7001


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[EmulatorServer, EmulatorClient]]:
    server = EmulatorServer()
    await server.start()
    client = EmulatorClient(server.base_url)
    yield server, client
    await client.close()
    await server.stop()


class Customer:
    """One Telegram user talking to one bot, as a person would: send, click, read."""

    def __init__(self, client: EmulatorClient, token: str, user_id: int, name: str) -> None:
        self.client, self.token, self.id, self.name = client, token, user_id, name

    async def send(self, text: str) -> None:
        await self.client.send_message(self.token, self.id, text, first_name=self.name)

    async def share_contact(self, phone: str) -> None:
        await self.client.send_contact(self.token, self.id, phone, first_name=self.name)

    async def seen(self) -> int:
        return len(await self.client.messages(self.token, self.id))

    async def wait(
        self, contains: str, *, after: int | None = None, timeout: float = 10
    ) -> SentMessage:
        """The next message (after the first `after` ones) whose text contains `contains`."""
        skip = after if after is not None else 0

        def match(m: SentMessage) -> bool:
            return contains in m.plain_text

        messages = await self.client.messages(self.token, self.id)
        for m in messages[skip:]:
            if match(m):
                return m
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            messages = await self.client.messages(self.token, self.id)
            for m in messages[skip:]:
                if match(m):
                    return m
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                seen = "\n---\n".join(m.plain_text for m in messages[-6:])
                raise AssertionError(f"no message containing {contains!r}; last ones:\n{seen}")
            await asyncio.sleep(0.05)

    async def click(self, message: SentMessage, text: str) -> str:
        return await self.client.click(self.token, self.id, message.message_id, text=text)

    async def ask(self, text: str, expect: str) -> SentMessage:
        before = await self.seen()
        await self.send(text)
        return await self.wait(expect, after=before)

    async def press(self, message: SentMessage, button: str, expect: str) -> SentMessage:
        before = await self.seen()
        await self.click(message, button)
        return await self.wait(expect, after=before)


@dataclass(frozen=True)
class TenantCreds:
    tenant_id: str
    dsn: str
    redis_url: str


@dataclass
class RunningBot:
    app: ClientBot
    task: asyncio.Task[None]
    settings: ClientBotSettings
    token: str
    clock: ManualClock
    store: Store
    client: EmulatorClient

    @property
    def tenant(self) -> TenantCreds:
        return TenantCreds(
            self.settings.tenant_id,
            self.settings.database_url.get_secret_value(),
            self.settings.redis_url.get_secret_value(),
        )

    async def admin(self, user_id: int = ADMIN) -> Customer:
        """The owner, who has opened the bot (Telegram delivers only to chats that exist)."""
        owner = Customer(self.client, self.token, user_id, "Владелец")
        await owner.ask("/start", "")
        return owner

    def customer(self, user_id: int, name: str = "Анна") -> Customer:
        return Customer(self.client, self.token, user_id, name)

    async def stop(self) -> None:
        await self.app.stop()
        await asyncio.wait_for(self.task, 10)
        await self.app.close()


async def seed_business(store: Store) -> list[Service]:
    """A small salon: Mon–Sat 10:00–19:00, lunch 13:00–14:00, two services."""
    await store.update_business(
        name="Салон «Ромашка»",
        welcome_text="Добро пожаловать в «Ромашку»!",
        address="Москва, ул. Ленина, 1",
        phone="+7 495 000-00-00",
        lead_time_min=60,
        cancel_cutoff_min=120,
        slot_step=30,
    )
    for weekday in range(6):
        await store.set_hours(weekday, [(time(10), time(19))])
        await store.set_breaks(weekday, [(time(13), time(14))])
    haircut = await store.add_service("Стрижка", Decimal("1500"), 60, "Мужская и женская")
    coloring = await store.add_service("Окрашивание", Decimal("4000"), 120)
    return [haircut, coloring]


@pytest.fixture
async def bot_factory(
    emulator: tuple[EmulatorServer, EmulatorClient], make_tenant: Any, redis_admin: Any,
    redis_url: str,
) -> AsyncIterator[Callable[..., Awaitable[RunningBot]]]:  # fmt: skip
    server, client = emulator
    running: list[RunningBot] = []
    tenants: list[str] = []
    counter = iter(range(1, 1000))

    async def start(
        *, tenant: Any = None, token: str | None = None, clock: ManualClock | None = None,
        seed: bool = True, admin_ids: tuple[int, ...] = (ADMIN,),
        settings: dict[str, Any] | None = None, **kwargs: Any,
    ) -> RunningBot:  # fmt: skip
        if tenant is None:
            db = await make_tenant()
            redis_user = await create_tenant_redis_user(
                redis_admin, db.tenant_id, server_url=redis_url
            )
            tenant = TenantCreds(db.tenant_id, db.dsn, redis_user.url)
            tenants.append(tenant.tenant_id)
        if token is None:
            token = f"{5000000 + next(counter)}:test-client-bot-token-{tenant.tenant_id}"
            await client.register_bot(token, f"salon{tenant.tenant_id[-4:]}_bot", "Salon")
        config = ClientBotSettings(
            tenant_id=tenant.tenant_id,
            bot_token=token,
            database_url=tenant.dsn,
            redis_url=tenant.redis_url,
            telegram_api_url=server.base_url,
            admin_ids=list(admin_ids),
            _env_file=None,
            **(settings or {}),
        )
        clock = clock or ManualClock(T0)
        app = await ClientBot.create(config, clock=clock, **kwargs)
        store = app.ctx.store
        if seed and not await store.services(include_hidden=True):
            await seed_business(store)
            app.ctx.refresh()
        task = asyncio.create_task(app.run(handle_signals=False))
        bot = RunningBot(app, task, config, token, clock, store, client)
        running.append(bot)
        await client.wait_for_calls(token, "getUpdates", timeout=10)
        return bot

    yield start
    for bot in running:
        if not bot.task.done():
            await bot.stop()
    for tenant_id in tenants:
        await remove_tenant_redis(redis_admin, tenant_id, drop_data=True)


async def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()
