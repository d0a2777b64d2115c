"""Moving a tenant between placements (`dedicated` ⇄ `shared`), without losing anything.

Both placements run the same client code on the same tenant schema and Redis key prefix, so a
move is only: record the placement, stop the old runtime, confirm it stopped, start the new one
(PlacedBackend.deploy does the last three, under the tenant's lock), then point the proxy's
route at the new runtime (master_bot/ingress.py: a webhook's URL and secret do not change;
hub processes poll, so a move into one deletes the webhook). Telegram keeps updates
that arrive meanwhile until the new runtime asks for them; FSM state and bookings stay where
they are. A master killed in the middle: the row already says where the tenant goes, and the
reconciler sees its runtime on the wrong side as drift and finishes the move.
"""

from __future__ import annotations

from master_bot.deploy.base import DeployError
from master_bot.deploy.hub import PlacedBackend
from master_bot.deps import Deps
from master_bot.errors import ConflictError, NotFoundError, UnavailableError
from master_bot.ingress import ensure_secret, publish
from master_bot.spec import build_spec, placement
from master_bot.store import Step, TenantRecord, TenantStatus


async def move(deps: Deps, tenant_id: str, to: str, *, actor: str) -> tuple[TenantRecord, str]:
    """Set the tenant's placement and, when its bot should run, move the runtime now; returns
    the tenant and its placement."""
    if await deps.store.get(tenant_id) is None:
        raise NotFoundError(f"no tenant {tenant_id}")
    if to == "shared" and not isinstance(deps.backend, PlacedBackend):
        raise ConflictError(
            "no_hubs",
            f"this master's backend ({deps.backend.name}) runs no hubs: the shared placement "
            "needs DEPLOY_BACKEND=docker or process (Swarm services run no hubs yet)",
        )
    async with deps.locks(tenant_id):
        changed = await deps.store.set_placement(tenant_id, to, actor=actor)
        if changed is None:
            raise NotFoundError(f"no tenant {tenant_id}")
        tenant, _ = changed
        deps.on_change()
        if tenant.status is TenantStatus.ACTIVE and tenant.provision_step is Step.DONE:
            tenant = await ensure_secret(deps, tenant)
            try:
                await deps.backend.deploy(build_spec(deps.config, deps.box, tenant))
                deps.metrics.deployed("move")
                await publish(deps, tenant)  # the route to its new runtime, and its webhook
            except DeployError as exc:
                deps.metrics.failed("deploy")
                await deps.store.record_error(
                    tenant_id, str(exc), actor=actor, action="runtime.move_failed"
                )
                raise UnavailableError(
                    "runtime_failed", f"{tenant_id}: {exc}; the reconciler keeps trying"
                ) from None
    return tenant, placement(deps.config, tenant)
