"""The master's composition root: builds it from MasterSettings and runs its parts: REST API,
reconciler, monitor, and the operators' Telegram bot (when MASTER_BOT_TOKEN is set).

Nothing in master_bot imports this module but `__main__` (an import-linter contract): the parts
share `master_bot.services.Master` and `master_bot.deps.Deps` instead."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.redis import redis_client
from core.secrets import SecretBox
from core.settings import MasterSettings
from database.migrator import migrate_control
from database.pool import create_pool
from database.redis_tenants import move_tenant_keys
from master_bot.alert import Alerts
from master_bot.api import build_api
from master_bot.config import config_from, make_backend
from master_bot.dbmove import settle_moves
from master_bot.deploy.base import DeployBackend
from master_bot.deps import Deps
from master_bot.fleet import Fleet
from master_bot.guard import run_guard
from master_bot.operator import OperatorBot
from master_bot.provision import Provisioner
from master_bot.reconciler import Reconciler
from master_bot.services import Master
from master_bot.store import TenantStore
from master_bot.subscription import SubscriptionMonitor
from master_bot.telegram import TelegramGateway
from master_bot.upgrades import Upgrades

log = logging.getLogger(__name__)


def assemble(
    deps: Deps,
    *,
    reconcile_interval: float = 15.0,
    subscription_interval: float = 300.0,
) -> Master:
    """Wire the parts around shared dependencies (tests call this with their own Deps)."""
    provisioner = Provisioner(deps)
    fleet = Fleet(deps)
    reconciler = Reconciler(deps, provisioner, interval=reconcile_interval)
    deps.on_change = reconciler.wake
    monitor = SubscriptionMonitor(deps, fleet, interval=subscription_interval)
    upgrades = Upgrades(deps, reconciler)
    upgrades.restore()  # the image of the last finished `make upgrade`, unless CLIENT_IMAGE changed
    return Master(deps, provisioner, fleet, reconciler, monitor, upgrades)


@contextlib.asynccontextmanager
async def open_master(
    settings: MasterSettings, backend: DeployBackend | None = None
) -> AsyncIterator[Master]:
    """Connect to PostgreSQL and Redis, apply control migrations, build the master."""
    config = config_from(settings)
    pool = await create_pool(
        settings.database_url.get_secret_value(), max_size=settings.database_pool_max
    )
    redis = redis_client(settings.redis_url.get_secret_value())
    backend = backend or make_backend(settings, config)
    try:
        async with pool.acquire() as conn:
            await migrate_control(conn)
            fleet_id = await conn.fetchval("SELECT id::text FROM control.fleet")
        config = dataclasses.replace(config, fleet_id=fleet_id)
        await _move_redis_keys(redis, config.fleet_name)
        deps = Deps(
            config=config,
            pool=pool,
            redis=redis,
            backend=backend,
            box=SecretBox(settings.encryption_keys.get_secret_value()),
            telegram=TelegramGateway(config.telegram_api_url, timeout=settings.telegram_timeout),
            store=TenantStore(pool),
            alerts=Alerts(),
        )
        try:
            yield assemble(
                deps,
                reconcile_interval=settings.reconcile_interval,
                subscription_interval=settings.subscription_check_interval,
            )
        finally:
            await deps.db_pools.close()  # pools of the other PostgreSQL servers (dbservers.py)
    finally:
        await backend.close()
        await redis.aclose()
        await pool.close()


async def _move_redis_keys(redis: Redis, fleet: str) -> None:
    """Tenant keys from before hash tags moved once, before the reconciler redeploys anything
    (database/redis_tenants.py, move_tenant_keys); a Redis outage leaves it to the next start."""
    try:
        await move_tenant_keys(redis, fleet)
    except (RedisError, OSError) as exc:
        log.warning("tenant Redis keys not moved under hash tags yet (next start): %s", exc)


def operator_bot(settings: MasterSettings, master: Master) -> OperatorBot | None:
    """The operator bot of these settings, with alerts routed to it; None without a token."""
    token = settings.master_bot_token.get_secret_value() if settings.master_bot_token else ""
    if not token:
        log.info("operator bot off: MASTER_BOT_TOKEN is empty")
        return None
    bot = OperatorBot.create(
        master,
        token,
        settings.operator_ids,
        api_url=settings.telegram_api_url,
        timeout=settings.telegram_timeout,
    )
    bot.attach()
    return bot


async def serve(settings: MasterSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the API, the reconciler, the subscription monitor and the operator bot until `stop`."""
    async with open_master(settings) as master:
        app = build_api(
            master,
            settings.master_api_token.get_secret_value(),
            metrics_token=(
                settings.metrics_token.get_secret_value() if settings.metrics_token else None
            ),
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, settings.master_api_host, settings.master_api_port)
        await site.start()
        log.info(
            "master API on http://%s:%s (backend: %s)",
            settings.master_api_host,
            settings.master_api_port,
            master.deps.backend.name,
        )
        operators = operator_bot(settings, master)
        tasks = [
            # Moves between PostgreSQL servers a previous master left half done (dbmove.py).
            asyncio.create_task(settle_moves(master.deps), name="settle-db-moves"),
            asyncio.create_task(master.reconciler.run(), name="reconciler"),
            asyncio.create_task(master.monitor.run(), name="subscription-monitor"),
            asyncio.create_task(run_guard(master.deps), name="tenant-session-guard"),
        ]
        if operators is not None:
            tasks.append(asyncio.create_task(operators.run(), name="operator-bot"))
        try:
            await (stop.wait() if stop is not None else asyncio.Future())
        finally:
            if operators is not None:
                await operators.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await master.upgrades.close()
            if operators is not None:
                await operators.close()
            await runner.cleanup()
