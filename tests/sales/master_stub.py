"""A tiny stand-in of the master's REST API, for tests that need the master down, slow or odd.

It keeps the contract the sales bot relies on (bearer token, Idempotency-Key, the tenant JSON,
409/422 codes) and counts what reached it. The headline test uses the real master instead.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

TOKEN = "stub-master-token-" + "y" * 16


@dataclass
class StubTenant:
    tenant_id: str
    key: str
    plan: str
    bot_token: str
    owner: int
    status: str = "active"
    username: str | None = None
    expires_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    category: str = ""  # as the sales bot sent it ('' = not sent)

    def json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "status": self.status,
            "plan": self.plan,
            "business_name": "x",
            "owner_telegram_id": self.owner,
            "bot_username": self.username or f"bot_{self.tenant_id}",
            "expires_at": self.expires_at.isoformat(),
        }


class MasterStub:
    def __init__(self) -> None:
        self.tenants: dict[str, StubTenant] = {}  # by Idempotency-Key
        self.extend_keys: set[str] = set()
        self.plan_keys: dict[str, str] = {}  # Idempotency-Key -> plan it switched to
        self.calls: list[tuple[str, str]] = []  # (method, path) that reached a handler
        self.created = 0
        self.fail_with: int | None = None  # answer every call with this status
        self.delay = 0.0
        self.refuse_tokens: dict[str, str] = {}  # bot token -> error code (409/422)
        self.usernames: dict[str, str] = {}  # bot token -> @username getMe would give
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def by_id(self, tenant_id: str) -> StubTenant | None:
        return next((t for t in self.tenants.values() if t.tenant_id == tenant_id), None)

    def provision_calls(self) -> int:
        return sum(1 for m, p in self.calls if m == "POST" and p == "/api/v1/tenants")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/tenants", self._provision)
        app.router.add_post("/api/v1/tenants/{id}/extend", self._extend)
        app.router.add_post("/api/v1/tenants/{id}/suspend", self._suspend)
        app.router.add_post("/api/v1/tenants/{id}/plan", self._plan)
        app.router.add_get("/api/v1/tenants/{id}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Down: connections are refused until `start()` again (same port)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _gate(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response(
                {"error": {"code": "unauthorized", "message": "no"}}, status=401
            )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            return web.json_response(
                {"error": {"code": "unavailable", "message": "stub failure"}}, status=self.fail_with
            )
        self.calls.append((request.method, request.path))
        return None

    async def _provision(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        key = request.headers["Idempotency-Key"]
        body = await request.json()
        if key in self.tenants:
            return web.json_response(self.tenants[key].json(), status=200)
        code = self.refuse_tokens.get(body["bot_token"])
        if code is not None:
            status = 409 if code == "bot_token_in_use" else 422
            return web.json_response({"error": {"code": code, "message": code}}, status=status)
        self.created += 1
        tenant = StubTenant(
            tenant_id=f"client_{900000 + self.created}",
            key=key,
            plan=body["plan"],
            bot_token=body["bot_token"],
            owner=body["owner_telegram_id"],
            username=self.usernames.get(body["bot_token"]),
            expires_at=datetime.now(UTC) + timedelta(days=body["period_days"]),
            category=body.get("category", ""),
        )
        self.tenants[key] = tenant
        return web.json_response(tenant.json(), status=201)

    async def _extend(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        tenant = self.by_id(request.match_info["id"])
        if tenant is None:
            return web.json_response({"error": {"code": "tenant_not_found"}}, status=404)
        key = request.headers["Idempotency-Key"]
        if key not in self.extend_keys:
            self.extend_keys.add(key)
            days = (await request.json())["days"]
            tenant.expires_at = max(tenant.expires_at, datetime.now(UTC)) + timedelta(days=days)
            tenant.status = "active"
        return web.json_response(tenant.json())

    async def _plan(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        tenant = self.by_id(request.match_info["id"])
        if tenant is None:
            return web.json_response({"error": {"code": "tenant_not_found"}}, status=404)
        key = request.headers["Idempotency-Key"]
        plan = (await request.json())["plan"]
        if key in self.plan_keys:
            if self.plan_keys[key] != plan:
                return web.json_response({"error": {"code": "idempotency_key_reused"}}, status=409)
        else:
            self.plan_keys[key] = plan
            tenant.plan = plan
        return web.json_response(tenant.json())

    async def _suspend(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        tenant = self.by_id(request.match_info["id"])
        if tenant is None:
            return web.json_response({"error": {"code": "tenant_not_found"}}, status=404)
        tenant.status = "suspended"
        return web.json_response(tenant.json())

    async def _get(self, request: web.Request) -> web.Response:
        if (refused := await self._gate(request)) is not None:
            return refused
        tenant = self.by_id(request.match_info["id"])
        if tenant is None:
            return web.json_response({"error": {"code": "tenant_not_found"}}, status=404)
        return web.json_response(tenant.json())


def new_key() -> str:
    return secrets.token_hex(4)
