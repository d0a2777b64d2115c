"""Builds and runs the sales bot: Telegram polling, the webhook server, the relay, the check."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand, ErrorEvent, TelegramObject
from aiohttp import web
from redis.asyncio import Redis

from core.errors import ErrorReply
from core.metrics import serve_metrics
from core.redis import redis_client
from core.runtime import BotRuntime
from core.settings import SalesSettings
from core.telegram import build_bot, wait_for_telegram
from database.migrator import migrate_control
from database.pool import create_pool
from database.redis_tenants import TenantRedisStorage
from middlewares.throttling import ThrottlingMiddleware, polite_refusal
from sales_bot import purchase
from sales_bot.allowlist import SenderPolicy
from sales_bot.context import SalesContext
from sales_bot.extension import internal_routes
from sales_bot.handlers import routers
from sales_bot.i18n import UserLocaleMiddleware, build_i18n, too_many, unavailable, went_wrong
from sales_bot.kassa import PaymentGateway, YooKassa
from sales_bot.master import HttpMaster, MasterApi
from sales_bot.services import SalesServices, Tuning, build_services
from sales_bot.webhook import build_webhook

log = logging.getLogger(__name__)

FSM_PREFIX = "sales:fsm"
THROTTLE_PREFIX = "sales:"  # sales:throttle:<user id>

__all__ = ["SalesApp", "SalesServices", "Tuning"]


def fsm_storage(redis: Redis) -> RedisStorage:
    # The RedisStorage that also closes a RedisCluster (REDIS_URL=redis+cluster://...).
    return TenantRedisStorage(
        redis,
        key_builder=DefaultKeyBuilder(prefix=FSM_PREFIX, with_bot_id=True, with_destiny=True),
    )


async def _throttled(event: TelegramObject) -> None:
    await polite_refusal(event, too_many())


class SalesApp:
    """The sales bot's process: the domain (`services.py`) with the bot runtime
    (core/runtime.py), the YooKassa webhook server, /metrics and the workers around it."""

    def __init__(
        self,
        settings: SalesSettings,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        bot: Bot,
        kassa: PaymentGateway,
        master: MasterApi,
        tuning: Tuning | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.bot = bot
        self.kassa = kassa
        self.master = master
        self.i18n = build_i18n()
        self.services = domain = build_services(
            settings,
            pool=pool,
            bot=bot,
            i18n=self.i18n,
            kassa=kassa,
            master=master,
            tuning=tuning or Tuning(),
        )
        self.catalog, self.store, self.vault = domain.catalog, domain.store, domain.vault
        self.notifier, self.billing, self.notices = domain.notifier, domain.billing, domain.notices
        self.relay, self.renewals, self.watcher = domain.relay, domain.renewals, domain.watcher
        self.policy = SenderPolicy(
            settings.yookassa_trusted_networks, settings.webhook_trusted_proxies
        )
        self.locales = UserLocaleMiddleware(self.i18n, redis)
        self.ctx = SalesContext(
            store=self.store,
            billing=self.billing,
            master=master,
            vault=self.vault,
            catalog=self.catalog,
            locales=self.locales,
            telegram_api_url=settings.telegram_api_url,
            telegram_timeout=min(settings.telegram_timeout, 15.0),
            support_contact=settings.sales_support_contact,
            own_bot_id=bot.id,
            renewal_days_before=settings.renewal_days_before,
        )
        # The bot runtime all three bots share (core/runtime.py).
        self.runtime = BotRuntime(
            routers(),
            storage=fsm_storage(redis),
            locale=self.locales,
            on_error=ErrorReply(
                went_wrong,
                name="sales bot",
                unavailable=unavailable,
                i18n=self.i18n,
                locale=self._error_locale,
            ).handle,
            # Anyone can write to the sales bot: a flood from one user is cut off politely.
            throttling=ThrottlingMiddleware(redis, THROTTLE_PREFIX, on_throttled=_throttled),
            ctx=self.ctx,
        )
        self.runtime.watch(bot)
        self.dp = self.runtime.dp
        self.metrics = self.runtime.metrics  # GET /metrics on METRICS_LISTEN (core/metrics.py)
        self._metrics_runner: web.AppRunner | None = None
        self._runner: web.AppRunner | None = None
        self.webhook_port = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._closed = False

    @classmethod
    async def create(
        cls,
        settings: SalesSettings,
        *,
        kassa: PaymentGateway | None = None,
        master: MasterApi | None = None,
        tuning: Tuning | None = None,
    ) -> SalesApp:
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            max_size=settings.database_pool_max,
            stateless=True,  # no session state is used: skip asyncpg's reset query per release
        )
        try:
            async with pool.acquire() as conn:
                await migrate_control(conn)
        except BaseException:
            await pool.close()
            raise
        redis = redis_client(settings.redis_url.get_secret_value())
        bot = build_bot(
            settings.sales_bot_token.get_secret_value(),
            settings.telegram_api_url,
            settings.telegram_timeout,
        )
        if kassa is None:
            secret = settings.yookassa_secret_key
            kassa = YooKassa(
                settings.yookassa_shop_id or "",
                secret.get_secret_value() if secret else "",
                api_url=settings.yookassa_api_url,
                vat_code=settings.yookassa_vat_code,
                return_url=settings.yookassa_return_url,
                timeout=settings.yookassa_timeout,
            )
        if master is None:
            master = HttpMaster(
                settings.master_api_url,
                settings.master_api_token.get_secret_value(),
                timeout=settings.master_api_timeout,
            )
        return cls(
            settings, pool=pool, redis=redis, bot=bot, kassa=kassa, master=master, tuning=tuning
        )

    async def _error_locale(self, event: ErrorEvent, data: dict[str, Any]) -> str:
        return await self.locales.get_locale(event, data)

    # ------------------------------------------------------------------ parts
    async def start_webhook(self, host: str | None = None, port: int | None = None) -> int:
        app = build_webhook(self.store, self.billing, self.policy)
        if self.settings.sales_internal_token is not None:  # the owner's web: Renew / pay
            token = self.settings.sales_internal_token.get_secret_value()
            app.add_routes(internal_routes(self.ctx, token))
            app.add_routes(purchase.routes(self.ctx, token))  # a new bot bought on the web
        app.middlewares.append(self.metrics.webhook_middleware())  # notifications by outcome
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            host or self.settings.webhook_host,
            self.settings.webhook_port if port is None else port,
            backlog=1024,  # a burst of notifications must not overflow the accept queue
        )
        await site.start()
        self.webhook_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("YooKassa webhook on port %d", self.webhook_port)
        return self.webhook_port

    async def start_metrics(self) -> None:
        """GET /metrics on METRICS_LISTEN (an internal-only port), when set."""
        s = self.settings
        if s.metrics_listen and self._metrics_runner is None:
            token = s.metrics_token.get_secret_value() if s.metrics_token else None
            self._metrics_runner = await serve_metrics(self.metrics, s.metrics_listen, token)

    def start_workers(
        self, *, relay: bool = True, watcher: bool = True, renewals: bool = True
    ) -> None:
        if relay:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="relay"))
        if watcher:
            self._tasks.append(asyncio.create_task(self.watcher.run(), name="watcher"))
        if renewals:
            self._tasks.append(asyncio.create_task(self.renewals.run(), name="renewals"))

    async def set_commands(self) -> None:
        for locale in ("ru", "en"):
            with self.i18n.context(), self.i18n.use_locale(locale):
                from aiogram.utils.i18n import gettext as _

                commands = [
                    BotCommand(command="start", description=_("About Botfleet and plans")),
                    BotCommand(command="subscription", description=_("My bots and renewal")),
                ]
            try:
                await self.bot.set_my_commands(
                    commands, language_code=None if locale == "ru" else locale
                )
            except TelegramAPIError as exc:
                log.info("commands not set: %s", exc)

    async def run(self, *, handle_signals: bool = True, webhook_port: int | None = None) -> None:
        """Everything until stopped: the webhook server, the workers and long polling.

        The webhook and the workers start first and keep taking payments and provisioning
        while Telegram is unreachable; polling starts once Telegram answers getMe."""
        await self.start_webhook(port=webhook_port)
        await self.start_metrics()
        self.start_workers()
        me = await wait_for_telegram(self.bot, "SALES_BOT_TOKEN")
        log.info("sales bot @%s is up", me.username)
        await self.set_commands()
        await self.runtime.poll(self.bot, handle_signals=handle_signals)

    async def stop(self) -> None:
        await self.runtime.stop()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.billing.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        if isinstance(self.master, HttpMaster):
            await self.master.close()
        await self.bot.session.close()
        await self.runtime.close()
        await self.redis.aclose()
        await self.pool.close()
