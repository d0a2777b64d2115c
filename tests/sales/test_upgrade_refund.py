"""A refunded upgrade (issue 17.5): the tenant ends up on the plan actually paid for, switched
back once, and the owner is told. The YooKassa fake over HTTP through the real SDK (refund
notifications re-read from its API), the master stub over HTTP; the same with the real master
is in test_plan_change.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from sales_bot.billing import PlanChange
from sales_bot.orders import OrderStatus
from sales_bot.store import Order
from tests.sales.conftest import OWNER, Shop
from tests.sales.master_stub import MasterStub, StubTenant
from tests.sales.renewing import (
    DUE,
    Bought,
    bought_renewing,
    deliver,
    moved_clock,
    paid_upgrade,
    subscription,
    texts,
)

BACK = "возвращена, поэтому"  # "... was refunded, so @bot is back on plan ..."


async def upgrade(shop: Shop, bot: Bought, to: str) -> Order:
    return await paid_upgrade(
        shop, bot.order, current=bot.tenant.plan, to=to, period_end=bot.tenant.expires_at
    )


async def refund(shop: Shop, order: Order, *, copies: int = 1) -> None:
    """YooKassa refunds the payment and notifies (`copies` times at once)."""
    assert order.payment_id is not None
    refund_id = shop.kassa.refund(order.payment_id)["id"]
    statuses = await asyncio.gather(
        *(shop.notify("refund.succeeded", refund_id) for _ in range(copies))
    )
    assert set(statuses) == {200}
    await shop.app.billing.drain()


async def outbox(shop: Shop, order: Order) -> dict[str, str]:
    rows = await shop.fetch(
        "SELECT action, outcome FROM control.sales_outbox WHERE order_id = $1 AND done_at"
        " IS NOT NULL",
        order.order_id,
    )
    return {r["action"]: r["outcome"] for r in rows}


async def test_a_refund_after_the_switch_puts_the_tenant_back_once_and_tells_the_owner(
    shop: Shop, stub: MasterStub
) -> None:
    bot = await bought_renewing(shop, stub)
    paid = await upgrade(shop, bot, "business")
    await shop.settle(paid)
    assert bot.tenant.plan == "business"
    assert (await subscription(shop, bot.tenant_id))["amount"] == Decimal("2490.00")

    await refund(shop, paid, copies=2)  # a duplicate notification at once
    await shop.settle(paid)
    assert await shop.notify("payment.succeeded", paid.payment_id or "") == 200  # a late one
    await shop.settle(paid)

    assert bot.tenant.plan == "start"
    assert stub.plan_keys == {paid.order_id: "business", f"{paid.order_id}:refund": "start"}
    assert bot.tenant.status == "active"  # the period was paid by the first order: no pause
    assert (await shop.reload(paid)).status is OrderStatus.REFUNDED
    sub = await subscription(shop, bot.tenant_id)
    assert (sub["plan"], sub["amount"], sub["period_days"]) == ("start", Decimal("990.00"), 30)
    told = [t for t in await texts(shop) if BACK in t]
    assert len(told) == 1
    assert "1\u00a0500\u00a0₽ за тариф «Бизнес»" in told[0]
    assert "на тарифе «Старт»" in told[0] and "990\u00a0₽ за 30 дн." in told[0]


async def test_a_refund_before_the_switch_drops_it_the_master_never_switches(
    shop: Shop, stub: MasterStub
) -> None:
    bot = await bought_renewing(shop, stub)
    paid = await upgrade(shop, bot, "business")  # paid, the relay has not run yet
    await refund(shop, paid)
    await shop.settle(paid)
    assert stub.plan_keys == {} and bot.tenant.plan == "start"
    assert (await outbox(shop, paid)) == {
        "change_plan": "dropped: refunded",
        "revert_plan": "plan start for " + bot.tenant_id,
    }
    assert (await subscription(shop, bot.tenant_id))["plan"] == "start"
    assert len([t for t in await texts(shop) if BACK in t]) == 1
    assert not [t for t in await texts(shop) if "теперь на тарифе «Бизнес»" in t]


async def test_a_refund_while_the_switch_is_retried_reverts_after_it(
    shop: Shop, stub: MasterStub
) -> None:
    """The master is down while the upgrade's switch is being delivered: the refund waits for
    it (the master may have applied an attempt whose answer was lost), then switches back."""
    bot = await bought_renewing(shop, stub)
    paid = await upgrade(shop, bot, "business")
    stub.fail_with = 503
    await shop.app.relay.run_once()  # the switch tried once, the master did not answer
    await refund(shop, paid)
    for _ in range(3):
        await shop.app.relay.run_once()
    assert stub.plan_keys == {}
    [(waiting,)] = await shop.fetch(
        "SELECT last_error FROM control.sales_outbox WHERE order_id = $1"
        " AND action = 'revert_plan' AND done_at IS NULL",
        paid.order_id,
    )
    assert waiting == "waiting for the plan change"
    stub.fail_with = None
    await shop.settle(paid)
    assert list(stub.plan_keys.items()) == [
        (paid.order_id, "business"),
        (f"{paid.order_id}:refund", "start"),
    ]
    assert bot.tenant.plan == "start"
    sub = await subscription(shop, bot.tenant_id)
    assert (sub["plan"], sub["amount"]) == ("start", Decimal("990.00"))


async def test_a_refund_after_the_next_period_was_paid_on_the_upgrade_keeps_that_plan(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    paid = await upgrade(shop, bot, "business")
    await shop.settle(paid)
    clock.ahead(DUE)  # the renewal charges the upgraded plan for the next period
    assert await shop.app.renewals.run_once() == 1
    await deliver(shop)
    [charge] = shop.kassa.charges
    assert charge["amount"] == {"value": "2490.00", "currency": "RUB"}

    await refund(shop, paid)
    await shop.settle(paid)
    assert bot.tenant.plan == "business"  # the plan the next period was paid for
    assert f"{paid.order_id}:refund" not in stub.plan_keys
    assert (await subscription(shop, bot.tenant_id))["plan"] == "business"
    [told] = [t for t in await texts(shop) if "возвращена" in t]
    assert "остаётся на тарифе «Бизнес»" in told


async def test_a_refund_after_the_plan_was_changed_again_leaves_the_new_plan(
    shop: Shop, stub: MasterStub
) -> None:
    bot = await bought_renewing(shop, stub)
    paid = await upgrade(shop, bot, "business")
    await shop.settle(paid)
    bot.tenant.plan = "business_year"  # changed since (an operator, a later order)
    await refund(shop, paid)
    await shop.settle(paid)
    assert bot.tenant.plan == "business_year"
    assert f"{paid.order_id}:refund" not in stub.plan_keys
    [told] = [t for t in await texts(shop) if "возвращена" in t]
    assert "остаётся на тарифе «Бизнес на год»" in told


async def test_a_canceled_upgrade_changes_nothing_and_keeps_a_chosen_downgrade(
    shop: Shop, stub: MasterStub
) -> None:
    bot = await bought_renewing(shop, stub)
    tenant: StubTenant = bot.tenant
    tenant.plan = "business_year"  # 24 900 ₽ a year: Business monthly is dearer per day
    await shop.fetch(
        "UPDATE control.sales_subscriptions SET plan = 'business_year', amount = 24900,"
        " period_days = 365 WHERE tenant_id = $1",
        tenant.tenant_id,
    )
    await shop.app.store.set_next_plan(tenant.tenant_id, OWNER, "start", Decimal("990.00"), 30)
    current, target = shop.app.catalog.get("business_year"), shop.app.catalog.get("business")
    assert current is not None and target is not None
    change = PlanChange.of(current, target, tenant.expires_at, datetime.now(UTC))
    order = await shop.app.billing.open_upgrade(
        user_id=OWNER, locale="ru", email="owner@example.com", tenant=bot.order, change=change
    )
    order = await shop.app.billing.checkout(order, description="t", item="t")
    assert order.payment_id is not None
    shop.kassa.cancel(order.payment_id)  # the owner left the checkout page
    assert await shop.notify("payment.canceled", order.payment_id) == 200
    await shop.app.billing.drain()
    await deliver(shop)
    assert (await shop.reload(order)).status is OrderStatus.CANCELED
    assert stub.plan_keys == {} and tenant.plan == "business_year"
    sub = await subscription(shop, tenant.tenant_id)
    assert (sub["plan"], sub["next_plan"]) == ("business_year", "start")
