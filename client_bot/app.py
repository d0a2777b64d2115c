"""Builds and runs tenants' bots: one process, one Dispatcher, any number of tenants.

`SharedDispatcher` is a process's one aiogram Dispatcher, its routers built once, serving the
bots of every tenant the process runs (aiogram's multibot shape): the tenant of an update is
resolved from the bot it came to, and its context, workers, FSM storage, throttling and error
reply are put in the update's data. `ClientBot.create(settings)` builds one tenant from its own
settings only (its bot token, PostgreSQL login role, Redis ACL user, locale, workers) and adds
it to a dispatcher: a dedicated bot (`python -m client_bot`) is a dispatcher with one tenant, a
hub (`client_bot.hub`) one with many.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    ErrorEvent,
    TelegramObject,
)
from aiogram.utils.i18n import gettext as _
from aiohttp import web
from redis.asyncio import Redis

from client_bot.assistant import build_assistant
from client_bot.clock import Clock, SystemClock
from client_bot.context import TenantContext
from client_bot.handlers import customer_routers, last_routers, onboarding, waitlist
from client_bot.handlers.waitlist import WaitlistWorker
from client_bot.i18n import TenantLocaleMiddleware, shared_i18n
from client_bot.notices import AdminNotices, AdminWroteMiddleware
from client_bot.scheduler import Job, Scheduler, WakingEvent
from client_bot.store import Store
from client_bot.webhook import WebhookServer
from client_bot.workers.broadcast import BroadcastWorker
from client_bot.workers.housekeeping import Housekeeping
from client_bot.workers.notices import NoticeRetry
from client_bot.workers.reminders import RETRY_SECONDS, ReminderWorker
from core.errors import ErrorReply
from core.metrics import serve_metrics
from core.redis import close_idle_connections, redis_client
from core.runtime import BotRuntime
from core.settings import ClientBotSettings
from core.telegram import BotTokenRefusedError, build_bot, wait_for_telegram
from database.pool import create_pool
from database.redis_tenants import BotStorages, fsm_storage
from middlewares.throttling import ThrottlingMiddleware, polite_refusal

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

POLLING_TIMEOUT = 10  # seconds a long poll waits (aiogram's start_polling default)


def went_wrong() -> str:
    """What a customer reads when a handler failed (core.errors.ErrorReply)."""
    return _("Something went wrong, please try again.")


def unavailable() -> str:
    """What a customer reads when the bot's database or Redis is unreachable for now."""
    return _("The bot is briefly unavailable. Please try again in a minute.")


async def _throttled(event: TelegramObject) -> None:
    await polite_refusal(event, _("Too many requests. Please wait a few seconds."))


class SharedDispatcher:
    """One Dispatcher for the bots of many tenants; the routers are built once, here.

    Per update, the tenant is the one whose `Bot` the update came to (`tenants`, by bot id, the
    very Bot object registered): its `ctx`, `broadcasts`, `assistant` and `waitlist` go into the
    data, its locale into the shared catalogs, its throttling (its Redis ACL user and prefix)
    and error reply run for it, and FSM state is read and written through `BotStorages` in its
    own RedisStorage. An update of a bot no tenant has is an error, never served by another.
    Each tenant handles one update at a time (`ClientBot.handling`), so a flooded tenant waits
    on itself and its neighbours run on.
    """

    def __init__(self) -> None:
        self.tenants: dict[int, ClientBot] = {}
        self._revocations: set[int] = set()  # sessions watched for a revoked token
        # The periodic work of every tenant (reminders, housekeeping, notices, waitlist).
        self.scheduler = Scheduler()
        self.storage = BotStorages()
        self.i18n = shared_i18n()
        from client_bot.handlers.admin import admin_routers  # the admin panel

        # The bot runtime all three bots share (core/runtime.py); per update, the gate puts the
        # tenant's data in, then its locale, its throttling and, on a failure, its error reply.
        self.runtime = BotRuntime(
            # The admin panel first: its routers see an admin's updates before the customer's.
            [*admin_routers(), *customer_routers(), *last_routers()],
            storage=self.storage,
            # One process takes a bot's updates (Telegram refuses a second poller), so an
            # in-process per-user lock is enough; RedisEventIsolation would add two round trips.
            events_isolation=SimpleEventIsolation(),
            gate=self._tenant,
            locale=TenantLocaleMiddleware(self.i18n),
            throttling=self._throttling,
            on_error=self._error,
        )
        dp = self.dp = self.runtime.dp
        # The process's /metrics (core/metrics.py): every update timed, waiting for its
        # tenant's turn included; errors by kind; Telegram's refusals of every bot's calls.
        self.metrics = self.runtime.metrics
        # An admin who writes (an owner's first /start included) gets the notices kept for them.
        dp.message.outer_middleware(self._admin_wrote)
        self.allowed_updates = self.runtime.allowed_updates
        for router in dp.chain_tail:
            if router is not dp and (router.startup.handlers or router.shutdown.handlers):
                raise TypeError(
                    f"router {router.name!r} has startup/shutdown hooks: a router serves every "
                    "tenant of the process, so a tenant's own work belongs to ClientBot"
                )

    def add(self, app: ClientBot) -> None:
        bot_id = app.bot.id
        other = self.tenants.get(bot_id)
        if other is not None:
            raise ValueError(
                f"bot {bot_id} of {app.settings.tenant_id} is already served for "
                f"{other.settings.tenant_id}"
            )
        self.storage.add(bot_id, app.storage)
        self.tenants[bot_id] = app
        self.runtime.watch(app.bot)
        if id(app.bot.session) not in self._revocations:  # once per session: a hub shares one
            self._revocations.add(id(app.bot.session))
            app.bot.session.middleware(_Revocations(self))

    def remove(self, app: ClientBot) -> None:
        if self.tenants.get(app.bot.id) is app:
            del self.tenants[app.bot.id]
            self.storage.remove(app.bot.id, app.storage)

    def find(self, bot: Bot) -> ClientBot | None:
        app = self.tenants.get(bot.id)
        return app if app is not None and app.bot is bot else None

    def of(self, bot: Bot) -> ClientBot:
        app = self.find(bot)
        if app is None:
            raise LookupError(f"an update for bot {bot.id}, which no tenant here has")
        return app

    async def _tenant(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        app = self.of(data["bot"])
        data.update(app.data)
        async with app.handling:
            return await handler(event, data)

    async def _throttling(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any]
    ) -> Any:
        return await self.of(data["bot"]).throttling(handler, event, data)

    async def _admin_wrote(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any]
    ) -> Any:
        return await self.of(data["bot"]).admin_wrote(handler, event, data)

    async def _error(self, event: ErrorEvent, bot: Bot, **data: Any) -> Any:
        app = self.find(bot)
        if app is None:
            return UNHANDLED
        return await app.errors.handle(event, bot=bot, **data)

    async def poll(self, app: ClientBot) -> None:
        """Long polling of one tenant's bot until cancelled: aiogram's own loop for one bot, the
        one `start_polling` runs for each of its bots (which it takes as a fixed set; tenants
        come and go here). Inline, not as tasks: an update is confirmed to Telegram (the next
        getUpdates' offset) only once it was handled, so a kill -9 loses no customer's action,
        and a tenant's updates are handled one after another."""
        await self.dp._polling(
            bot=app.bot,
            polling_timeout=POLLING_TIMEOUT,
            handle_as_tasks=False,
            allowed_updates=self.allowed_updates,
        )


class _Revocations(BaseRequestMiddleware):
    """Telegram answering 401 to any call of a running tenant's bot (getUpdates, a reply, a
    reminder) means its token was revoked or replaced at @BotFather: the tenant stops taking
    updates and its `run()` ends with BotTokenRefusedError, as a start with that token does (a
    hub marks it `token_refused` for the master; its neighbours run on). By webhook nothing else
    would tell: Telegram just stops delivering."""

    def __init__(self, dispatcher: SharedDispatcher) -> None:
        self.dispatcher = dispatcher

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramUnauthorizedError:
            app = self.dispatcher.find(bot)
            if app is not None:
                app.token_refused()
            raise


class ClientBot:
    """One tenant: its bot, pool, Redis client, context and workers, served by a dispatcher
    (its own one when none is given)."""

    def __init__(
        self,
        settings: ClientBotSettings,
        *,
        pool: asyncpg.Pool,
        redis: Redis,
        bot: Bot,
        clock: Clock,
        dispatcher: SharedDispatcher | None = None,
        reminder_interval: float = 900.0,  # longest sleep of the reminder worker
        broadcast_rate: float = 25.0,
        notice_retry_interval: float = 60.0,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.bot = bot
        tenant_id = settings.tenant_id
        self.i18n = shared_i18n()
        self.ctx = TenantContext(settings, Store(pool), clock, self.i18n)
        self.reminders = ReminderWorker(self.ctx, bot, interval=reminder_interval)
        self.housekeeping = Housekeeping(self.ctx, history_days=settings.assistant_history_days)
        self.broadcasts = BroadcastWorker(self.ctx, bot, rate=broadcast_rate)
        self.notice_retry = NoticeRetry(self.ctx, bot, interval=notice_retry_interval)
        self.waitlist = WaitlistWorker(self.ctx, bot)
        # None without OPENAI_API_KEY or when the plan lacks it: free text then gets the menu,
        # and the SDK is not loaded.
        self.assistant = (
            build_assistant(settings, self.ctx, redis, AdminNotices(self.ctx, bot))
            if settings.has_feature("ai_assistant")
            else None
        )
        # What the dispatcher runs for this tenant's updates.
        self.data: dict[str, Any] = {
            "ctx": self.ctx,
            "broadcasts": self.broadcasts,
            "assistant": self.assistant,
            "waitlist": self.waitlist,
        }
        self.storage = fsm_storage(redis, tenant_id, settings.redis_key_prefix)
        self.throttling = ThrottlingMiddleware(
            redis, settings.redis_key_prefix, on_throttled=_throttled
        )
        self.admin_wrote = AdminWroteMiddleware(self.ctx)
        self.errors = ErrorReply(
            went_wrong,
            name=f"tenant {tenant_id}",
            unavailable=unavailable,
            i18n=self.i18n,
            locale=self._error_locale,
        )
        self.handling = asyncio.Lock()  # one update at a time
        self.dispatcher = dispatcher or SharedDispatcher()
        self.dispatcher.add(self)
        self._jobs: list[Job] = []
        self._notices_job: Job | None = None  # started by the first reminder pass
        self._polling: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None  # stop() on a signal
        self._refused = False  # Telegram refused the token while running
        # Set while serving by webhook (WEBHOOK_BASE_URL): stop() ends it.
        self._webhook_stop: asyncio.Event | None = None

    @property
    def dp(self) -> Dispatcher:
        return self.dispatcher.dp

    @classmethod
    async def create(
        cls,
        settings: ClientBotSettings,
        *,
        clock: Clock | None = None,
        dispatcher: SharedDispatcher | None = None,
        **kwargs: float,
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
            settings,
            pool=pool,
            redis=redis,
            bot=bot,
            clock=clock or SystemClock(),
            dispatcher=dispatcher,
            **kwargs,
        )

    async def _error_locale(self, event: ErrorEvent, data: dict[str, Any]) -> str:
        try:
            return await self.ctx.locale()
        except Exception as exc:  # the same outage, most likely: the contract's language
            log.warning(
                "tenant %s: locale unknown (%s), using %s",
                self.settings.tenant_id,
                exc,
                self.settings.locale,
            )
            return self.settings.locale

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

    async def seed(self) -> None:
        """The contract's name, language and zone into the profile, unless the owner set them;
        an empty business is made bookable from BUSINESS_CATEGORY at its first start, and the
        owner is then sent (kept for them until delivered) what was set up, once."""
        s = self.settings
        before = await self.ctx.store.business()
        business = await self.ctx.store.seed_business(
            name=s.business_name,
            locale=s.locale,
            timezone=s.timezone,
            category=s.business_category,
        )
        if before.category is None and business.category:  # this start seeded it
            with self.i18n.context(), self.i18n.use_locale(business.locale):
                await onboarding.tell_owner(self.ctx)

    async def run(
        self, *, handle_signals: bool = True, webhooks: WebhookServer | None = None
    ) -> None:
        """Take updates and run the workers until stopped (waiting for Telegram first when it
        is unreachable: a bot started during an outage comes up when Telegram does).

        Updates come by long polling, or with WEBHOOK_BASE_URL set by webhook (the master sets
        the webhook): on `webhooks` when given (a hub's shared server), else on a server of
        its own on WEBHOOK_LISTEN."""
        await self.seed()
        await wait_for_telegram(self.bot, "BOT_TOKEN")
        await self.set_commands()
        await self.broadcasts.resume_all()
        self._schedule_work()
        try:
            if self._refused:  # refused by a call since the start: no updates taken
                pass
            elif self.settings.webhook_on:
                await self._serve_webhook(webhooks, handle_signals=handle_signals)
            else:
                await self._poll(handle_signals=handle_signals)
        finally:
            await self._stop_work()
        if self._refused:
            raise BotTokenRefusedError(
                f"Telegram refused BOT_TOKEN of {self.settings.tenant_id} while it ran (revoked "
                "or replaced): put a current token from @BotFather in the settings"
            )

    def token_refused(self) -> None:
        """Telegram refused the token (a 401 to one of the bot's calls): stop taking updates
        (the update being handled ends first); `run()` then raises BotTokenRefusedError."""
        if not self._refused:
            self._refused = True
            log.error(
                "tenant %s: Telegram refused the bot's token; stopping", self.settings.tenant_id
            )
            self._stopping = asyncio.get_running_loop().create_task(self.stop())

    def _schedule_work(self) -> None:
        """The tenant's periodic work, as jobs of the process's one scheduler. The workers'
        first passes one after another, not at once, so a starting tenant opens one PostgreSQL
        connection, not three: the admin-notice retry after the first reminder pass;
        housekeeping's first pass at a random moment of its first hour (a hub starting many
        tenants does not clean them all at once), the waitlist's a few seconds in."""
        scheduler = self.dispatcher.scheduler
        tid = self.settings.tenant_id
        housekeeping = self.housekeeping.interval
        notices = scheduler.add(
            f"tenant {tid}: admin notices retry",
            self._notices_pass,
            delay=None,
            retry=self.notice_retry.interval,
        )
        reminders = scheduler.add(
            f"tenant {tid}: reminder pass",
            self._reminder_pass,
            retry=min(RETRY_SECONDS, self.reminders.interval),
        )
        seats = scheduler.add(
            f"tenant {tid}: waitlist pass",
            self._waitlist_pass,
            delay=waitlist.FIRST_PASS_DELAY,
            retry=waitlist.POLL_SECONDS,
        )
        self._jobs = [
            reminders,
            notices,
            seats,
            scheduler.add(
                f"tenant {tid}: idle Redis connections closed",
                self._redis_idle_pass,
                delay=self.settings.redis_idle_seconds,
                retry=self.settings.redis_idle_seconds,
            ),
            scheduler.add(
                f"tenant {tid}: housekeeping pass",
                self._housekeeping_pass,
                delay=random.uniform(0, housekeeping),  # noqa: S311 - not a secret
                retry=housekeeping,
            ),
        ]
        # A booking written (or someone getting in line) wakes its job at once.
        self.ctx.reminders_changed = WakingEvent(lambda: scheduler.wake(reminders))
        self.ctx.notices_waiting = WakingEvent(lambda: scheduler.wake(notices))
        self.waitlist.wake = WakingEvent(lambda: scheduler.wake(seats))
        self._notices_job = notices

    async def _reminder_pass(self) -> float:
        """ReminderWorker's loop body: a pass, then sleep until the next reminder is due (at
        most its interval); a failed pass is retried after RETRY_SECONDS."""
        worker = self.reminders
        self.ctx.reminders_changed.clear()  # before reading: a booking during the pass wakes it
        try:
            delay = await worker.pass_and_delay()
        except Exception:
            log.exception("tenant %s: reminder pass failed", self.settings.tenant_id)
            delay = min(RETRY_SECONDS, worker.interval)
        worker.passes += 1
        if not worker.first_pass_done.is_set():
            worker.first_pass_done.set()
            if self._notices_job is not None:
                self.dispatcher.scheduler.wake(self._notices_job)
        return delay

    async def _redis_idle_pass(self) -> float:
        """Connections grow with activity: a tenant quiet for a while holds no Redis client."""
        idle = self.settings.redis_idle_seconds
        await close_idle_connections(self.redis, idle)
        return idle

    async def _notices_pass(self) -> float:
        return await self.notice_retry.pass_and_delay()

    async def _housekeeping_pass(self) -> float:
        await self.housekeeping.tick()
        return self.housekeeping.interval

    async def _waitlist_pass(self) -> float | None:
        """WaitlistWorker's loop body: passes every POLL_SECONDS while anyone waits or holds an
        offer, else none until someone gets in line."""
        worker = self.waitlist
        worker.wake.clear()
        try:
            await worker.tick()
            pending = await self.ctx.store.waitlist_pending()
        except Exception:  # a bad moment of PostgreSQL or Telegram: try again later
            log.exception("tenant %s: waitlist pass failed", self.settings.tenant_id)
            pending = True
        worker.passes += 1
        return waitlist.POLL_SECONDS if pending else None

    async def _poll(self, *, handle_signals: bool) -> None:
        task = self._polling = asyncio.create_task(
            self.dispatcher.poll(self), name=f"polling {self.settings.tenant_id}"
        )
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._signalled)
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # run() itself was cancelled (polling with it)
            # stop_updates(): polling ended on purpose
        finally:
            self._polling = None
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    def _signalled(self) -> None:
        self._stopping = asyncio.get_running_loop().create_task(self.stop())

    async def _serve_webhook(self, shared: WebhookServer | None, *, handle_signals: bool) -> None:
        assert self.settings.webhook_secret is not None  # settings require it with a base URL
        tenant_id = self.settings.tenant_id
        stop = self._webhook_stop = asyncio.Event()
        server = shared or WebhookServer(self.settings.webhook_listen, self.dispatcher.metrics)
        server.add(tenant_id, self.dp, self.bot, self.settings.webhook_secret.get_secret_value())
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        try:
            if shared is None:
                await server.start()
            await stop.wait()
        finally:
            server.remove(tenant_id)
            if shared is None:
                await server.close()  # in-flight updates are handled first
            else:
                async with self.handling:  # the update being handled is finished first
                    pass
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            self._webhook_stop = None

    async def stop_updates(self) -> None:
        """Stop taking updates: polling ends, or the webhook is no longer served (the update
        being handled is finished first). RuntimeError when not taking any yet."""
        if self._webhook_stop is not None:
            self._webhook_stop.set()
            return
        task = self._polling
        if task is None:
            raise RuntimeError("not taking updates")
        # Between two updates: the one being handled ends first, the next is not begun (it
        # was not confirmed to Telegram, so the tenant's next runtime gets it).
        async with self.handling:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        with suppress(RuntimeError):  # not taking updates
            await self.stop_updates()

    async def _stop_work(self) -> None:
        await self.dispatcher.scheduler.cancel(*self._jobs)
        tasks = list(self.broadcasts.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self._stop_work()
        self.dispatcher.remove(self)
        if self.assistant is not None:
            await self.assistant.model.close()
        await self.bot.session.close()
        await self.storage.close()
        await self.redis.aclose()
        await self.pool.close()


async def run_forever(
    settings: ClientBotSettings, on_ready: Callable[[], Awaitable[None]] | None = None
) -> None:
    app = await ClientBot.create(settings)
    metrics: web.AppRunner | None = None
    try:
        if settings.metrics_listen:  # an internal-only port (docs/prometheus)
            token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
            metrics = await serve_metrics(app.dispatcher.metrics, settings.metrics_listen, token)
        me = await app.bot.me()
        log.info("tenant %s: @%s is up", settings.tenant_id, me.username)
        if on_ready is not None:
            await on_ready()
        await app.run()
    finally:
        await app.close()
        if metrics is not None:
            await metrics.cleanup()
