"""The web's only way to a tenant's data: that tenant's own login role and Redis ACL user.

The web holds platform credentials for the control schema (accounts, the tenants table) and
never uses them on a tenant schema. For a tenant it decrypts the role's and the ACL user's
passwords (SecretBox, bound to the tenant id, like the master does for a bot's environment) and
opens a small pool as the login role (`min_size=0`: an idle tenant holds no PostgreSQL backend)
on the PostgreSQL server that holds the tenant (`control.tenants.db_server`: its address from
control.db_servers, never its admin's credentials; rebuilt when the tenant moves) and a Redis client as the ACL user, limited to the tenant's key prefix. Everything a tenant
does on the web therefore runs with exactly the rights of its bot.

An owner answering a customer on the web is the one thing sent to Telegram as the tenant's bot:
the web decrypts that tenant's own bot token the same way (bound to the tenant id) and sends the
message with it, only after the caller was checked to own the tenant. The token never leaves the
runtime (no setting, no log), and a bot without one (not provisioned yet) cannot be answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field

import asyncpg
from aiogram import Bot
from redis.asyncio import Redis

from client_bot.assistant import Assistant, build_assistant
from client_bot.clock import SystemClock
from client_bot.context import TenantContext
from client_bot.i18n import build_i18n
from client_bot.store import Store
from core.plans import SAFEST_FEATURES, Catalog, load_plans
from core.redis import redis_client
from core.secrets import SecretBox, SecretDecryptionError
from core.settings import ClientBotSettings, WebSettings
from core.telegram import build_bot
from database.dsn import parse_dsn
from database.pool import create_pool
from database.redis_tenants import key_prefix, tenant_redis_url
from database.roles import login_role

log = logging.getLogger(__name__)

# ClientBotSettings requires a bot token; the web's tenant context never talks to Telegram
# (admins' notices are queued in the tenant's admin_notices and its bot delivers them), so it
# is never given the real one. Only an owner's answer to a customer goes out as the bot
# (`TenantRuntime.bot`).
NO_BOT_TOKEN = "0:the-web-has-no-bot-token"  # noqa: S105 - a placeholder, not a secret


class TenantUnavailable(Exception):
    """Not active, or not fully provisioned: its data cannot be reached now."""


@dataclass
class TenantRuntime:
    tenant_id: str
    fingerprint: str  # of the credentials it was built with (a rotation rebuilds it)
    pool: asyncpg.Pool
    redis: Redis
    ctx: TenantContext
    features: tuple[str, ...]
    assistant: Assistant | None
    bot_token: str | None = field(default=None, repr=False)
    telegram_api_url: str = ""
    telegram_timeout: float = 30.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _bot: Bot | None = field(default=None, repr=False)

    def bot(self) -> Bot | None:
        """The tenant's own bot (its token, decrypted for this tenant only), or None when the
        tenant has no token yet."""
        if self._bot is None and self.bot_token:
            self._bot = build_bot(
                self.bot_token, self.telegram_api_url, timeout=self.telegram_timeout
            )
        return self._bot

    async def close(self) -> None:
        if self._bot is not None:
            with contextlib.suppress(Exception):
                await self._bot.session.close()
        if self.assistant is not None:
            with contextlib.suppress(Exception):
                await self.assistant.model.close()
        await self.redis.aclose()
        await self.pool.close()


class TenantGate:
    def __init__(self, settings: WebSettings, control: asyncpg.Pool, box: SecretBox) -> None:
        self.settings = settings
        self.control = control
        self.box = box
        self.catalog = Catalog(load_plans(settings.sales_plans_file))
        server = settings.tenant_database_url or settings.database_url
        self._pg_server = parse_dsn(server.get_secret_value())
        redis_server = settings.tenant_redis_url or settings.redis_url
        self._redis_server = redis_server.get_secret_value()
        self._runtimes: dict[str, TenantRuntime] = {}
        self._building: dict[str, asyncio.Lock] = {}

    async def runtime(self, tenant_id: str) -> TenantRuntime:
        """The tenant's connections (built on first use, rebuilt after a password rotation)."""
        row = await self.control.fetchrow(
            "SELECT t.tenant_id, t.status, t.plan, t.locale, t.timezone, t.owner_telegram_id,"
            " t.db_password_enc, t.redis_password_enc, t.bot_token_enc, t.db_server,"
            # The server's DSN for tenants (encrypted, bound to its name), as the master gives
            # the bot (master_bot/spec.py); NULL on the platform's own: TENANT_DATABASE_URL.
            " (SELECT coalesce(s.tenant_dsn_enc, s.admin_dsn_enc) FROM control.db_servers s"
            "  WHERE s.name = t.db_server) AS db_server_dsn_enc"
            " FROM control.tenants t WHERE t.tenant_id = $1",
            tenant_id,
        )
        if row is None or row["status"] != "active":
            raise TenantUnavailable(tenant_id)
        if not (row["db_password_enc"] and row["redis_password_enc"]):
            raise TenantUnavailable(tenant_id)
        # A move to another PostgreSQL server (or its new address) rebuilds the runtime too.
        fingerprint = hashlib.sha256(
            f"{row['db_password_enc']}|{row['redis_password_enc']}|{row['plan']}"
            f"|{row['bot_token_enc']}|{row['db_server']}|{row['db_server_dsn_enc']}".encode()
        ).hexdigest()
        current = self._runtimes.get(tenant_id)
        if current is not None and current.fingerprint == fingerprint:
            return current
        lock = self._building.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            current = self._runtimes.get(tenant_id)
            if current is not None and current.fingerprint == fingerprint:
                return current
            built = await self._build(row, fingerprint)
            self._runtimes[tenant_id] = built
        if current is not None:
            await current.close()
        return built

    async def _build(self, row: asyncpg.Record, fingerprint: str) -> TenantRuntime:
        tid: str = row["tenant_id"]
        fleet = self.settings.fleet_name
        role = login_role(tid, fleet)
        try:
            db_password = self.box.decrypt(tid, row["db_password_enc"])
            redis_password = self.box.decrypt(tid, row["redis_password_enc"])
            bot_token = (
                self.box.decrypt(tid, row["bot_token_enc"]) if row["bot_token_enc"] else None
            )
            server = (
                parse_dsn(self.box.decrypt_server(row["db_server"], row["db_server_dsn_enc"]))
                if row["db_server_dsn_enc"]
                else self._pg_server
            )
        except SecretDecryptionError:
            log.error("tenant %s: its stored passwords do not decrypt with ENCRYPTION_KEYS", tid)
            raise TenantUnavailable(tid) from None
        # The server's address only: the tenant's own login, never the server's admin.
        dsn = server.with_credentials(role, db_password)
        redis_url = tenant_redis_url(self._redis_server, role, redis_password)
        features = self.catalog.features(row["plan"]) or SAFEST_FEATURES
        s = self.settings
        config = ClientBotSettings(
            tenant_id=tid,
            bot_token=NO_BOT_TOKEN,
            database_url=dsn,
            redis_url=redis_url,
            redis_key_prefix=key_prefix(tid, fleet),
            admin_ids=[row["owner_telegram_id"]],
            locale=row["locale"],
            timezone=row["timezone"],
            plan_features=frozenset(features),
            openai_api_key=s.openai_api_key,
            openai_base_url=s.openai_base_url,
            openai_model=s.openai_model,
            openai_transcription_model=s.openai_transcription_model,
            openai_timeout=s.openai_timeout,
            openai_max_retries=s.openai_max_retries,
            openai_retry_delay=s.openai_retry_delay,
            openai_retry_max_delay=s.openai_retry_max_delay,
            assistant_daily_tokens=s.assistant_daily_tokens,
            assistant_rate_limit=s.assistant_rate_limit,
            assistant_rate_window=s.assistant_rate_window,
            _env_file=None,
        )
        # Two tries, not a bot's eight: an owner waits on this request (a 503 says to retry).
        pool = await create_pool(
            dsn, min_size=0, max_size=3, stateless=True, idle_seconds=10.0, attempts=2
        )
        redis = redis_client(redis_url)
        ctx = TenantContext(config, Store(pool), SystemClock(), build_i18n(config.locale))
        from web.chat import QueuedNotices  # local: chat imports this module's types

        assistant = (
            build_assistant(config, ctx, redis, QueuedNotices(ctx))
            if config.has_feature("ai_assistant")
            else None
        )
        return TenantRuntime(
            tid,
            fingerprint,
            pool,
            redis,
            ctx,
            features,
            assistant,
            bot_token=bot_token,
            telegram_api_url=s.telegram_api_url,
            telegram_timeout=s.telegram_timeout,
        )

    async def close(self) -> None:
        runtimes, self._runtimes = list(self._runtimes.values()), {}
        for runtime in runtimes:
            await runtime.close()
