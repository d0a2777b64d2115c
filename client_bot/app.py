"""Builds and runs one tenant's bot from its settings.

`ClientBot.create(settings)` is a function of one tenant's settings only, so one process can
later host several tenants (dense mode) by creating several of them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    ErrorEvent,
    TelegramObject,
)
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis

from client_bot.assistant import build_assistant
from client_bot.clock import Clock, SystemClock
from client_bot.context import TenantContext
from client_bot.handlers import customer_routers, last_routers
from client_bot.i18n import TenantLocaleMiddleware, build_i18n
from client_bot.notices import AdminNotices, AdminWroteMiddleware
from client_bot.store import Store
from client_bot.webhook import WebhookServer
from client_bot.workers.broadcast import BroadcastWorker
from client_bot.workers.housekeeping import Housekeeping
from client_bot.workers.notices import NoticeRetry
from client_bot.workers.reminders import ReminderWorker
from core.errors import ErrorReply
from core.redis import redis_client
from core.settings import ClientBotSettings
from core.telegram import build_bot, wait_for_telegram
from database.pool import create_pool
from database.redis_tenants import fsm_storage
from middlewares.throttling import ThrottlingMiddleware, polite_refusal

log = logging.getLogger(__name__)

# Admin routers register here when the admin panel is importable (kept optional for tests of
# the customer side alone).
ExtraRouters = Callable[[], list]  # type: ignore[type-arg]


def went_wrong() -> str:
    """What a customer reads when a handler failed (core.errors.ErrorReply)."""
    return _("Something went wrong, please try again.")


def unavailable() -> str:
    """What a customer reads when the bot's database or Redis is unreachable for now."""
    return _("The bot is briefly unavailable. Please try again in a minute.")


class ClientBot:
    def __init__(
        self,
        settings: ClientBotSettings,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        bot: Bot,
        clock: Clock,
        reminder_interval: float = 900.0,  # longest sleep of the reminder worker
        broadcast_rate: float = 25.0,
        notice_retry_interval: float = 60.0,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.bot = bot
        self.i18n = build_i18n(settings.locale)
        self.ctx = TenantContext(settings, Store(pool), clock, self.i18n)
        self.reminders = ReminderWorker(self.ctx, bot, interval=reminder_interval)
        self.housekeeping = Housekeeping(self.ctx, history_days=settings.assistant_history_days)
        self.broadcasts = BroadcastWorker(self.ctx, bot, rate=broadcast_rate)
        self.notice_retry = NoticeRetry(self.ctx, bot, interval=notice_retry_interval)
        # None without OPENAI_API_KEY or when the plan lacks it: free text then gets the menu,
        # and the SDK is not loaded.
        self.assistant = (
            build_assistant(settings, self.ctx, redis, AdminNotices(self.ctx, bot))
            if settings.has_feature("ai_assistant")
            else None
        )
        self.dp = self._dispatcher()
        self._tasks: list[asyncio.Task[None]] = []
        # Set while serving by webhook (WEBHOOK_BASE_URL): stop() ends it.
        self._webhook_stop: asyncio.Event | None = None

    @classmethod
    async def create(
        cls, settings: ClientBotSettings, *, clock: Clock | None = None, **kwargs: float
    ) -> ClientBot:
        # No connection kept while idle: opened on demand, closed after DATABASE_IDLE_SECONDS
        # unused (PostgreSQL's max_connections would otherwise cap the tenants per server).
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=0,
            max_size=5,
            stateless=True,
            idle_seconds=settings.database_idle_seconds,
        )
        redis = redis_client(settings.redis_url.get_secret_value())
        bot = build_bot(
            settings.bot_token.get_secret_value(),
            settings.telegram_api_url,
            settings.telegram_timeout,
        )
        return cls(
            settings, pool=pool, redis=redis, bot=bot, clock=clock or SystemClock(), **kwargs
        )

    def _dispatcher(self) -> Dispatcher:
        tenant_id = self.settings.tenant_id
        dp = Dispatcher(
            storage=fsm_storage(self.redis, tenant_id, self.settings.redis_key_prefix),
            # One process polls a bot token (Telegram refuses a second poller), so an in-process
            # per-user lock is enough; RedisEventIsolation would add two round trips per update.
            events_isolation=SimpleEventIsolation(),
            ctx=self.ctx,
            broadcasts=self.broadcasts,
            assistant=self.assistant,
        )
        # Not in front of the error handler: it resolves the locale itself, with a fallback.
        TenantLocaleMiddleware(self.i18n, self.ctx.locale).setup(dp, exclude={"error"})
        ErrorReply(
            went_wrong,
            name=f"tenant {tenant_id}",
            unavailable=unavailable,
            i18n=self.i18n,
            locale=self._error_locale,
        ).register(dp)
        throttling = ThrottlingMiddleware(
            self.redis, self.settings.redis_key_prefix, on_throttled=self._throttled
        )
        from client_bot.handlers.admin import admin_routers  # the admin panel

        dp.include_routers(
            *admin_routers(),
            *customer_routers(),
            *last_routers(assistant_on=self.assistant is not None),
        )
        # Inner middleware (inherited by every included router), so it sees handler flags.
        dp.message.middleware(throttling)
        dp.callback_query.middleware(throttling)
        # An admin who writes (an owner's first /start included) gets the notices kept for them.
        dp.message.outer_middleware(AdminWroteMiddleware(self.ctx))
        return dp

    async def _error_locale(self, event: ErrorEvent, data: dict[str, Any]) -> str:
        return await self.ctx.locale()

    async def _throttled(self, event: TelegramObject) -> None:
        await polite_refusal(event, _("Too many requests. Please wait a few seconds."))

    async def set_commands(self) -> None:
        with self.i18n.context(), self.i18n.use_locale(await self.ctx.locale()):
            customer = [BotCommand(command="start", description=_("Main menu"))]
            admin = [*customer, BotCommand(command="admin", description=_("Admin panel"))]
        try:
            await self.bot.set_my_commands(customer, scope=BotCommandScopeDefault())
            for admin_id in await self.ctx.admin_ids():
                await self.bot.set_my_commands(admin, scope=BotCommandScopeChat(chat_id=admin_id))
        except TelegramAPIError as exc:  # an admin who never opened the bot, etc.
            log.info("commands not fully set: %s", exc)

    async def run(
        self, *, handle_signals: bool = True, webhooks: WebhookServer | None = None
    ) -> None:
        """Take updates and run the workers until stopped (waiting for Telegram first when it
        is unreachable: a bot started during an outage comes up when Telegram does).

        Updates come by long polling, or with WEBHOOK_BASE_URL set by webhook (the master sets
        the webhook): on `webhooks` when given (a hub's shared server), else on a server of
        its own on WEBHOOK_LISTEN."""
        s = self.settings  # the contract's name, language, zone, unless the owner set them
        await self.ctx.store.seed_business(
            name=s.business_name, locale=s.locale, timezone=s.timezone
        )
        await wait_for_telegram(self.bot, "BOT_TOKEN")
        await self.set_commands()
        await self.broadcasts.resume_all()
        # The workers' first passes one after another, not at once, so a starting tenant opens
        # one PostgreSQL connection, not three (a hub starting many tenants would hit
        # max_connections). Housekeeping's first pass comes later anyway.
        self._tasks = [
            asyncio.create_task(self.reminders.run(), name="reminders"),
            asyncio.create_task(self.housekeeping.run(), name="housekeeping"),
            asyncio.create_task(
                self._after(self.reminders.first_pass_done, self.notice_retry.run),
                name="admin notices",
            ),
        ]
        try:
            if self.settings.webhook_on:
                await self._serve_webhook(webhooks, handle_signals=handle_signals)
                return
            await self.dp.start_polling(
                self.bot,
                handle_signals=handle_signals,
                close_bot_session=False,
                allowed_updates=self.dp.resolve_used_update_types(),
                # An update is confirmed to Telegram (the next getUpdates' offset) only once it
                # was handled: as tasks, aiogram confirms it as soon as its task is created, and
                # a kill -9 then loses the customer's action. The price: one tenant's updates
                # are handled one after another.
                handle_as_tasks=False,
            )
        finally:
            await self._stop_tasks()

    async def _serve_webhook(self, shared: WebhookServer | None, *, handle_signals: bool) -> None:
        assert self.settings.webhook_secret is not None  # settings require it with a base URL
        tenant_id = self.settings.tenant_id
        stop = self._webhook_stop = asyncio.Event()
        server = shared or WebhookServer(self.settings.webhook_listen)
        server.add(tenant_id, self.dp, self.bot, self.settings.webhook_secret.get_secret_value())
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        workflow = {"dispatcher": self.dp, "bots": [self.bot], "bot": self.bot}
        try:
            await self.dp.emit_startup(**self.dp.workflow_data, **workflow)
            if shared is None:
                await server.start()
            await stop.wait()
        finally:
            server.remove(tenant_id)
            if shared is None:
                await server.close()  # in-flight updates are handled first
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self.dp.emit_shutdown(**self.dp.workflow_data, **workflow)
            self._webhook_stop = None

    async def stop_updates(self) -> None:
        """Stop taking updates: polling ends, or the webhook is no longer served (in-flight
        updates are handled first). RuntimeError when not taking any yet."""
        if self._webhook_stop is not None:
            self._webhook_stop.set()
            return
        await self.dp.stop_polling()

    @staticmethod
    async def _after(event: asyncio.Event, work: Callable[[], Awaitable[None]]) -> None:
        await event.wait()
        await work()

    async def stop(self) -> None:
        with suppress(RuntimeError):  # not polling
            await self.stop_updates()

    async def _stop_tasks(self) -> None:
        tasks = [*self._tasks, *self.broadcasts.tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self._stop_tasks()
        if self.assistant is not None:
            await self.assistant.model.close()
        await self.bot.session.close()
        await self.dp.storage.close()
        await self.redis.aclose()
        await self.pool.close()


async def run_forever(
    settings: ClientBotSettings, on_ready: Callable[[], Awaitable[None]] | None = None
) -> None:
    app = await ClientBot.create(settings)
    try:
        me = await app.bot.me()
        log.info("tenant %s: @%s is up", settings.tenant_id, me.username)
        if on_ready is not None:
            await on_ready()
        await app.run()
    finally:
        await app.close()
