"""Thin aiohttp handlers: parse and validate, call the business rules, shape the answer."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from core.tenant_id import TENANT_ID_RE
from master_bot.api.errors import ApiError, from_validation
from master_bot.api.models import (
    CheckOut,
    DeletedOut,
    DeleteQuery,
    ExtendIn,
    HealthOut,
    ListQuery,
    LogsQuery,
    ProvisionIn,
    TenantOut,
    TenantPage,
)
from master_bot.errors import NotFoundError
from master_bot.provision import ProvisionOrder

if TYPE_CHECKING:
    from master_bot.app import Master

MASTER: web.AppKey[Master] = web.AppKey("master")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
ACTOR = "api"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
M = TypeVar("M", bound=BaseModel)


def _master(request: web.Request) -> Master:
    return request.app[MASTER]


def _tenant_id(request: web.Request) -> str:
    tenant_id = request.match_info["tenant_id"]
    if not TENANT_ID_RE.match(tenant_id):
        raise NotFoundError(f"no tenant {tenant_id[:40]!r} (ids look like client_001)")
    return tenant_id


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise ApiError(
            400, "idempotency_key_required", "this request needs an Idempotency-Key header"
        )
    if not _KEY_RE.match(key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-200 printable ASCII characters without spaces",
        )
    return key


async def _body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise from_validation(exc, "request body") from None


def _query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise from_validation(exc, "query string") from None


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


async def _detail(request: web.Request, tenant_id: str, status: int = 200) -> web.Response:
    master = _master(request)
    tenant = await master.fleet.get(tenant_id)
    return _json(TenantOut.of(tenant, await master.fleet.runtime(tenant_id)), status)


async def create_tenant(request: web.Request) -> web.Response:
    key = _idempotency_key(request)
    body = await _body(request, ProvisionIn)
    order = ProvisionOrder(
        plan=body.plan,
        period_days=body.period_days,
        business_name=body.business_name,
        bot_token=body.bot_token,
        owner_telegram_id=body.owner_telegram_id,
        locale=body.locale,
        timezone=body.timezone,
    )
    tenant, created = await _master(request).provisioner.provision(order, key, actor=ACTOR)
    return await _detail(request, tenant.tenant_id, 201 if created else 200)


async def list_tenants(request: web.Request) -> web.Response:
    query = _query(request, ListQuery)
    items, total = await _master(request).deps.store.page(
        status=query.status.value if query.status else None,
        plan=query.plan,
        limit=query.limit,
        offset=query.offset,
    )
    return _json(
        TenantPage(
            items=[TenantOut.of(t) for t in items],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )
    )


async def get_tenant(request: web.Request) -> web.Response:
    return await _detail(request, _tenant_id(request))


async def extend_tenant(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    key = _idempotency_key(request)
    body = await _body(request, ExtendIn)
    await _master(request).fleet.extend(tenant_id, body.days, key, actor=ACTOR)
    return await _detail(request, tenant_id)


async def start_tenant(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    await _master(request).fleet.start(tenant_id, actor=ACTOR)
    return await _detail(request, tenant_id)


async def stop_tenant(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    await _master(request).fleet.stop(tenant_id, actor=ACTOR)
    return await _detail(request, tenant_id)


async def restart_tenant(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    await _master(request).fleet.restart(tenant_id, actor=ACTOR)
    return await _detail(request, tenant_id)


async def suspend_tenant(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    await _master(request).fleet.suspend(tenant_id, actor=ACTOR, reason="operator request")
    return await _detail(request, tenant_id)


async def resume_tenant(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    await _master(request).fleet.resume(tenant_id, actor=ACTOR)
    return await _detail(request, tenant_id)


async def delete_tenant(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    query = _query(request, DeleteQuery)
    tenant, backup = await _master(request).fleet.delete(
        tenant_id, actor=ACTOR, backup=query.backup
    )
    return _json(DeletedOut(**TenantOut.of(tenant).model_dump(), backup_file=backup))


async def tenant_logs(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    query = _query(request, LogsQuery)
    text = await _master(request).fleet.logs(tenant_id, query.lines)
    return web.Response(text=text, content_type="text/plain")


async def _check(name: str, probe: Any) -> tuple[str, CheckOut]:
    try:
        await asyncio.wait_for(probe, 5.0)
    except Exception as exc:
        return name, CheckOut(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])
    return name, CheckOut(ok=True)


async def health(request: web.Request) -> web.Response:
    master = _master(request)
    deps = master.deps

    async def postgres() -> None:
        async with deps.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def redis() -> None:
        await deps.redis.ping()

    results = await asyncio.gather(
        _check("postgres", postgres()),
        _check("redis", redis()),
        _check(f"deploy_backend:{deps.backend.name}", deps.backend.ping()),
    )
    checks = dict(results)
    ok = all(c.ok for c in checks.values())
    return _json(HealthOut(status="ok" if ok else "degraded", checks=checks), 200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    deps = _master(request).deps
    counts = await deps.store.counts_by_status()
    return web.Response(
        body=deps.metrics.render(counts).encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])
