"""`python -m client_bot.hub`: many tenants' bots in one process (the `shared` placement).

aiogram is imported once and its routers built once: one `SharedDispatcher` serves every
tenant's bot, resolving the tenant of each update from the bot it came to. Each tenant is still
a `ClientBot` built from its own settings only: its own bot token, its own PostgreSQL login role,
its own Redis ACL user (its FSM storage and throttling on it), locale and workers.
The hub itself holds no platform-wide credential: its environment names only its folder.

How a hub learns its tenants: the master writes one env file per tenant, only that tenant's
contract (mode 0600), into `HUB_DIR/tenants/<tenant_id>.env`. The hub polls the folder's mtimes
every HUB_SCAN_INTERVAL seconds: a new file starts the tenant, a changed one restarts it, a gone
one stops it (polling, workers, pool, Redis and FSM storage closed). It writes what it runs to
`HUB_DIR/status.json` (states only, no secrets), which the master reads: a tenant is in it from
the moment its file is seen until its runtime has stopped, so "gone from status.json" means
"nothing of it polls Telegram any more".

Neighbours are isolated in behaviour: each tenant handles its updates one at a time (each bot is
polled inline, so nothing is confirmed to Telegram before it was handled; webhooks wait on the
tenant's own lock),
so a flooded bot fetches no more until it is through and cannot crowd out the others; a
handler's exception is answered by that tenant's ErrorReply; a tenant whose token Telegram
refuses is marked `token_refused` while the others run on.

Shared where it is safe: the Dispatcher and its routers, one aiohttp session (one SSL context,
one connector sized above the number of long polls) per Telegram endpoint for every bot, one
set of i18n catalogs, and the objects alive after start-up are frozen out of the garbage
collector's scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from dotenv import dotenv_values
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from client_bot.app import ClientBot, SharedDispatcher
from client_bot.clock import Clock, SystemClock
from client_bot.webhook import WebhookServer
from core.logs import RedactingFilter, exit_flushed, redact, setup_logging
from core.metrics import serve_metrics
from core.redis import redis_client
from core.retry import backoff
from core.settings import (
    ClientBotSettings,
    LoggingSettings,
    MetricsSettings,
    describe_errors,
    load_settings,
)
from core.telegram import BotTokenRefusedError, TelegramSession, wait_for_telegram
from core.tenant_id import TENANT_ID_RE
from database.pool import create_pool

log = logging.getLogger(__name__)

TENANTS = "tenants"  # HUB_DIR/tenants/<tenant_id>.env
STATUS = "status.json"


class HubSettings(LoggingSettings, MetricsSettings):
    """The hub's own environment: where its tenants are, and how it treats them."""

    hub_dir: str = Field(description="the hub's folder; tenants' env files in its tenants/")
    hub_scan_interval: float = Field(3.0, gt=0, le=300)
    hub_capacity: int = Field(200, ge=1, le=10_000, description="sizes the shared HTTP pool")
    hub_webhook_listen: str = Field(
        "", description="host:port serving every tenant's webhook (POST /tg/<tenant_id>)"
    )


class TenantState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    TOKEN_REFUSED = "token_refused"  # noqa: S105 - a state, not a password
    FAILED = "failed"  # bad file, or the runtime failed: retried with backoff


class _TenantFile(ClientBotSettings):
    """A tenant's settings from its file only: never the hub process's environment or .env."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def read_tenant_file(path: Path) -> ClientBotSettings:
    """The settings in one tenant's env file; ValueError with a readable reason (no values)."""
    values = {
        k.lower(): v for k, v in dotenv_values(path, interpolate=False).items() if v is not None
    }
    try:
        settings = _TenantFile.model_validate(values)
    except ValidationError as exc:
        raise ValueError(describe_errors(ClientBotSettings, exc)) from None
    if settings.tenant_id != path.stem:
        raise ValueError(f"{path.name}: TENANT_ID is {settings.tenant_id!r}, not its file name")
    return settings


class SharedSession(TelegramSession):
    """One aiohttp session for many bots (with core.telegram's cheaper keyboards and kept
    response models): a bot closing "its" session leaves it open."""

    async def close(self) -> None:
        return None

    async def close_shared(self) -> None:
        await super().close()


@dataclass
class HubTenant:
    tenant_id: str
    mtime_ns: int
    settings: ClientBotSettings | None = None
    state: TenantState = TenantState.STARTING
    detail: str = ""
    username: str = ""
    app: ClientBot | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Hub:
    """Runs the tenants whose env files are in `folder/tenants`, adding and removing them as the
    files come and go (`scan`), while the others run on."""

    def __init__(
        self,
        folder: Path | str,
        *,
        capacity: int = 200,
        clock: Clock | None = None,
        redaction: RedactingFilter | None = None,
        retry_max_delay: float = 60.0,
        starting: int = 8,
        webhook_listen: str = "",
        **app_kwargs: float,
    ) -> None:
        self.folder = Path(folder)
        self.capacity = capacity
        self.clock = clock or SystemClock()
        self.redaction = redaction
        self.retry_max_delay = retry_max_delay
        self.app_kwargs = app_kwargs
        self.tenants: dict[str, HubTenant] = {}
        self.dispatcher = SharedDispatcher()  # one for all: the routers are built once
        self._sessions: dict[tuple[str, float], SharedSession] = {}
        self._scan_lock = asyncio.Lock()
        # Tenants connect to PostgreSQL a few at a time: a hub starting 200 at once would open
        # 200 connections (SCRAM and fork each) in the same second.
        self._starting = asyncio.Semaphore(starting)
        # Tenants with WEBHOOK_BASE_URL are served here, one port for all, routed by path.
        self.webhooks = (
            WebhookServer(webhook_listen, self.dispatcher.metrics) if webhook_listen else None
        )

    # ------------------------------------------------------------------ the folder
    def _files(self) -> dict[str, tuple[Path, int]]:
        found: dict[str, tuple[Path, int]] = {}
        with contextlib.suppress(FileNotFoundError):
            for path in (self.folder / TENANTS).iterdir():
                if path.suffix == ".env" and TENANT_ID_RE.match(path.stem):
                    with contextlib.suppress(FileNotFoundError):
                        found[path.stem] = (path, path.stat().st_mtime_ns)
        return found

    async def scan(self) -> None:
        """Make the running tenants match the files: start new, restart changed, stop gone."""
        async with self._scan_lock:
            files = await asyncio.to_thread(self._files)
            gone = [
                tid
                for tid, tenant in self.tenants.items()
                if tid not in files or files[tid][1] != tenant.mtime_ns
            ]
            await asyncio.gather(*(self._remove(tid) for tid in gone))
            added = [tid for tid in files if tid not in self.tenants]
            for tid in added:
                self._add(tid, *files[tid])
            self.write_status()
        if added:
            # Start-up's objects (routers, catalogs, sessions) out of every later collection.
            gc.freeze()

    def write_status(self) -> None:
        status = {
            tid: {"state": t.state.value, "detail": t.detail, "username": t.username}
            for tid, t in sorted(self.tenants.items())
        }
        path = self.folder / STATUS
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "tenants": status}, indent=1))
        os.replace(tmp, path)

    def _mark(self, tenant: HubTenant, state: TenantState, detail: str = "") -> None:
        tenant.state, tenant.detail = state, redact(detail)[:300]
        if self.tenants.get(tenant.tenant_id) is tenant:
            self.write_status()

    # ------------------------------------------------------------------ one tenant
    def _add(self, tenant_id: str, path: Path, mtime_ns: int) -> None:
        tenant = HubTenant(tenant_id, mtime_ns)
        self.tenants[tenant_id] = tenant
        try:
            tenant.settings = read_tenant_file(path)
        except (OSError, ValueError) as exc:
            self._mark(tenant, TenantState.FAILED, str(exc))
            log.error("hub: tenant %s not started: %s", tenant_id, redact(str(exc)))
            return
        self._hide_secrets(tenant.settings)
        tenant.task = asyncio.create_task(self._serve(tenant), name=f"tenant {tenant_id}")

    def _hide_secrets(self, s: ClientBotSettings) -> None:
        """Every secret of the tenant's settings (token, DSN and Redis passwords, webhook
        secret, OpenAI key, metrics token, any added later) redacted from the hub's logs."""
        if self.redaction is not None:
            self.redaction.add_settings(s)

    def session(self, api_url: str, timeout: float) -> SharedSession:
        key = (api_url, timeout)
        session = self._sessions.get(key)
        if session is None:
            # Every bot holds one long poll open, plus a few calls of its own in flight.
            session = SharedSession(
                api=TelegramAPIServer.from_base(api_url.rstrip("/")),
                timeout=timeout,
                limit=self.capacity * 2 + 50,
            )
            self._sessions[key] = session
        return session

    async def _build(self, s: ClientBotSettings) -> ClientBot:
        # As ClientBot.create, with the hub's shared HTTP session and catalogs.
        pool = await create_pool(
            s.database_url.get_secret_value(),
            min_size=0,
            max_size=5,
            stateless=True,
            idle_seconds=s.database_idle_seconds,
        )
        redis = redis_client(s.redis_url.get_secret_value())  # a RedisCluster for redis+cluster://
        bot = Bot(
            token=s.bot_token.get_secret_value(),
            session=self.session(s.telegram_api_url, s.telegram_timeout),
            default=DefaultBotProperties(parse_mode=ParseMode.HTML),
        )
        try:
            return ClientBot(
                s,
                pool=pool,
                redis=redis,
                bot=bot,
                clock=self.clock,
                dispatcher=self.dispatcher,
                **self.app_kwargs,
            )
        except BaseException:  # e.g. its bot already served for another tenant file
            await redis.aclose()
            await pool.close()
            raise

    async def _serve(self, tenant: HubTenant) -> None:
        """Run one tenant until removed; a failure is retried with backoff, a refused token
        waits for a new file."""
        assert tenant.settings is not None
        failures = 0
        while True:
            app = None
            try:
                if tenant.settings.webhook_on and self.webhooks is None:
                    raise ValueError("webhook tenant, but the hub has no HUB_WEBHOOK_LISTEN")
                async with self._starting:
                    app = tenant.app = await self._build(tenant.settings)
                me = await wait_for_telegram(app.bot, f"BOT_TOKEN of {tenant.tenant_id}")
                tenant.username = me.username or ""
                self._mark(tenant, TenantState.RUNNING)
                log.info("hub: tenant %s (@%s) is up", tenant.tenant_id, me.username)
                failures = 0
                await app.run(handle_signals=False, webhooks=self.webhooks)
                return  # stopped on purpose (_remove)
            except BotTokenRefusedError as exc:
                self._mark(tenant, TenantState.TOKEN_REFUSED, str(exc))
                log.error("hub: tenant %s: %s", tenant.tenant_id, exc)
                return
            except Exception as exc:
                failures += 1
                delay = backoff(failures, 1.0, self.retry_max_delay)
                self._mark(tenant, TenantState.FAILED, f"{type(exc).__name__}: {exc}")
                log.exception("hub: tenant %s failed; retrying in %.0f s", tenant.tenant_id, delay)
            finally:
                tenant.app = None
                if app is not None:
                    await _close(app)
            await asyncio.sleep(delay)

    async def _remove(self, tenant_id: str) -> None:
        tenant = self.tenants[tenant_id]
        task = tenant.task
        if task is not None and not task.done():
            polling = tenant.app is not None
            if tenant.app is not None:
                try:  # updates stop (in-flight ones handled first); run() stops the workers
                    await tenant.app.stop_updates()
                except RuntimeError:  # not polling yet: starting, or waiting for a retry
                    polling = False
            if not polling or not (await asyncio.wait({task}, timeout=10))[0]:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        del self.tenants[tenant_id]
        log.info("hub: tenant %s stopped", tenant_id)

    # ------------------------------------------------------------------ the hub
    async def run(self, interval: float = 3.0, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        (self.folder / TENANTS).mkdir(parents=True, exist_ok=True)
        try:
            if self.webhooks is not None:
                await self.webhooks.start()
            while not stop.is_set():
                try:
                    await self.scan()
                except OSError as exc:
                    log.error("hub: cannot read %s: %s", self.folder / TENANTS, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
        finally:
            await self.close()

    async def close(self) -> None:
        async with self._scan_lock:
            await asyncio.gather(*(self._remove(tid) for tid in list(self.tenants)))
            with contextlib.suppress(OSError):
                self.write_status()
        if self.webhooks is not None:
            await self.webhooks.close()
        for session in self._sessions.values():
            await session.close_shared()
        self._sessions.clear()


async def _close(app: ClientBot) -> None:
    try:
        await app.close()
    except Exception:  # a half-built runtime: close what can be closed
        log.exception("hub: closing tenant %s", app.settings.tenant_id)


async def serve(settings: HubSettings, redaction: RedactingFilter | None = None) -> None:
    hub = Hub(
        settings.hub_dir,
        capacity=settings.hub_capacity,
        redaction=redaction,
        webhook_listen=settings.hub_webhook_listen,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = None
    if settings.metrics_listen:  # every tenant's updates in one /metrics, on an internal port
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        metrics = await serve_metrics(hub.dispatcher.metrics, settings.metrics_listen, token)
    try:
        await hub.run(settings.hub_scan_interval, stop)
    finally:
        if metrics is not None:
            await metrics.cleanup()


def main() -> int:
    settings = load_settings(HubSettings)
    redaction = setup_logging(settings.log_level, settings.log_format, settings=settings)
    asyncio.run(serve(settings, redaction))
    return 0


if __name__ == "__main__":
    exit_flushed(main())  # no interpreter teardown after a clean stop (core/logs.py)
