"""Thin aiohttp handlers: parse and validate, call the business rules, shape the answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ValidationError

from core.secrets import SecretDecryptionError
from core.tenant_id import TENANT_ID_RE
from database.servers import describe
from master_bot.api.errors import ApiError, from_validation
from master_bot.api.models import (
    CheckOut,
    DbMoveIn,
    DbMoveOut,
    DbServerIn,
    DbServerList,
    DbServerOut,
    DbServerPatch,
    DeletedOut,
    DeleteQuery,
    ExtendIn,
    HealthOut,
    HealthQuery,
    ListQuery,
    LogsQuery,
    PlacementIn,
    PlacementOut,
    PlanIn,
    ProvisionIn,
    TableSumOut,
    TenantOut,
    TenantPage,
    TenantsHealthOut,
    UpgradeIn,
    UpgradeOut,
)
from master_bot.dbmove import move_to_server
from master_bot.dbservers import DbServer, ServerStore, admin_dsn, register, set_accepting
from master_bot.deploy.base import DeployError, RuntimeState, RuntimeStatus
from master_bot.errors import NotFoundError
from master_bot.metrics import FleetState, Snapshot
from master_bot.placement import move
from master_bot.plan import change_plan
from master_bot.services import Master

if TYPE_CHECKING:
    from master_bot.deps import Deps

log = logging.getLogger(__name__)
MASTER: web.AppKey[Master] = web.AppKey("master")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
ACTOR = "api"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}\Z")
M = TypeVar("M", bound=BaseModel)


def _master(request: web.Request) -> Master:
    return request.app[MASTER]


def _tenant_id(request: web.Request) -> str:
    tenant_id = request.match_info["tenant_id"]
    if not TENANT_ID_RE.fullmatch(tenant_id):
        raise NotFoundError(f"no tenant {tenant_id[:40]!r} (ids look like client_001)")
    return tenant_id


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise ApiError(
            400, "idempotency_key_required", "this request needs an Idempotency-Key header"
        )
    if not _KEY_RE.fullmatch(key):
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


class KeyLocks:
    """One asyncio.Lock per Idempotency-Key while requests with that key are in flight.

    Requests with one key take turns, so a second request sees what the first one did (the
    same body: its tenant, 200; another body: 409) instead of racing it to Telegram and the
    token check. Across processes the database decides (TenantStore.allocate); this only makes
    the answers of one master the ones a client expects.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


KEY_LOCKS: web.AppKey[KeyLocks] = web.AppKey("idempotency_key_locks")


async def create_tenant(request: web.Request) -> web.Response:
    key = _idempotency_key(request)
    body = await _body(request, ProvisionIn)
    order = body.to_order()
    async with request.app[KEY_LOCKS](key):
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


async def change_tenant_plan(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    key = _idempotency_key(request)
    body = await _body(request, PlanIn)
    async with request.app[KEY_LOCKS](key):
        await change_plan(_master(request).deps, tenant_id, body.plan, key, actor=ACTOR)
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


async def move_tenant(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    body = await _body(request, PlacementIn)
    master = _master(request)
    tenant, placement = await move(master.deps, tenant_id, body.placement, actor=ACTOR)
    runtime = await master.fleet.runtime(tenant_id)
    out = TenantOut.of(tenant, runtime).model_dump()
    return _json(PlacementOut(**out, placement=placement))


async def list_db_servers(request: web.Request) -> web.Response:
    deps = _master(request).deps
    found = await ServerStore(deps.pool).list()
    return _json(DbServerList(items=[_db_server(deps, s) for s in found]))


async def register_db_server(request: web.Request) -> web.Response:
    body = await _body(request, DbServerIn)
    deps = _master(request).deps
    found = await register(deps, body.name, body.dsn, body.tenant_dsn, actor=ACTOR)
    return _json(_db_server(deps, found), 201)


async def patch_db_server(request: web.Request) -> web.Response:
    name = request.match_info["db_server"]
    body = await _body(request, DbServerPatch)
    deps = _master(request).deps
    found = await set_accepting(deps, name, body.accepting, actor=ACTOR)
    return _json(_db_server(deps, found))


def _db_server(deps: Deps, found: DbServer) -> DbServerOut:
    try:
        address = describe(admin_dsn(deps, found))
    except SecretDecryptionError:
        address = "(its DSN does not decrypt: a key missing from ENCRYPTION_KEYS)"
    return DbServerOut(
        name=found.name,
        address=address,
        tenants=found.tenants,
        accepting=found.accepting,
    )


async def move_tenant_db(request: web.Request) -> web.Response:
    tenant_id = _tenant_id(request)
    body = await _body(request, DbMoveIn)
    master = _master(request)
    report = await move_to_server(master.deps, tenant_id, body.db_server, actor=ACTOR)
    out = TenantOut.of(report.tenant, await master.fleet.runtime(tenant_id)).model_dump()
    return _json(
        DbMoveOut(
            **out,
            moved_from=report.source,
            moved=report.moved,
            seconds=round(report.seconds, 3),
            rows=report.rows,
            tables=len(report.tables),
            checksums={
                name: TableSumOut(rows=sums.rows, md5=sums.md5)
                for name, sums in report.tables.items()
            },
            old_copy_dropped=report.old_copy_dropped,
        )
    )


def _upgrade(progress: Any, status: int = 200) -> web.Response:
    return _json(UpgradeOut.model_validate(progress.as_dict()), status)


async def start_upgrade(request: web.Request) -> web.Response:
    body = await _body(request, UpgradeIn)
    upgrades = _master(request).upgrades
    return _upgrade(await upgrades.start(body.image, migrate=body.migrate, actor=ACTOR), 202)


async def current_upgrade(request: web.Request) -> web.Response:
    return _upgrade(_master(request).upgrades.snapshot())


async def pause_upgrade(request: web.Request) -> web.Response:
    return _upgrade(await _master(request).upgrades.pause(ACTOR))


async def resume_upgrade(request: web.Request) -> web.Response:
    return _upgrade(await _master(request).upgrades.resume(ACTOR))


async def rollback_upgrade(request: web.Request) -> web.Response:
    return _upgrade(await _master(request).upgrades.rollback(ACTOR))


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


async def _active_tenants(deps: Deps) -> list[str]:
    """Ids of the tenants whose bot should run (status active), in number order."""
    async with deps.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT tenant_id FROM control.tenants WHERE status = 'active' ORDER BY number"
        )
    return [row["tenant_id"] for row in rows]


def _fleet_state(
    deps: Deps, active: list[str], runtimes: Mapping[str, RuntimeStatus]
) -> FleetState:
    """Active tenants vs the backend's runtimes. A tenant an operation holds right now (a
    deploy, a restart) is not counted as down: it is being worked on."""
    running = {
        t for t in active if (r := runtimes.get(t)) is not None and r.state is RuntimeState.RUNNING
    }
    down = [t for t in active if t not in running and not deps.locks.busy(t)]
    return FleetState(should_run=len(active), running=len(running), down=down)


async def health(request: web.Request) -> web.Response:
    """Dependencies (PostgreSQL, Redis, the deploy backend) and the bots: 503 when a dependency
    fails or a tenant that should run is not running."""
    query = _query(request, HealthQuery)
    master = _master(request)
    deps = master.deps
    active: list[str] | None = None
    runtimes: dict[str, RuntimeStatus] | None = None

    async def postgres() -> None:
        nonlocal active
        active = await _active_tenants(deps)

    async def redis() -> None:
        await deps.redis.ping()

    async def backend() -> None:
        nonlocal runtimes
        await deps.backend.ping()
        runtimes = await deps.backend.list()

    results = await asyncio.gather(
        _check("postgres", postgres()),
        _check("redis", redis()),
        _check(f"deploy_backend:{deps.backend.name}", backend()),
    )
    checks = dict(results)
    fleet = None
    if active is not None and runtimes is not None:
        fleet = _fleet_state(deps, active, runtimes)
    ok = all(c.ok for c in checks.values())
    if query.fleet:
        ok = ok and fleet is not None and not fleet.down
    answer = HealthOut(
        status="ok" if ok else "degraded",
        checks=checks,
        tenants=TenantsHealthOut.of(fleet) if fleet is not None else None,
    )
    return _json(answer, 200 if ok else 503)


_ORDER_STATUSES = ("pending", "paid", "canceled", "refunded")
_UNDELIVERED_AFTER = "15 minutes"
# Whole-database backups of scripts/backup/: `<db>-<stamp>.dump` or a per-schema `<db>-<stamp>.d`
# (`<tenant>-<stamp>.dump` are single-tenant dumps and the final backups of deleted tenants).
_BACKUP_RE = re.compile(r"^(?!client_[0-9]+-).+-([0-9]{8}T[0-9]{12})Z(?:\.dump|\.d)\Z")


async def _orders(deps: Deps) -> tuple[dict[str, int] | None, int | None]:
    try:
        async with deps.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT status, count(*) AS n FROM control.sales_orders GROUP BY status"
            )
            late = await conn.fetchval(
                "SELECT count(*) FROM control.sales_orders WHERE status = 'paid'"
                " AND fulfilled_at IS NULL"
                f" AND paid_at < now() - interval '{_UNDELIVERED_AFTER}'"
            )
    except asyncpg.UndefinedTableError:  # a database without the sales tables
        return None, None
    counts = dict.fromkeys(_ORDER_STATUSES, 0)
    counts.update({row["status"]: int(row["n"]) for row in rows})
    return counts, int(late)


def _last_backup(folder: Path) -> float:
    """Unix time (from the file name) of the newest whole-database backup; 0.0 when none."""
    newest = 0.0
    try:
        names = os.listdir(folder)
    except OSError:
        return newest
    for name in names:
        match = _BACKUP_RE.match(name)
        if match is None:
            continue
        try:
            stamp = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
        except ValueError:
            continue
        newest = max(newest, stamp.timestamp())
    return newest


async def metrics(request: web.Request) -> web.Response:
    deps = _master(request).deps
    snapshot = Snapshot(tenants_by_status=await deps.store.counts_by_status())
    try:
        active = await _active_tenants(deps)
        runtimes = await asyncio.wait_for(deps.backend.list(), 5.0)
    except (DeployError, OSError, TimeoutError) as exc:
        log.warning("metrics: the deploy backend did not answer: %s", type(exc).__name__)
        snapshot.backend_up = False
    else:
        snapshot.backend_up = True
        snapshot.fleet = _fleet_state(deps, active, runtimes)
    snapshot.orders_by_status, snapshot.orders_paid_undelivered = await _orders(deps)
    snapshot.backup_last_success = await asyncio.to_thread(_last_backup, deps.config.backups_dir)
    return web.Response(
        body=deps.metrics.render(snapshot).encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])
