"""What the handlers share: settings, the control pool, the platform's Redis, the accounts
store, the signing keys and the gate to tenants' data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from core.settings import WebSettings
from web.accounts import Accounts
from web.clientip import ClientAddress
from web.tenants import TenantGate
from web.tokens import SigningKeys


@dataclass
class WebDeps:
    settings: WebSettings
    control: asyncpg.Pool
    redis: Redis  # the platform's own keys only (`web:*`): login throttling
    accounts: Accounts
    keys: SigningKeys
    gate: TenantGate
    openapi: dict[str, Any]
    client_address: ClientAddress


DEPS: web.AppKey[WebDeps] = web.AppKey("web_deps")
