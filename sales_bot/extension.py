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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sales_bot.billing import PlanChange, receipt_item
from sales_bot.context import SalesContext
from sales_bot.kassa import KassaError, KassaUnavailableError, ReceiptView
from sales_bot.master import MasterError, Tenant
from sales_bot.orders import OrderStatus
from sales_bot.plans import Plan
from sales_bot.store import Order

log = logging.getLogger(__name__)
RENEW_PATH = "/internal/subscription/renew"
RECEIPT_PATH = "/internal/subscription/receipt"
PLANS_PATH = "/internal/subscription/plans"
PLAN_PATH = "/internal/subscription/plan"
M = TypeVar("M", bound=BaseModel)
WITH_RECEIPTS = frozenset({OrderStatus.PAID, OrderStatus.REFUNDED})


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


async def checkout(ctx: SalesContext, order: Order, return_url: str | None = None) -> Order:
    """Create (or re-use) the order's YooKassa payment; KassaError when YooKassa refuses.
    `return_url`: where YooKassa's page sends the payer back (the web's page; else the bot)."""
    plan = ctx.catalog.get(order.plan)
    plan_name = plan.name("ru") if plan else order.plan
    return await ctx.billing.checkout(
        order,
        description=f"Botfleet: {plan_name}, {order.period_days} дн. ({order.order_id})",
        item=receipt_item(plan_name, order.period_days),
        return_url=return_url,
    )


class NotMovable(Exception):
    """The tenant's plan or period is unknown right now (the master did not answer), or the bot
    is neither active nor stopped: its plan cannot be changed."""


async def owned_payment(
    ctx: SalesContext, user_id: int, order_id: str, tenant_id: str | None = None
) -> Order:
    """One of the owner's paid (or refunded) payments, which have 54-FZ receipts; NotOwned when
    it is not theirs (of `tenant_id` when given) or has none to ask for."""
    order = await ctx.store.get(order_id)
    if (
        order is None
        or order.user_id != user_id
        or order.payment_id is None
        or order.status not in WITH_RECEIPTS
        or (tenant_id is not None and order.tenant_id != tenant_id)
    ):
        raise NotOwned(order_id)
    return order


async def receipts_of(ctx: SalesContext, order: Order) -> list[ReceiptView]:
    """The payment's receipts as YooKassa has them now (its refunds' too);
    KassaUnavailableError / KassaError when YooKassa does not answer / refuses."""
    assert order.payment_id is not None
    refunded = order.status is OrderStatus.REFUNDED
    return await ctx.billing.kassa.receipts(order.payment_id, refunded=refunded)


@dataclass(frozen=True, slots=True)
class Movable:
    owned: Order
    tenant: Tenant
    current: Plan
    period_end: datetime


async def movable(ctx: SalesContext, user_id: int, tenant_id: str) -> Movable:
    """The owner's tenant whose plan can change now (NotOwned, NotMovable otherwise)."""
    owned = await owned_order(ctx, user_id, tenant_id)
    if owned is None:
        raise NotOwned(tenant_id)
    tenant = await tenant_of(ctx, tenant_id)
    current = ctx.catalog.get(tenant.plan) if tenant else None
    if tenant is None or current is None or tenant.expires_at is None:
        raise NotMovable(tenant_id)
    return Movable(owned, tenant, current, tenant.expires_at)


def plan_changes(ctx: SalesContext, current: Plan, end: datetime) -> list[PlanChange]:
    """Every other plan on sale with what moving to it costs: an upgrade now (prorated), a
    downgrade from `end` (nothing now)."""
    now = datetime.now(UTC)
    return [PlanChange.of(current, plan, end, now) for plan in ctx.catalog if plan.id != current.id]


@dataclass(frozen=True, slots=True)
class PlanMove:
    """What choosing `target` did: kept (a stored downgrade cancelled), an upgrade order to pay
    now, or a downgrade stored for the next period."""

    target: Plan
    current: Plan
    period_end: datetime
    order: Order | None = None  # the upgrade's order
    change: PlanChange | None = None

    @property
    def kind(self) -> str:
        if self.target.id == self.current.id:
            return "kept"
        return "upgrade" if self.order is not None else "downgrade"


async def change_plan(
    ctx: SalesContext, user_id: int, tenant_id: str, plan_id: str, locale: str
) -> PlanMove:
    """The owner's move to `plan_id`: the current plan cancels a stored downgrade; a higher one
    opens the prorated 'upgrade' order (the same one again when asked twice); a lower one is
    stored for the next period. PlanGone when `plan_id` is not on sale."""
    where = await movable(ctx, user_id, tenant_id)
    target = ctx.catalog.get(plan_id)
    if target is None:
        raise PlanGone(plan_id)
    current, end = where.current, where.period_end
    if target.id == current.id:
        await ctx.store.set_next_plan(tenant_id, user_id, None, None, None)
        return PlanMove(target, current, end)
    change = PlanChange.of(current, target, end, datetime.now(UTC))
    if change.upgrade:
        email = await ctx.store.last_email(user_id) or where.owned.email
        order = await ctx.billing.open_upgrade(
            user_id=user_id, locale=locale, email=email, tenant=where.owned, change=change
        )
        return PlanMove(target, current, end, order, change)
    sub = await ctx.store.set_next_plan(
        tenant_id, user_id, target.id, target.price, target.period_days
    )
    if sub is None:
        raise NotOwned(tenant_id)
    return PlanMove(target, current, end, None, change)


class RenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=r"^client_[0-9]{1,12}$")
    user_id: int = Field(gt=0, description="the owner's Telegram id (the tenant's owner)")
    locale: str = Field("ru", pattern=r"^(ru|en)$")
    auto_renew: bool = False


class OwnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=r"^client_[0-9]{1,12}$")
    user_id: int = Field(gt=0, description="the owner's Telegram id (the tenant's owner)")


class ReceiptIn(OwnerIn):
    order_id: str = Field(min_length=1, max_length=64)


class PlanIn(OwnerIn):
    plan: str = Field(min_length=1, max_length=32)
    locale: str = Field("ru", pattern=r"^(ru|en)$")


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _payment(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "confirmation_url": order.confirmation_url,
        "amount": str(order.amount),
        "currency": order.currency,
        "plan": order.plan,
        "period_days": order.period_days,
    }


def _receipt(receipt: ReceiptView) -> dict[str, Any]:
    return {
        "type": receipt.type,
        "status": receipt.status,
        "total": str(receipt.total),
        "items": [
            {"description": i.description, "quantity": str(i.quantity), "amount": str(i.amount)}
            for i in receipt.items
        ],
        "fiscal_storage_number": receipt.fiscal_storage_number,
        "fiscal_document_number": receipt.fiscal_document_number,
        "fiscal_attribute": receipt.fiscal_attribute,
        "registered_at": receipt.registered_at.isoformat() if receipt.registered_at else None,
    }


def guarded(
    token: str, model: type[M], act: Callable[[M], Awaitable[web.Response]]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An internal endpoint: bearer `token` (401), a body of `model` (422), the domain's
    refusals as JSON codes (sales_bot/purchase.py uses it too)."""

    async def handle(request: web.Request) -> web.Response:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            return _json({"error": "unauthorized"}, 401)
        try:
            body = model.model_validate_json(await request.read())
        except ValidationError as exc:
            return _json({"error": "bad_request", "detail": str(exc)}, 422)
        try:
            return await act(body)
        except NotOwned:
            return _json({"error": "not_found"}, 404)
        except PlanGone:
            return _json({"error": "plan_gone"}, 409)
        except NotMovable:
            return _json({"error": "status_unavailable"}, 503)
        except KassaUnavailableError as exc:
            log.warning("internal %s: YooKassa: %s", request.path, exc)
            return _json({"error": "kassa_unavailable"}, 503)
        except KassaError as exc:
            log.error("internal %s: YooKassa refused: %s", request.path, exc)
            return _json({"error": "kassa_refused"}, 502)

    return handle


def internal_routes(ctx: SalesContext, token: str) -> list[web.RouteDef]:
    """The owner's web asks the sales bot (bearer `token`) to do what the /subscription buttons
    do, by the same code: POST .../renew ("Extend"; "Change card" is it with auto-renewal),
    .../receipt (a payment's receipts), .../plans and .../plan ("Change the plan")."""

    async def renew(body: RenewIn) -> web.Response:
        try:
            made = await open_extension(
                ctx, body.user_id, body.tenant_id, body.locale, auto_renew=body.auto_renew
            )
            order = await checkout(ctx, made.order)
        except KassaError as exc:  # any refusal: the order stays, "try again" on the web
            log.warning("internal renew of %s: YooKassa: %s", body.tenant_id, exc)
            return _json({"error": "kassa_unavailable"}, 503)
        if order.status is not OrderStatus.PENDING or order.confirmation_url is None:
            return _json({"error": "not_payable"}, 409)
        log.info("renewal payment %s opened from the web for %s", order.order_id, body.tenant_id)
        return _json(_payment(order))

    async def receipt(body: ReceiptIn) -> web.Response:
        order = await owned_payment(ctx, body.user_id, body.order_id, body.tenant_id)
        receipts = await receipts_of(ctx, order)
        return _json(
            {
                "order_id": order.order_id,
                "amount": str(order.amount),
                "currency": order.currency,
                "paid_at": (order.paid_at or order.created_at).isoformat(),
                "status": order.status.value,
                "receipts": [_receipt(r) for r in receipts],
            }
        )

    async def plans(body: OwnerIn) -> web.Response:
        where = await movable(ctx, body.user_id, body.tenant_id)
        sub = (await ctx.store.subscriptions_of(body.user_id)).get(body.tenant_id)
        return _json(
            {
                "current": where.current.id,
                "status": where.tenant.status,
                "period_end": where.period_end.isoformat(),
                "next_plan": sub.next_plan if sub is not None else None,
                "plans": [
                    {
                        "id": c.to.id,
                        "title": dict(c.to.title),
                        "price": str(c.to.price),
                        "period_days": c.to.period_days,
                        "upgrade": c.upgrade,
                        "amount_now": str(c.amount),
                        "days_left": c.days_left,
                    }
                    for c in plan_changes(ctx, where.current, where.period_end)
                ],
            }
        )

    async def plan(body: PlanIn) -> web.Response:
        move = await change_plan(ctx, body.user_id, body.tenant_id, body.plan, body.locale)
        out: dict[str, Any] = {
            "result": move.kind,
            "plan": move.target.id,
            "from": move.period_end.isoformat(),
            "payment": None,
        }
        if move.order is not None:
            order = move.order
            if order.status is OrderStatus.PENDING:
                order = await checkout(ctx, order)
                out["payment"] = _payment(order)
            elif order.status is OrderStatus.PAID:
                out["result"] = "upgrade_paid"
        log.info("plan of %s from the web: %s %s", body.tenant_id, out["result"], move.target.id)
        return _json(out)

    return [
        web.post(RENEW_PATH, guarded(token, RenewIn, renew)),
        web.post(RECEIPT_PATH, guarded(token, ReceiptIn, receipt)),
        web.post(PLANS_PATH, guarded(token, OwnerIn, plans)),
        web.post(PLAN_PATH, guarded(token, PlanIn, plan)),
    ]
