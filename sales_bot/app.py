"""Builds and runs the sales bot: Telegram polling, the webhook server, the relay, the check."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand, ErrorEvent
from aiohttp import web
from redis.asyncio import Redis

from core.errors import ErrorReply
from core.metrics import serve_metrics
from core.redis import redis_client
from core.runtime import BotRuntime
from core.secrets import SecretBox
from core.settings import SalesSettings
from core.telegram import build_bot, wait_for_telegram
from database.migrator import migrate_control
from database.pool import create_pool
from sales_bot.allowlist import SenderPolicy
from sales_bot.billing import Billing
from sales_bot.context import SalesContext
from sales_bot.handlers import routers
from sales_bot.i18n import UserLocaleMiddleware, build_i18n, unavailable, went_wrong
from sales_bot.kassa import PaymentGateway, YooKassa
from sales_bot.master import HttpMaster, MasterApi
from sales_bot.notices import Notices
from sales_bot.owner import BotNotifier
from sales_bot.plans import Catalog, load_plans
from sales_bot.relay import Relay
from sales_bot.renewals import Renewals
from sales_bot.store import SalesStore
from sales_bot.vault import Vault
from sales_bot.watch import Watcher
from sales_bot.webhook import build_webhook

log = logging.getLogger(__name__)

FSM_PREFIX = "sales:fsm"


@dataclass(slots=True)
class Tuning:
    """Timings tests shorten; production uses the defaults and the settings."""

    relay_base_delay: float = 1.0
    relay_poll: float = 2.0
    relay_lease: float = 180.0
    notification_retry_after: float = 30.0


def fsm_storage(redis: Redis) -> RedisStorage:
    return RedisStorage(
        redis,
        key_builder=DefaultKeyBuilder(prefix=FSM_PREFIX, with_bot_id=True, with_destiny=True),
    )


class SalesApp:
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
        tuning = tuning or Tuning()
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.bot = bot
        self.kassa = kassa
        self.master = master
        self.catalog = Catalog(load_plans(settings.sales_plans_file))
        self.store = SalesStore(pool, renewal_days_before=settings.renewal_days_before)
        self.vault = Vault(settings.encryption_keys.get_secret_value())
        self.i18n = build_i18n()
        self.notifier = BotNotifier(bot, self.i18n, self.catalog)
        self.billing = Billing(
            self.store,
            kassa,
            self.vault,
            refund_suspends=settings.sales_refund_suspends,
            renewal_retry_days=tuple(settings.renewal_retry_days),
            catalog=self.catalog,
        )
        self.notices = Notices(self.store, self.notifier, max_delay=settings.sales_retry_max_delay)
        self.relay = Relay(
            self.store,
            master,
            self.vault,
            self.notices,
            base_delay=tuning.relay_base_delay,
            max_delay=settings.sales_retry_max_delay,
            poll=tuning.relay_poll,
            lease=tuning.relay_lease,
        )
        self.billing.on_outbox = self.relay.wake
        self.renewals = Renewals(
            self.store,
            self.billing,
            kassa,
            self.vault,
            SecretBox(settings.encryption_keys.get_secret_value()),
            self.notices,
            self.catalog,
            master,
            interval=settings.renewal_interval,
        )
        self.relay.on_fulfilled = self.renewals.after_fulfilled
        self.relay.refund_late = self.billing.refund_late  # an upgrade paid too late
        self.watcher = Watcher(
            self.store,
            self.billing,
            self.notices,
            interval=settings.sales_check_interval,
            check_after=settings.sales_check_after,
            slow_after=settings.sales_slow_after,
            retry_notifications_after=tuning.notification_retry_after,
        )
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
