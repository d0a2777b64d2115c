"""Changing a tenant's plan (`POST /api/v1/tenants/{id}/plan`, issue 17): the sales bot asks for
it once an upgrade is paid, or when a renewal that carries a downgrade starts its period.

The plan is a column of `control.tenants`; the bot's features come from it (`PLAN_FEATURES` in
master_bot/spec.py), so an active bot is re-deployed from the new spec at once. When that fails
the plan stays changed and the reconciler sees the runtime's old spec as drift and re-deploys it.
Once per Idempotency-Key (the sales bot's order id): a retry returns the tenant as it is.
"""

from __future__ import annotations

import logging

from master_bot.deploy.base import DeployError
from master_bot.deps import Deps
from master_bot.errors import ConflictError, NotFoundError, RejectedError
from master_bot.spec import build_spec
from master_bot.store import IdempotentRequest, Step, TenantRecord, TenantStatus

log = logging.getLogger(__name__)

PLAN_SCOPE = "plan"


async def change_plan(
    deps: Deps, tenant_id: str, plan: str, idempotency_key: str, *, actor: str
) -> tuple[TenantRecord, bool]:
    """Switch `tenant_id` to `plan` (a plan of the catalogue); (tenant, applied now)."""
    if deps.config.plans.get(plan) is None:
        raise RejectedError("unknown_plan", f"there is no plan {plan!r} in the plan catalogue")
    tenant = await deps.store.get(tenant_id)
    if tenant is None:
        raise NotFoundError(f"no tenant {tenant_id}")
    if tenant.status in (TenantStatus.DELETED, TenantStatus.PROVISIONING):
        raise ConflictError(
            "invalid_state",
            f"{tenant_id} is {tenant.status.value}; its plan cannot be changed",
            details={"status": tenant.status.value},
        )
    request = IdempotentRequest(f"{PLAN_SCOPE}:{tenant_id}", idempotency_key, f"plan={plan}")
    async with deps.locks(tenant_id):
        tenant, applied = await deps.store.change_plan(request, tenant_id, plan, actor=actor)
        if applied and tenant.status is TenantStatus.ACTIVE and tenant.provision_step is Step.DONE:
            try:
                await deps.backend.deploy(build_spec(deps.config, deps.box, tenant))
                deps.metrics.deployed("plan")
            except DeployError as exc:  # the reconciler re-deploys the drifted runtime later
                deps.metrics.failed("deploy")
                log.warning("%s: plan %s recorded, re-deploy failed: %s", tenant_id, plan, exc)
    deps.on_change()
    return tenant, applied
