"""Fixtures of the master's tests: a master built on real PostgreSQL, Redis and HTTP.

Tenant numbers start at a random large value per test, so tenant roles and Redis ACL users
(cluster-wide) never collide with another test run on the same servers. After each test every
tenant's processes, role, schema and ACL user are removed.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from core.secrets import SecretBox
from database.redis_tenants import remove_tenant_redis
from database.tenants import drop_tenant_database
from master_bot.alert import AlertKind, Alerts
from master_bot.api import build_api
from master_bot.app import assemble
from master_bot.deploy.base import DeployBackend
from master_bot.deploy.process import ProcessBackend
from master_bot.deps import Deps, MasterConfig
from master_bot.services import Master
from master_bot.store import TenantStore
from master_bot.telegram import TelegramGateway
from telegram_emulator import EmulatorClient, EmulatorServer
from tests.support import wait_until

API_TOKEN = "test-master-api-token-" + "x" * 16
FAKE_BOT = "tests.master.fake_bot"


def make_token(bot_id: int | None = None) -> str:
    """A bot token for the emulator that does not look like a real Telegram token."""
    bot_id = bot_id or 1_000_000 + secrets.randbelow(8_999_999)
    return f"{bot_id}:test-token-{secrets.token_hex(12)}"


class RecordingAlerter:
    def __init__(self) -> None:
        self.alerts: list[tuple[AlertKind, str | None, str]] = []

    async def alert(self, kind: AlertKind, tenant_id: str | None, text: str) -> None:
        self.alerts.append((kind, tenant_id, text))

    def kinds(self, tenant_id: str | None = None) -> list[AlertKind]:
        return [k for k, t, _ in self.alerts if tenant_id is None or t == tenant_id]


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"]["code"])
        return None


class Api:
    """The master's REST API over real HTTP on 127.0.0.1."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        params: dict[str, str] | None = None,
    ) -> Reply:
        sent = {"Authorization": f"Bearer {API_TOKEN}"} if auth else {}
        sent.update(headers or {})
        async with self.session.request(
            method, self.base_url + path, json=json, data=data, headers=sent, params=params
        ) as resp:
            text = await resp.text()
            body: Any = text
            if resp.content_type == "application/json":
                body = await resp.json()
            return Reply(resp.status, body, resp.headers)

    async def provision(self, token: str, *, key: str | None = None, **fields: Any) -> Reply:
        body = {
            "plan": "basic",
            "period_days": 30,
            "business_name": "Салон «Ромашка»",
            "bot_token": token,
            "owner_telegram_id": 7001,
            "locale": "ru",
            "timezone": "Europe/Moscow",
            **fields,
        }
        return await self.call(
            "POST",
            "/api/v1/tenants",
            json=body,
            headers={"Idempotency-Key": key or f"order-{secrets.token_hex(6)}"},
        )


@dataclass
class Harness:
    master: Master
    api: Api
    tg: EmulatorClient
    emulator: EmulatorServer
    alerts: RecordingAlerter
    clock: Clock
    clients_dir: Path
    backend: DeployBackend
    pg_dsn: str
    redis: Redis

    async def new_bot(self, username: str | None = None) -> str:
        token = make_token()
        await self.tg.register_bot(token, username or f"shop{secrets.token_hex(3)}_bot")
        return token

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.pg_dsn)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    async def wait_for(
        self, predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0
    ) -> None:
        await wait_until(predicate, timeout)


def make_config(pg_dsn: str, redis_url: str, api_url: str, root: Path) -> MasterConfig:
    return MasterConfig(
        tenant_database_url=pg_dsn,
        tenant_redis_url=redis_url,
        telegram_api_url=api_url,
        clients_dir=root / "clients",
        backups_dir=root / "backups",
        openai_base_url="http://127.0.0.1:9/v1",
        grace_days=3,
        admin_database_url=pg_dsn,
    )


async def cleanup_tenants(pg_dsn: str, redis: Redis, backend: DeployBackend) -> None:
    for tenant_id in list(await backend.list()):
        await backend.remove(tenant_id)
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch("SELECT tenant_id FROM control.tenants")
        for row in rows:
            await drop_tenant_database(conn, row["tenant_id"], drop_data=True)
            await remove_tenant_redis(redis, row["tenant_id"], drop_data=True)
        await conn.execute(
            "TRUNCATE control.subscription_reminders, control.idempotency_keys,"
            " control.audit_log, control.tenants CASCADE"
        )
    finally:
        await conn.close()


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    server = EmulatorServer()
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


@pytest.fixture
async def make_harness(
    pg_dsn: str, redis_url: str, emulator: EmulatorServer, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Builds masters (several = a master restart) sharing one database, Redis and folder."""
    pools: list[asyncpg.Pool] = []
    runners: list[web.AppRunner] = []
    redises: list[Redis] = []
    backends: list[DeployBackend] = []
    sessions: list[aiohttp.ClientSession] = []
    tg = EmulatorClient(emulator.base_url)
    box = SecretBox(Fernet.generate_key().decode())
    clock = Clock()
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "SELECT setval('control.tenant_number_seq', $1)",
            90_000_000_000 + secrets.randbelow(9_000_000_000),
        )
    finally:
        await conn.close()

    async def make(*, module: str = FAKE_BOT, backend: DeployBackend | None = None) -> Harness:
        pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=8)
        pools.append(pool)
        redis = Redis.from_url(redis_url)
        redises.append(redis)
        if backend is None:
            backend = ProcessBackend(tmp_path / "clients", module=module, stop_timeout=5)
        backends.append(backend)
        alerter = RecordingAlerter()
        config = make_config(pg_dsn, redis_url, emulator.base_url, tmp_path)
        deps = Deps(
            config=config,
            pool=pool,
            redis=redis,
            backend=backend,
            box=box,
            telegram=TelegramGateway(emulator.base_url, timeout=5),
            store=TenantStore(pool),
            alerts=Alerts([alerter]),
        )
        master = assemble(deps, reconcile_interval=0.2)
        master.fleet.clock = clock
        master.monitor.clock = clock
        runner = web.AppRunner(build_api(master, API_TOKEN), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Harness(
            master=master,
            api=Api(f"http://127.0.0.1:{port}", session),
            tg=tg,
            emulator=emulator,
            alerts=alerter,
            clock=clock,
            clients_dir=tmp_path / "clients",
            backend=backend,
            pg_dsn=pg_dsn,
            redis=redis,
        )

    yield make
    for session in sessions:
        await session.close()
    for runner in runners:
        await runner.cleanup()
    if backends:
        await cleanup_tenants(pg_dsn, redises[0], backends[-1])
    for backend in backends:
        await backend.close()
    for redis in redises:
        await redis.aclose()
    for pool in pools:
        await pool.close()
    await tg.close()


@pytest.fixture
async def harness(make_harness: Callable[..., Awaitable[Harness]]) -> Harness:
    return await make_harness()
