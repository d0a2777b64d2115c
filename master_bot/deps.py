"""What the master's parts share: configuration, connections, the backend, per-tenant locks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from core.plans import Catalog, default_catalog
from core.secrets import SecretBox
from database.roles import fleet_mark
from database.servers import ServerPools
from master_bot.alert import Alerts
from master_bot.deploy.base import DeployBackend
from master_bot.metrics import Metrics
from master_bot.store import TenantStore
from master_bot.telegram import TelegramGateway


@dataclass(frozen=True, slots=True)
class MasterConfig:
    """Values derived from MasterSettings that the business rules need."""

    tenant_database_url: str = field(repr=False)  # server the client bots reach (admin creds ok)
    tenant_redis_url: str = field(repr=False)
    telegram_api_url: str
    clients_dir: Path
    backups_dir: Path
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    client_image: str = "botfleet-client:latest"
    client_network: str = "botfleet-clients"  # a bridge network; `host` only when set explicitly
    fleet_name: str = "botfleet"
    fleet_id: str = ""  # control.fleet: marks this fleet's roles and ACL users (database/roles.py)
    grace_days: float = 3.0
    reminder_days: tuple[int, ...] = (7, 3, 1)
    pg_dump: str = "pg_dump"
    admin_database_url: str = field(default="", repr=False)  # for pg_dump backups
    plans: Catalog = field(default_factory=default_catalog)  # each tenant's features
    assistant_env: Mapping[str, str] = field(default_factory=dict)  # fleet-wide, non-secret
    # Updates by webhook (master_bot/ingress.py): "" = long polling. Process backend: bot N
    # listens on 127.0.0.1:<webhook_port_base + N>; 0 = containers, each on 0.0.0.0:8080.
    webhook_base_url: str = ""
    webhook_port_base: int = 0
    web_public_url: str = ""  # the owners' web; "" = bots offer no "Open the web panel"
    caddy_admin_url: str = "http://127.0.0.1:2019"
    webhook_proxy_listen: str = ":8443"

    @property
    def fleet_mark(self) -> str | None:
        """This fleet's mark on shared names; None before the fleet id is known (tests)."""
        return fleet_mark(self.fleet_name, self.fleet_id) if self.fleet_id else None


class TenantLocks:
    """One asyncio.Lock per tenant: API calls, the reconciler and the monitor take turns."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, tenant_id: str) -> asyncio.Lock:
        lock = self._locks.get(tenant_id)
        if lock is None:
            lock = self._locks[tenant_id] = asyncio.Lock()
        return lock

    def busy(self, tenant_id: str) -> bool:
        lock = self._locks.get(tenant_id)
        return lock is not None and lock.locked()


@dataclass(slots=True)
class Deps:
    config: MasterConfig
    pool: asyncpg.Pool
    redis: Redis
    backend: DeployBackend
    box: SecretBox
    telegram: TelegramGateway
    store: TenantStore
    metrics: Metrics = field(default_factory=Metrics)
    alerts: Alerts = field(default_factory=Alerts)
    locks: TenantLocks = field(default_factory=TenantLocks)
    on_change: Callable[[], None] = lambda: None  # wakes the reconciler
    db_pools: ServerPools = field(default_factory=ServerPools)  # other PostgreSQL servers
