"""Provisioning: the step machine that turns a paid order into a running tenant.

    validate token (getMe) -> allocate id (and a PostgreSQL server: the least loaded one)
    -> database (schema+role, on that server) -> migrations -> redis
    (ACL user) -> files (clients/<id>/) -> runtime (started) -> done (status active)

Every step is idempotent and its completion is recorded in `control.tenants.provision_step`, so
a retry (the same Idempotency-Key) or the reconciler picks up after the last completed step;
a step that ran but was not recorded simply runs again. Passwords are generated once and stored
encrypted before they are used, so a repeated step sets the same password again.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from core.logs import redact
from core.tenant_id import validate_tenant_id
from database.migrator import migrate_tenant
from database.redis_tenants import create_tenant_redis_user
from database.tenants import create_tenant_database
from master_bot.alert import AlertKind
from master_bot.dbservers import placed_answering, tenant_admin
from master_bot.deploy.base import DeployError
from master_bot.deps import Deps
from master_bot.errors import ConflictError, NotFoundError, RejectedError, UnavailableError
from master_bot.folder import write_client_folder
from master_bot.ingress import ensure_secret, publish
from master_bot.orders import ProvisionOrder as ProvisionOrder  # re-exported
from master_bot.spec import build_spec, tenant_server_url
from master_bot.store import (
    STEPS,
    IdempotentRequest,
    NewTenant,
    Step,
    TenantRecord,
    TenantStatus,
    TokenInUseError,
)
from master_bot.telegram import TelegramUnavailableError, TokenRejectedError

log = logging.getLogger(__name__)

PROVISION_SCOPE = "provision"
FaultHook = Callable[[str, Step], Awaitable[None]]


class ProvisionIncompleteError(UnavailableError):
    """A step failed; the tenant stays `provisioning` and a retry/the reconciler completes it."""


async def _no_fault(tenant_id: str, step: Step) -> None:
    return None


class Provisioner:
    def __init__(self, deps: Deps, *, fault: FaultHook | None = None) -> None:
        self.deps = deps
        # Test hook: runs after a step's work and before it is recorded (a crash window).
        self.fault: FaultHook = fault or _no_fault

    async def provision(
        self, order: ProvisionOrder, idempotency_key: str, *, actor: str
    ) -> tuple[TenantRecord, bool]:
        """Provision (or finish provisioning) the tenant of `idempotency_key`.

        Returns (tenant, created_now). Raises RejectedError (token), ConflictError (token of
        another tenant, key reused with another body), ProvisionIncompleteError (a step failed).
        """
        store = self.deps.store
        request = IdempotentRequest(PROVISION_SCOPE, idempotency_key, order.fingerprint())
        known = await store.key_record(request)
        if known is not None and known.request_sha256 not in (None, request.request_sha256):
            raise ConflictError(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
        if known is not None and known.tenant_id is not None:
            return await self.complete(known.tenant_id, actor=actor), False

        try:
            identity = await self.deps.telegram.check_token(order.bot_token)
        except TokenRejectedError as exc:
            raise RejectedError("invalid_bot_token", str(exc)) from None
        except TelegramUnavailableError as exc:
            raise UnavailableError("telegram_unavailable", str(exc)) from None
        owner = await store.by_token(identity.token_sha256)
        if owner is not None:
            raise ConflictError(
                "bot_token_in_use", "this bot token is already used by another tenant"
            )
        new = NewTenant(
            plan=order.plan,
            period_days=order.period_days,
            business_name=order.business_name,
            owner_telegram_id=order.owner_telegram_id,
            locale=order.locale,
            timezone=order.timezone,
            bot_id=identity.bot_id,
            bot_username=identity.username,
            bot_token_sha256=identity.token_sha256,
            category=order.category,
        )
        box = self.deps.box
        try:
            tenant, created = await store.allocate(
                request,
                new,
                actor=actor,
                seal=lambda tid: box.encrypt(tid, order.bot_token),
            )
        except TokenInUseError:
            raise ConflictError(
                "bot_token_in_use", "this bot token is already used by another tenant"
            ) from None
        if created:
            log.info("allocated %s for @%s", tenant.tenant_id, identity.username)
        return await self.complete(tenant.tenant_id, actor=actor), created

    async def complete(self, tenant_id: str, *, actor: str) -> TenantRecord:
        """Run the steps after the last completed one; a no-op for a finished tenant."""
        validate_tenant_id(tenant_id)
        async with self.deps.locks(tenant_id):
            tenant = await self.deps.store.get(tenant_id)
            if tenant is None:
                raise NotFoundError(f"no tenant {tenant_id}")
            if tenant.status is not TenantStatus.PROVISIONING:
                return tenant
            start = STEPS.index(tenant.provision_step) + 1
            for step in STEPS[start:]:
                try:
                    tenant = await self._run(step, tenant)
                    await self.fault(tenant_id, step)
                except Exception as exc:
                    await self._failed(tenant_id, step, exc, actor=actor)
                    raise ProvisionIncompleteError(
                        "provisioning_incomplete",
                        f"provisioning of {tenant_id} stopped at step {step.value!r}: "
                        f"{_describe(exc)}; retry the request (same Idempotency-Key) or let the "
                        "reconciler finish it",
                        details={"tenant_id": tenant_id, "step": step.value},
                    ) from exc
                tenant = await self.deps.store.complete_step(tenant_id, step, actor=actor)
        self.deps.metrics.provisioned += 1
        self.deps.on_change()
        await self.deps.alerts.alert(
            AlertKind.PROVISIONED,
            tenant_id,
            f"{tenant_id} (@{tenant.bot_username}, plan {tenant.plan}) is live",
        )
        return tenant

    async def _failed(self, tenant_id: str, step: Step, exc: BaseException, *, actor: str) -> None:
        self.deps.metrics.failed("provision")
        message = f"step {step.value}: {_describe(exc)}"
        log.warning("provisioning of %s failed at %s: %s", tenant_id, step.value, _describe(exc))
        try:
            await self.deps.store.record_error(
                tenant_id, message, actor=actor, action="provision.failed"
            )
        except Exception:
            log.exception("could not record the provisioning failure of %s", tenant_id)
        await self.deps.alerts.alert(
            AlertKind.PROVISION_FAILED, tenant_id, f"provisioning {tenant_id} failed: {message}"
        )

    async def _secret(self, tenant: TenantRecord, column: str) -> tuple[TenantRecord, str]:
        """The tenant's stored password of `column`, generating and storing it the first time."""
        box = self.deps.box
        current = getattr(tenant, column)
        if current is None:
            candidate = box.encrypt(tenant.tenant_id, secrets.token_urlsafe(24))
            tenant = await self.deps.store.set_secret(tenant.tenant_id, column, candidate)
            current = getattr(tenant, column)
        return tenant, box.decrypt(tenant.tenant_id, current)

    async def _run(self, step: Step, tenant: TenantRecord) -> TenantRecord:
        deps = self.deps
        tid = tenant.tenant_id
        if step is Step.DATABASE:
            tenant, password = await self._secret(tenant, "db_password_enc")
            # On the server placement chose when the tenant was allocated, or the next least
            # loaded one when that one does not answer (master_bot/dbservers.py).
            tenant = await placed_answering(deps, tenant, actor="provisioning")
            async with tenant_admin(deps, tenant) as conn:
                await create_tenant_database(
                    conn,
                    tid,
                    server_dsn=tenant_server_url(deps.config, deps.box, tenant),
                    password=password,
                    migrate=False,
                    fleet=deps.config.fleet_name,
                )
        elif step is Step.MIGRATIONS:
            async with tenant_admin(deps, tenant) as conn:
                await migrate_tenant(conn, tid, fleet=deps.config.fleet_name)
        elif step is Step.REDIS:
            tenant, password = await self._secret(tenant, "redis_password_enc")
            await create_tenant_redis_user(
                deps.redis,
                tid,
                server_url=deps.config.tenant_redis_url,
                password=password,
                fleet=deps.config.fleet_name,
                mark=deps.config.fleet_mark,
            )
        elif step is Step.FILES:
            await write_client_folder(deps.config, tenant)
        elif step is Step.RUNTIME:
            tenant = await ensure_secret(deps, tenant)  # the webhook's, with WEBHOOK_BASE_URL
            spec = build_spec(deps.config, deps.box, tenant)
            try:
                await deps.backend.deploy(spec)
            except DeployError:
                deps.metrics.failed("deploy")
                raise
            deps.metrics.deployed("deploy")
            await publish(deps, tenant)  # its route and setWebhook, once it listens
        return tenant


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}" if not isinstance(exc, DeployError) else text)
