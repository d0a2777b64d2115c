"""Another period of an owner's bot, paid on YooKassa's page: the order and its payment, made
one way for both doors that sell it — the "Extend" button of /subscription
(`handlers/subscription.py`) and the owner's web "Renew / pay", which asks the sales bot over
its internal endpoint (`internal_routes`, bearer SALES_INTERNAL_TOKEN). Both open an 'extend'
order with `Billing.open_extension` and its payment with `Billing.checkout`, so the payment is
settled, and the master extends the tenant, exactly once by the same outbox.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sales_bot.billing import receipt_item
from sales_bot.context import SalesContext
from sales_bot.kassa import KassaError
from sales_bot.master import MasterError, Tenant
from sales_bot.orders import OrderStatus
from sales_bot.plans import Plan
from sales_bot.store import Order

log = logging.getLogger(__name__)
RENEW_PATH = "/internal/subscription/renew"


class NotOwned(Exception):
    """The tenant is not this owner's (or unknown)."""


class PlanGone(Exception):
    """The plan is no longer sold, or the owner never left an email."""


@dataclass(frozen=True, slots=True)
class Extension:
    order: Order
    plan: Plan


async def tenant_of(ctx: SalesContext, tenant_id: str) -> Tenant | None:
    try:
        return await asyncio.wait_for(ctx.master.get(tenant_id), 10)
    except (MasterError, TimeoutError):
        return None


async def owned_order(ctx: SalesContext, user_id: int, tenant_id: str) -> Order | None:
    orders = await ctx.store.tenants_of(user_id)
    return next((o for o in orders if o.tenant_id == tenant_id), None)


async def open_extension(
    ctx: SalesContext, user_id: int, tenant_id: str, locale: str, *, auto_renew: bool
) -> Extension:
    """The 'extend' order for the next period of the owner's tenant: on its plan, or on the
    lower plan the owner chose for the next period (from the current period's end)."""
    owned = await owned_order(ctx, user_id, tenant_id)
    if owned is None:
        raise NotOwned(tenant_id)
    tenant = await tenant_of(ctx, tenant_id)
    plan = ctx.catalog.get(tenant.plan if tenant else owned.plan) or ctx.catalog.get(owned.plan)
    sub = (await ctx.store.subscriptions_of(user_id)).get(tenant_id)
    lower = None  # a downgrade chosen for the next period (as `_next_period_plan` there)
    chosen = sub.next_plan if sub is not None else None
    if tenant and tenant.expires_at and chosen and (plan is None or plan.id != chosen):
        lower = ctx.catalog.get(chosen)
    email = await ctx.store.last_email(user_id)
    if plan is None or email is None:
        raise PlanGone(tenant_id)
    order = await ctx.billing.open_extension(
        user_id=user_id, locale=locale, plan=lower or plan, email=email, tenant=owned,
        auto_renew=auto_renew, cycle_end=tenant.expires_at if lower and tenant else None,
        plan_from=plan.id if lower else None,
    )  # fmt: skip
    return Extension(order, lower or plan)


async def checkout(ctx: SalesContext, order: Order) -> Order:
    """Create (or re-use) the order's YooKassa payment; KassaError when YooKassa refuses."""
    plan = ctx.catalog.get(order.plan)
    plan_name = plan.name("ru") if plan else order.plan
    return await ctx.billing.checkout(
        order,
        description=f"Botfleet: {plan_name}, {order.period_days} дн. ({order.order_id})",
        item=receipt_item(plan_name, order.period_days),
    )


class RenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=r"^client_[0-9]{1,12}$")
    user_id: int = Field(gt=0, description="the owner's Telegram id (the tenant's owner)")
    locale: str = Field("ru", pattern=r"^(ru|en)$")
    auto_renew: bool = False


def internal_routes(ctx: SalesContext, token: str) -> list[web.RouteDef]:
    """POST /internal/subscription/renew for the owner's web (bearer `token`): the order and
    its YooKassa payment for the next period, as "Extend" in /subscription makes them."""

    async def renew(request: web.Request) -> web.Response:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            body = RenewIn.model_validate_json(await request.read())
        except ValidationError as exc:
            return web.json_response({"error": "bad_request", "detail": str(exc)}, status=422)
        try:
            made = await open_extension(
                ctx, body.user_id, body.tenant_id, body.locale, auto_renew=body.auto_renew
            )
            order = await checkout(ctx, made.order)
        except NotOwned:
            return web.json_response({"error": "not_found"}, status=404)
        except PlanGone:
            return web.json_response({"error": "plan_gone"}, status=409)
        except KassaError as exc:
            log.warning("internal renew of %s: YooKassa: %s", body.tenant_id, exc)
            return web.json_response({"error": "kassa_unavailable"}, status=503)
        if order.status is not OrderStatus.PENDING or order.confirmation_url is None:
            return web.json_response({"error": "not_payable"}, status=409)
        log.info("renewal payment %s opened from the web for %s", order.order_id, body.tenant_id)
        return web.json_response(
            {
                "order_id": order.order_id,
                "confirmation_url": order.confirmation_url,
                "amount": str(order.amount),
                "currency": order.currency,
                "plan": order.plan,
                "period_days": order.period_days,
            }
        )

    return [web.post(RENEW_PATH, renew)]
