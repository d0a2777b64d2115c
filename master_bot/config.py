"""How the master is configured from MasterSettings: `config_from` (the MasterConfig the
business rules read) and `make_backend` (the deploy backend DEPLOY_BACKEND names, with hubs for
the shared placement). Used by the composition root (master_bot/app.py) and by `make stats`
(scripts/stats.py), which must not import the composition root."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from urllib.parse import urlsplit

from core.plans import Catalog, load_plans
from core.settings import MasterSettings
from master_bot.deploy.base import DeployBackend
from master_bot.deps import MasterConfig
from master_bot.spec import assistant_env

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
    from master_bot.deploy.hub import with_docker_hubs

    if settings.deploy_backend == "swarm":
        from master_bot.deploy.swarm import SwarmBackend

        # Dedicated tenants as services of their own; shared ones in hub services pinned to
        # this engine's node, where their folders are (docs/scaling.md, "Past one server").
        return with_docker_hubs(
            SwarmBackend(
                settings.client_image,
                network=settings.client_network,
                fleet=settings.fleet_name,
                constraints=settings.swarm_constraints,
                preferences=settings.swarm_spread,
                subnet=settings.swarm_subnet,
            ),
            config.clients_dir,
            capacity=settings.hub_capacity,
            hub_env={"LOG_LEVEL": settings.log_level, "LOG_FORMAT": settings.log_format},
            webhooks=settings.client_network != "host",  # hubs on one host would share 8080
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
