"""The owner's web, for real: `web.app` served over TCP on a free port, against the test
session's PostgreSQL (control migrations applied) and Redis, with the OpenAI emulator as the
model. Tenants are made as the master makes them: a schema and login role, a Redis ACL user,
and a control.tenants row whose passwords are encrypted with the web's ENCRYPTION_KEYS.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from playwright.async_api import Locator, Page

from client_bot.store import Store
from core.secrets import SecretBox, generate_key
from core.settings import WebSettings
from database.pool import create_pool
from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from openai_emulator import OpenAIEmulator
from tests.client.conftest import seed_business
from tests.support import free_port
from web.app import PathOnlyAccessLogger, build_app, close_deps, open_deps
from web.deps import WebDeps
from web.tokens import generate_key as generate_jwt_key

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def screenshot(page: Page, name: str, *, showing: Locator | None = None) -> None:
    """A picture of the page for docs/ (docs/architecture.md and the README show them), taken by
    the browser tests themselves so that it stays true; `showing` is scrolled into view first."""
    if showing is not None:
        await showing.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / name))


_owners = itertools.count(880_000_001)


@dataclass
class WebServer:
    url: str
    deps: WebDeps
    box: SecretBox

    @property
    def settings(self) -> WebSettings:
        return self.deps.settings


@dataclass
class Tenant:
    tenant_id: str
    owner_telegram_id: int
    dsn: str  # the tenant's own login (for the test's checks only)
    redis_url: str = ""  # its ACL user (to run its bot)


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    emulator = OpenAIEmulator(api_key="test-key")
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def start_web(
    pg_dsn: str, redis_url: str, model: OpenAIEmulator
) -> AsyncIterator[Callable[..., Awaitable[WebServer]]]:
    runners: list[tuple[web.AppRunner, WebDeps]] = []
    encryption_keys = generate_key()

    async def start(**overrides: Any) -> WebServer:
        port = free_port()
        values: dict[str, Any] = {
            "database_url": pg_dsn,
            "redis_url": redis_url,
            "encryption_keys": encryption_keys,
            "web_jwt_keys": generate_jwt_key(),
            "web_port": port,
            "web_public_url": f"http://127.0.0.1:{port}",
            "openai_api_key": "test-key",
            "openai_base_url": model.base_url,
            "openai_model": "gpt-test",
            "openai_timeout": 5,
            "openai_retry_delay": 0.01,
            "web_redis_prefix": f"webtest{secrets.token_hex(4)}:",  # this test's own keys
            "_env_file": None,
            **overrides,
        }
        settings = WebSettings(**values)
        deps = await open_deps(settings)
        runner = web.AppRunner(build_app(deps), access_log_class=PathOnlyAccessLogger)
        await runner.setup()
        runners.append((runner, deps))
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return WebServer(f"http://127.0.0.1:{port}", deps, SecretBox(encryption_keys))

    yield start
    for runner, deps in runners:
        await runner.cleanup()
        await close_deps(deps)


@pytest.fixture
async def web_server(start_web: Callable[..., Awaitable[WebServer]]) -> WebServer:
    return await start_web()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_web_tenant(
    make_tenant: Any, redis_admin: Any, redis_url: str, pg_dsn: str
) -> AsyncIterator[Callable[..., Awaitable[Tenant]]]:
    """A provisioned, active tenant (plan `business`: with the assistant), seeded like the
    client bot's tests (a salon with two services)."""
    made: list[str] = []

    async def make(
        server: WebServer,
        *,
        plan: str = "business",
        status: str = "active",
        owner: int | None = None,
    ) -> Tenant:
        db = await make_tenant()
        made.append(db.tenant_id)
        redis_user = await create_tenant_redis_user(redis_admin, db.tenant_id, server_url=redis_url)
        owner = owner or next(_owners)
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "INSERT INTO control.tenants (tenant_id, number, status, plan, business_name,"
                " owner_telegram_id, db_password_enc, redis_password_enc, bot_token_enc,"
                " provision_step)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'done')",
                db.tenant_id,
                int(db.tenant_id.removeprefix("client_")),
                status,
                plan,
                f"Салон {db.tenant_id[-4:]}",
                owner,
                server.box.encrypt(db.tenant_id, db.password),
                server.box.encrypt(db.tenant_id, redis_user.password),
                server.box.encrypt(db.tenant_id, f"{owner}:{secrets.token_urlsafe(30)}"),
            )
        finally:
            await conn.close()
        pool = await create_pool(db.dsn, min_size=0, max_size=1)
        try:
            await seed_business(Store(pool))
        finally:
            await pool.close()
        return Tenant(db.tenant_id, owner, db.dsn, redis_user.url)

    yield make
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("DELETE FROM control.tenants WHERE tenant_id = ANY($1)", made)
    finally:
        await conn.close()
    for tenant_id in made:
        await remove_tenant_redis(redis_admin, tenant_id, drop_data=True)


async def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


class Client:
    """One web user: the HTTP calls a browser or an integrator makes, with its tokens."""

    def __init__(self, http: aiohttp.ClientSession, server: WebServer) -> None:
        self.http = http
        self.server = server
        self.access = ""
        self.refresh = ""

    def _headers(self, token: str | None) -> dict[str, str]:
        token = self.access if token is None else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        headers = {**self._headers(token), **(headers or {})}
        async with self.http.request(
            method, self.server.url + path, headers=headers, **kwargs
        ) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, body

    def keep(self, tokens: dict[str, Any]) -> None:
        self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]

    async def register(self, email: str, password: str = "correct horse battery") -> None:  # noqa: S107
        status, body = await self.call(
            "POST",
            "/api/auth/register",
            json={"email": email, "password": password, "company_name": "ООО Ромашка"},
        )
        assert status == 201, body
        self.keep(body)

    async def login(self, email: str, password: str) -> tuple[int, Any]:
        status, body = await self.call(
            "POST", "/api/auth/login", data={"username": email, "password": password}, token=""
        )
        if status == 200:
            self.keep(body)
        return status, body


def new_email() -> str:
    return f"owner-{secrets.token_hex(4)}@example.com"
