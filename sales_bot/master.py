"""The master's REST API as the sales bot needs it, behind a small interface.

`MasterApi` is the protocol the relay and the handlers use; `HttpMaster` speaks the contract of
docs/architecture.md (`Authorization: Bearer`, `Idempotency-Key` = order id). Errors come in two kinds: a
`MasterUnavailableError` is worth retrying (network, timeouts, 5xx, 401 while an operator fixes
the token), a `MasterRejectedError` is not (409 token in use, 422 invalid token, 404 ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp

from core.logs import redact


class MasterError(Exception):
    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class MasterUnavailableError(MasterError):
    """Retry later."""


class MasterRejectedError(MasterError):
    """The master refused the request for good (`code` says why: bot_token_in_use, ...)."""


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: str
    status: str
    plan: str
    bot_username: str | None
    expires_at: datetime | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Tenant:
        expires = body.get("expires_at")
        return cls(
            tenant_id=str(body["tenant_id"]),
            status=str(body["status"]),
            plan=str(body.get("plan") or ""),
            bot_username=body.get("bot_username"),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The master's JSON shape again (`from_json(t.to_json()) == t`)."""
        return {
            "tenant_id": self.tenant_id,
            "status": self.status,
            "plan": self.plan,
            "bot_username": self.bot_username,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    plan: str
    period_days: int
    business_name: str
    bot_token: str
    owner_telegram_id: int
    locale: str
    timezone: str
    category: str = ""  # core.categories; '' = none

    def __repr__(self) -> str:  # never show the token
        return f"ProvisionRequest(plan={self.plan!r}, owner={self.owner_telegram_id})"


class MasterApi(Protocol):
    async def provision(self, request: ProvisionRequest, idempotency_key: str) -> Tenant: ...

    async def extend(self, tenant_id: str, days: int, idempotency_key: str) -> Tenant: ...

    async def suspend(self, tenant_id: str) -> Tenant: ...

    async def change_plan(self, tenant_id: str, plan: str, idempotency_key: str) -> Tenant: ...

    async def get(self, tenant_id: str) -> Tenant: ...


class HttpMaster:
    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self, method: str, path: str, *, body: Any = None, key: str | None = None
    ) -> Tenant:
        headers = {"Authorization": f"Bearer {self._token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        what = f"{method} {path}"
        try:
            async with self._http().request(
                method, self.base_url + path, json=body, headers=headers
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise MasterUnavailableError(
                f"master unreachable on {what}: {type(exc).__name__}"
            ) from None
        try:
            payload = json.loads(text) if text else {}
        except json.JSONDecodeError:
            payload = {}
        if 200 <= status < 300 and isinstance(payload, dict) and "tenant_id" in payload:
            return Tenant.from_json(payload)
        error = payload.get("error") if isinstance(payload, dict) else None
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        message = str(error.get("message", "")) if isinstance(error, dict) else text[:200]
        description = redact(f"master answered {status} on {what}: {code} {message}".strip())
        if status >= 500 or status in (401, 408, 429) or status < 400:
            raise MasterUnavailableError(description, status=status, code=code)
        raise MasterRejectedError(description, status=status, code=code)

    async def provision(self, request: ProvisionRequest, idempotency_key: str) -> Tenant:
        body = {
            "plan": request.plan,
            "period_days": request.period_days,
            "business_name": request.business_name,
            "bot_token": request.bot_token,
            "owner_telegram_id": request.owner_telegram_id,
            "locale": request.locale,
            "timezone": request.timezone,
        }
        if request.category:
            body["category"] = request.category
        return await self._call("POST", "/api/v1/tenants", body=body, key=idempotency_key)

    async def extend(self, tenant_id: str, days: int, idempotency_key: str) -> Tenant:
        return await self._call(
            "POST", f"/api/v1/tenants/{tenant_id}/extend", body={"days": days}, key=idempotency_key
        )

    async def suspend(self, tenant_id: str) -> Tenant:
        return await self._call("POST", f"/api/v1/tenants/{tenant_id}/suspend")

    async def change_plan(self, tenant_id: str, plan: str, idempotency_key: str) -> Tenant:
        return await self._call(
            "POST", f"/api/v1/tenants/{tenant_id}/plan", body={"plan": plan}, key=idempotency_key
        )

    async def get(self, tenant_id: str) -> Tenant:
        return await self._call("GET", f"/api/v1/tenants/{tenant_id}")
