"""Any order of payment events, duplicates, relay runs and master outages keeps the invariant:
the tenant is active ⇔ the payment succeeded and was not refunded; and never two tenants."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sales_bot.orders import OrderStatus
from tests.sales.conftest import Shop
from tests.sales.master_stub import MasterStub

EVENTS = st.sampled_from(
    [
        "succeed",
        "cancel",
        "refund",
        "notify_succeeded",
        "notify_canceled",
        "notify_refund",
        "relay",
        "check",
        "button",
        "master_down",
        "master_up",
    ]
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(EVENTS, min_size=1, max_size=12))
async def test_active_iff_paid_and_not_refunded(
    shop: Shop, stub: MasterStub, events: list[str]
) -> None:
    stub.fail_with = None
    order = await shop.order()
    pid = order.payment_id
    assert pid is not None
    fake = shop.kassa
    refund_id: str | None = None

    def payment() -> dict[str, Any]:
        return fake.payments[pid]

    for event in events:
        if event == "succeed":
            fake.succeed(pid)
        elif event == "cancel":
            fake.cancel(pid)
        elif event == "refund" and payment()["status"] == "succeeded":
            refund_id = fake.refund(pid)["id"]
        elif event == "notify_succeeded":
            await shop.notify("payment.succeeded", pid)
        elif event == "notify_canceled":
            await shop.notify("payment.canceled", pid)
        elif event == "notify_refund" and refund_id is not None:
            await shop.notify("refund.succeeded", refund_id)
        elif event == "relay":
            await shop.app.relay.run_once()
        elif event == "check":
            await shop.app.watcher.run_once()
        elif event == "button":
            await shop.app.billing.check(await shop.reload(order))
        elif event == "master_down":
            stub.fail_with = 503
        elif event == "master_up":
            stub.fail_with = None

    # Eventually: the master is up and YooKassa (re)delivers a notification of each real event.
    stub.fail_with = None
    if payment()["status"] in ("succeeded", "canceled"):
        await shop.notify(f"payment.{payment()['status']}", pid)
    if refund_id is not None:
        await shop.notify("refund.succeeded", refund_id)
    await asyncio.sleep(0)
    await shop.settle(order)

    paid = payment()["status"] == "succeeded"
    refunded = "refunded_amount" in payment()
    tenant = stub.tenants.get(order.order_id)
    active = tenant is not None and tenant.status == "active"
    assert active == (paid and not refunded), (events, tenant)
    if not paid:
        assert tenant is None
    fresh = await shop.reload(order)
    expected = (
        OrderStatus.REFUNDED if refunded
        else OrderStatus.PAID if paid
        else OrderStatus.CANCELED if payment()["status"] == "canceled"
        else OrderStatus.PENDING
    )  # fmt: skip
    assert fresh.status is expected
    creations = [t for t in stub.tenants.values() if t.key == order.order_id]
    assert len(creations) <= 1
