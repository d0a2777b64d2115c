"""Lifecycle of provisioned tenants: start, stop, restart, suspend, resume, extend, delete.

Each operation first records the new desired state (status + audit row) and then makes the
runtime follow; when the runtime part fails the reconciler finishes it later. Operations on one
tenant take turns (a per-tenant lock shared with provisioning and the reconciler).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from core.logs import redact
from database.redis_tenants import (
    create_tenant_redis_user,
    disable_tenant_redis_user,
    remove_tenant_redis,
)
from database.tenants import disable_tenant_login, drop_tenant_database, enable_tenant_login
from master_bot.backup import BackupError, dump_schema
from master_bot.dbservers import admin_dsn, server, tenant_admin
from master_bot.deploy.base import DeployError, RuntimeState, RuntimeStatus
from master_bot.deps import Deps
from master_bot.errors import ConflictError, NotFoundError, UnavailableError
from master_bot.folder import remove_client_folder
from master_bot.ingress import ensure_secret, publish, withdraw
from master_bot.spec import build_spec
from master_bot.store import IdempotentRequest, Step, TenantRecord, TenantStatus

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
EXTEND_SCOPE = "extend"
_RUNNABLE = (TenantStatus.ACTIVE, TenantStatus.STOPPED)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Fleet:
    def __init__(self, deps: Deps, *, clock: Clock = utc_now) -> None:
        self.deps = deps
        self.clock = clock

    # ------------------------------------------------------------------ reads
    async def get(self, tenant_id: str) -> TenantRecord:
        tenant = await self.deps.store.get(tenant_id)
        if tenant is None:
            raise NotFoundError(f"no tenant {tenant_id}")
        return tenant

    async def runtime(self, tenant_id: str) -> RuntimeStatus | None:
        try:
            return await self.deps.backend.status(tenant_id)
        except DeployError as exc:
            return RuntimeStatus(tenant_id, RuntimeState.MISSING, detail=str(exc))

    async def logs(self, tenant_id: str, lines: int) -> str:
        await self.get(tenant_id)
        try:
            return redact(await self.deps.backend.logs(tenant_id, lines))
        except DeployError as exc:
            raise UnavailableError("backend_unavailable", str(exc)) from None

    # ------------------------------------------------------------------ helpers
    async def _transition(
        self,
        tenant_id: str,
        to: TenantStatus,
        expect: Sequence[TenantStatus],
        *,
        actor: str,
        action: str,
        details: dict[str, object] | None = None,
    ) -> TenantRecord:
        tenant = await self.get(tenant_id)
        if tenant.status is to and to is not TenantStatus.ACTIVE:
            return tenant  # already there: idempotent
        changed = await self.deps.store.set_status(
            tenant_id, to, actor=actor, action=action, details=details, expect=expect
        )
        if changed is None:
            current = await self.get(tenant_id)
            raise ConflictError(
                "invalid_state",
                f"{tenant_id} is {current.status.value}; {action} needs it to be "
                + " or ".join(s.value for s in expect),
                details={"status": current.status.value},
            )
        self.deps.on_change()
        return changed

    async def _run_bot(self, tenant: TenantRecord, *, restart: bool = False) -> None:
        deps = self.deps
        tenant = await ensure_secret(deps, tenant)  # with WEBHOOK_BASE_URL
        try:
            if restart:
                try:
                    await deps.backend.restart(tenant.tenant_id)
                    deps.metrics.deployed("restart")
                    await publish(deps, tenant)
                    return
                except DeployError:
                    await deps.backend.stop(tenant.tenant_id)
            await deps.backend.deploy(build_spec(deps.config, deps.box, tenant))
            deps.metrics.deployed("deploy")
            await publish(deps, tenant)  # the route and setWebhook (or none, when it polls)
        except DeployError as exc:
            deps.metrics.failed("deploy")
            await deps.store.record_error(
                tenant.tenant_id, str(exc), actor="master", action="runtime.failed"
            )
            raise UnavailableError(
                "runtime_failed",
                f"{tenant.tenant_id}: {exc}; the reconciler keeps trying",
            ) from None

    async def _stop_bot(self, tenant_id: str) -> None:
        try:
            await self.deps.backend.stop(tenant_id)
            self.deps.metrics.deployed("stop")
        except DeployError as exc:
            self.deps.metrics.failed("deploy")
            raise UnavailableError(
                "runtime_failed", f"{tenant_id}: {exc}; the reconciler keeps trying"
            ) from None

    # ------------------------------------------------------------------ operations
    async def start(self, tenant_id: str, *, actor: str) -> TenantRecord:
        async with self.deps.locks(tenant_id):
            tenant = await self._transition(
                tenant_id, TenantStatus.ACTIVE, _RUNNABLE, actor=actor, action="tenant.start"
            )
            await self._run_bot(tenant)
        return tenant

    async def stop(self, tenant_id: str, *, actor: str) -> TenantRecord:
        async with self.deps.locks(tenant_id):
            tenant = await self._transition(
                tenant_id, TenantStatus.STOPPED, _RUNNABLE, actor=actor, action="tenant.stop"
            )
            await withdraw(self.deps, tenant)
            await self._stop_bot(tenant_id)
        return tenant

    async def restart(self, tenant_id: str, *, actor: str) -> TenantRecord:
        async with self.deps.locks(tenant_id):
            tenant = await self.get(tenant_id)
            if tenant.status is not TenantStatus.ACTIVE:
                raise ConflictError(
                    "invalid_state",
                    f"{tenant_id} is {tenant.status.value}; restart needs it to be active",
                    details={"status": tenant.status.value},
                )
            await self.deps.store.audit(actor, tenant_id, "tenant.restart", {})
            await self._run_bot(tenant, restart=True)
        return tenant

    async def suspend(self, tenant_id: str, *, actor: str, reason: str = "") -> TenantRecord:
        """The bot stops and its logins are disabled; every byte of data stays."""
        async with self.deps.locks(tenant_id):
            tenant = await self._transition(
                tenant_id,
                TenantStatus.SUSPENDED,
                (*_RUNNABLE, TenantStatus.FAILED),
                actor=actor,
                action="tenant.suspend",
                details={"reason": reason} if reason else None,
            )
            await withdraw(self.deps, tenant)
            await self._stop_bot(tenant_id)
            await self._lock_out(tenant)
        return tenant

    async def _lock_out(self, tenant: TenantRecord) -> None:
        deps = self.deps
        if tenant.step_done(Step.DATABASE):
            async with tenant_admin(deps, tenant) as conn:
                await disable_tenant_login(conn, tenant.tenant_id, deps.config.fleet_name)
        if tenant.step_done(Step.REDIS):
            await disable_tenant_redis_user(deps.redis, tenant.tenant_id, deps.config.fleet_name)

    async def _let_in(self, tenant: TenantRecord) -> None:
        deps = self.deps
        async with tenant_admin(deps, tenant) as conn:
            await enable_tenant_login(conn, tenant.tenant_id, deps.config.fleet_name)
        if tenant.redis_password_enc:
            await create_tenant_redis_user(
                deps.redis,
                tenant.tenant_id,
                server_url=deps.config.tenant_redis_url,
                password=deps.box.decrypt(tenant.tenant_id, tenant.redis_password_enc),
                fleet=deps.config.fleet_name,
                mark=deps.config.fleet_mark,
            )

    def _expired(self, tenant: TenantRecord, now: datetime) -> bool:
        grace = timedelta(days=self.deps.config.grace_days)
        return tenant.expires_at is not None and tenant.expires_at + grace <= now

    async def resume(self, tenant_id: str, *, actor: str, force: bool = False) -> TenantRecord:
        async with self.deps.locks(tenant_id):
            return await self._resume(tenant_id, actor=actor, force=force)

    async def _resume(self, tenant_id: str, *, actor: str, force: bool) -> TenantRecord:
        tenant = await self.get(tenant_id)
        if (
            tenant.status is TenantStatus.SUSPENDED
            and not force
            and self._expired(tenant, self.clock())
        ):
            raise ConflictError(
                "subscription_expired",
                f"the subscription of {tenant_id} ended on {tenant.expires_at:%Y-%m-%d}; "
                "extend it first",
                details={"expires_at": tenant.expires_at},
            )
        tenant = await self._transition(
            tenant_id,
            TenantStatus.ACTIVE,
            (TenantStatus.SUSPENDED,),
            actor=actor,
            action="tenant.resume",
        )
        await self._let_in(tenant)
        await self._run_bot(tenant)
        return tenant

    async def extend(
        self, tenant_id: str, days: int, idempotency_key: str, *, actor: str
    ) -> tuple[TenantRecord, bool]:
        """Add `days` (once per key); a suspended tenant whose time is now paid resumes."""
        tenant = await self.get(tenant_id)
        if tenant.status in (TenantStatus.DELETED, TenantStatus.PROVISIONING):
            raise ConflictError(
                "invalid_state",
                f"{tenant_id} is {tenant.status.value}; it cannot be extended",
                details={"status": tenant.status.value},
            )
        request = IdempotentRequest(f"{EXTEND_SCOPE}:{tenant_id}", idempotency_key, f"days={days}")
        known = await self.deps.store.key_record(request)
        if known is not None and known.request_sha256 != request.request_sha256:
            raise ConflictError(
                "idempotency_key_reused", "this Idempotency-Key was used for a different request"
            )
        async with self.deps.locks(tenant_id):
            tenant, applied = await self.deps.store.extend(
                request, tenant_id, days, now=self.clock(), actor=actor
            )
            if tenant.status is TenantStatus.SUSPENDED and not self._expired(tenant, self.clock()):
                tenant = await self._resume(tenant_id, actor=actor, force=False)
        self.deps.on_change()
        return tenant, applied

    async def delete(
        self, tenant_id: str, *, actor: str, backup: bool
    ) -> tuple[TenantRecord, str | None]:
        """Remove runtime, data and credentials; returns (tenant, backup file name)."""
        deps = self.deps
        async with deps.locks(tenant_id):
            tenant = await self.get(tenant_id)
            if tenant.status is TenantStatus.DELETED:
                return tenant, None
            backup_file = None
            if backup and tenant.step_done(Step.MIGRATIONS):
                try:
                    backup_file = await dump_schema(
                        admin_dsn(deps, await server(deps, tenant.db_server)),
                        tenant_id,
                        deps.config.backups_dir,
                        pg_dump=deps.config.pg_dump,
                    )
                except BackupError as exc:
                    deps.metrics.failed("backup")
                    raise UnavailableError("backup_failed", str(exc)) from None
            try:
                await deps.backend.remove(tenant_id)
            except DeployError as exc:
                raise UnavailableError("runtime_failed", str(exc)) from None
            if tenant.step_done(Step.REDIS) or tenant.redis_password_enc:
                await remove_tenant_redis(
                    deps.redis, tenant_id, drop_data=True, fleet=deps.config.fleet_name
                )
            async with tenant_admin(deps, tenant) as conn:
                await drop_tenant_database(
                    conn, tenant_id, drop_data=True, fleet=deps.config.fleet_name
                )
            await remove_client_folder(deps.config, tenant_id)
            deleted = await deps.store.set_status(
                tenant_id,
                TenantStatus.DELETED,
                actor=actor,
                action="tenant.delete",
                details={"backup": backup_file.name if backup_file else None},
            )
            if deleted is not None:
                await withdraw(deps, deleted)  # before the token is forgotten
            await deps.store.forget_secrets(tenant_id)
        deps.on_change()
        assert deleted is not None
        return deleted, backup_file.name if backup_file else None
