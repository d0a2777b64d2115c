"""The master's composition root: builds it from MasterSettings and runs its parts: REST API,
reconciler, monitor, and the operators' Telegram bot (when MASTER_BOT_TOKEN is set).

Nothing in master_bot imports this module but `__main__` (an import-linter contract): the parts
share `master_bot.services.Master` and `master_bot.deps.Deps` instead."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from core.plans import Catalog, load_plans
from core.redis import redis_client
from core.secrets import SecretBox
from core.settings import MasterSettings
from database.migrator import migrate_control
from database.pool import create_pool
from master_bot.alert import Alerts
from master_bot.api import build_api
from master_bot.deploy.base import DeployBackend
from master_bot.deps import Deps, MasterConfig
from master_bot.fleet import Fleet
from master_bot.guard import run_guard
from master_bot.operator import OperatorBot
from master_bot.provision import Provisioner
from master_bot.reconciler import Reconciler
from master_bot.services import Master
from master_bot.spec import assistant_env
from master_bot.store import TenantStore
from master_bot.subscription import SubscriptionMonitor
from master_bot.telegram import TelegramGateway

log = logging.getLogger(__name__)


def config_from(settings: MasterSettings) -> MasterConfig:
    database_url = settings.database_url.get_secret_value()
    redis_url = settings.redis_url.get_secret_value()
    return MasterConfig(
        tenant_database_url=(
            settings.tenant_database_url.get_secret_value()
            if settings.tenant_database_url
            else database_url
        ),
        tenant_redis_url=(
            settings.tenant_redis_url.get_secret_value() if settings.tenant_redis_url else redis_url
        ),
        telegram_api_url=settings.telegram_api_url,
        clients_dir=Path(settings.clients_dir).resolve(),
        backups_dir=Path(settings.backups_dir).resolve(),
        openai_api_key=(
            settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        ),
        openai_base_url=settings.openai_base_url,
        openai_model=settings.openai_model,
        client_image=settings.client_image,
        client_network=settings.client_network,
        fleet_name=settings.fleet_name,
        grace_days=settings.subscription_grace_days,
        admin_database_url=database_url,
        plans=Catalog(load_plans(settings.sales_plans_file)),
        assistant_env=assistant_env(settings),
        webhook_base_url=settings.webhook_base_url,
        web_public_url=settings.web_public_url,
        webhook_port_base=settings.webhook_port_base if settings.deploy_backend == "process" else 0,
        caddy_admin_url=settings.caddy_admin_url,
        webhook_proxy_listen=settings.webhook_proxy_listen,
    )


def make_backend(settings: MasterSettings, config: MasterConfig) -> DeployBackend:
    if settings.deploy_backend == "process":
        from master_bot.deploy.hub import HUB_RE, HubBackend, PlacedBackend
        from master_bot.deploy.process import ProcessBackend

        # Shared tenants in hub processes, up to HUB_CAPACITY each (docs/scaling.md).
        hubs = HubBackend(
            config.clients_dir,
            capacity=settings.hub_capacity,
            hub_env={"LOG_LEVEL": settings.log_level, "LOG_FORMAT": settings.log_format},
            processes=ProcessBackend(config.clients_dir, names=HUB_RE),
        )
        return PlacedBackend(ProcessBackend(config.clients_dir), hubs)
    from master_bot.deploy.docker import DockerBackend

    if settings.deploy_backend == "swarm":
        from master_bot.deploy.swarm import SwarmBackend

        return SwarmBackend(
            settings.client_image,
            network=settings.client_network,
            fleet=settings.fleet_name,
            constraints=settings.swarm_constraints,
            preferences=settings.swarm_spread,
        )
    if settings.client_network != "host":
        for name, url in (
            ("TENANT_DATABASE_URL", config.tenant_database_url),
            ("TENANT_REDIS_URL", config.tenant_redis_url),
            ("TELEGRAM_API_URL", config.telegram_api_url),
        ):
            if _loopback(url):
                log.warning(
                    "%s points at a loopback address, which client containers on the network "
                    "%s cannot reach (their 127.0.0.1 is their own): set it to an address of "
                    "that network (docs/operations.md)",
                    name,
                    settings.client_network,
                )
    from master_bot.deploy.hub import with_docker_hubs

    # Dedicated tenants in containers of their own; shared ones in hub containers of up to
    # HUB_CAPACITY tenants on the same engine, image, network and fleet (docs/scaling.md).
    return with_docker_hubs(
        DockerBackend(
            settings.client_image, network=settings.client_network, fleet=settings.fleet_name
        ),
        config.clients_dir,
        capacity=settings.hub_capacity,
        hub_env={"LOG_LEVEL": settings.log_level, "LOG_FORMAT": settings.log_format},
    )


def _loopback(url: str) -> bool:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    return Master(deps, provisioner, fleet, reconciler, monitor)


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
        yield assemble(
            deps,
            reconcile_interval=settings.reconcile_interval,
            subscription_interval=settings.subscription_check_interval,
        )
    finally:
        await backend.close()
        await redis.aclose()
        await pool.close()


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
            if operators is not None:
                await operators.close()
            await runner.cleanup()
