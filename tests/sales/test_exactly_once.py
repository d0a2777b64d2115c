"""Exactly once: duplicates, concurrency, a master that is down, crashes, lost notifications."""

from __future__ import annotations

import asyncio
import contextlib

from sales_bot.orders import OrderStatus
from sales_bot.store import OutboxItem
from tests.sales.conftest import OWNER, Shop
from tests.sales.master_stub import MasterStub


async def test_twenty_identical_notifications_make_one_tenant(shop: Shop, stub: MasterStub) -> None:
    order = await shop.order()
    assert order.payment_id is not None
    shop.kassa.succeed(order.payment_id)
    statuses = await asyncio.gather(
        *(shop.notify("payment.succeeded", order.payment_id) for _ in range(20))
    )
    assert statuses == [200] * 20
    await shop.settle(order)

    assert stub.created == 1
    assert stub.provision_calls() == 1
    assert (await shop.reload(order)).status is OrderStatus.PAID
    rows = await shop.fetch("SELECT seen, processed_at FROM control.sales_notifications")
    assert [r["seen"] for r in rows] == [20]
    assert rows[0]["processed_at"] is not None
    outbox = await shop.fetch("SELECT action, done_at FROM control.sales_outbox")
    assert [(r["action"], r["done_at"] is not None) for r in outbox] == [("provision", True)]


async def test_master_down_then_up_provisions_once(shop: Shop, stub: MasterStub) -> None:
    order = await shop.order()
    await stub.stop()  # connections refused
    assert await shop.pay(order) == 200
    await shop.app.billing.drain()
    for _ in range(5):
        await shop.app.relay.run_once()
        await asyncio.sleep(0.05)
    rows = await shop.fetch("SELECT attempts, last_error FROM control.sales_outbox")
    assert rows[0]["attempts"] >= 2
    assert "unreachable" in rows[0]["last_error"]
    assert (await shop.reload(order)).fulfilled_at is None

    stub.fail_with = 503  # up, but answering 503 for a while
    await stub.start()
    await asyncio.sleep(0.3)
    await shop.app.relay.run_once()
    assert stub.created == 0

    stub.fail_with = None
    await shop.settle(order)
    assert stub.created == 1
    assert stub.provision_calls() == 1
    fresh = await shop.reload(order)
    assert fresh.fulfilled_at is not None and fresh.tenant_id == "client_900001"
    assert fresh.bot_token_enc is None  # the sealed token is gone once the master has it
    live = await shop.messages()
    assert len([m for m in live if "запущен" in m.plain_text]) == 1


async def test_crash_between_commit_and_master_call(make_shop, stub: MasterStub) -> None:
    first = await make_shop()
    order = await first.order()
    await first.pay(order)
    await first.app.billing.drain()  # committed: paid + outbox row, the relay never ran
    assert (await first.reload(order)).status is OrderStatus.PAID
    await first.app.close()  # the process dies here
    assert stub.provision_calls() == 0

    second = await make_shop()
    await second.settle(order)
    assert stub.created == 1 and stub.provision_calls() == 1
    assert (await second.reload(order)).fulfilled_at is not None


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing catches it)."""


async def test_crash_after_master_answered_before_marking_done(make_shop, stub: MasterStub) -> None:
    first = await make_shop()
    order = await first.order()
    await first.pay(order)
    await first.app.billing.drain()

    async def die(item: OutboxItem) -> None:
        raise Crash

    first.app.relay.after_call = die
    with contextlib.suppress(Crash):
        await first.app.relay.run_once()
    await first.app.close()
    assert stub.created == 1  # the master made the tenant; the sales bot never recorded it

    second = await make_shop()
    await asyncio.sleep(1.1)  # the dead relay's lease runs out
    await second.settle(order)
    assert stub.created == 1  # same Idempotency-Key: the same tenant comes back
    assert stub.provision_calls() == 2
    assert (await second.reload(order)).tenant_id == "client_900001"
    live = [m for m in await second.messages() if "запущен" in m.plain_text]
    assert len(live) == 1


async def test_lost_notification_is_found_by_the_periodic_check(
    shop: Shop, stub: MasterStub
) -> None:
    order = await shop.order()
    assert order.payment_id is not None
    shop.kassa.succeed(order.payment_id)  # ... and the notification never arrives
    changed = await shop.app.watcher.run_once()
    assert changed == 1
    await shop.settle(order)
    assert stub.created == 1
    assert (await shop.reload(order)).fulfilled_at is not None


async def test_running_workers_provision_without_help(make_shop, stub: MasterStub) -> None:
    shop = await make_shop(workers=True)
    order = await shop.order()
    assert order.payment_id is not None
    shop.kassa.succeed(order.payment_id)  # lost notification; the watcher runs every 0.2 s

    async def provisioned() -> bool:
        return (await shop.reload(order)).fulfilled_at is not None

    await shop.wait(provisioned)
    assert stub.created == 1


async def test_canceled_after_succeeded_changes_nothing(shop: Shop, stub: MasterStub) -> None:
    order = await shop.order()
    await shop.pay(order)
    await shop.settle(order)
    assert order.payment_id is not None
    # A forged or stale "canceled": the API still says succeeded.
    body = shop.kassa.notification("payment.succeeded", order.payment_id)
    body["event"] = "payment.canceled"
    body["object"]["status"] = "canceled"
    assert await shop.notify("payment.canceled", order.payment_id, body=body) == 200
    await shop.settle(order)
    assert (await shop.reload(order)).status is OrderStatus.PAID
    assert stub.tenants[order.order_id].status == "active"


async def test_refund_suspends_the_tenant(shop: Shop, stub: MasterStub) -> None:
    order = await shop.order()
    await shop.pay(order)
    await shop.settle(order)
    assert order.payment_id is not None
    refund = shop.kassa.refund(order.payment_id)
    assert await shop.notify("refund.succeeded", refund["id"]) == 200
    await shop.settle(order)
    assert (await shop.reload(order)).status is OrderStatus.REFUNDED
    assert stub.tenants[order.order_id].status == "suspended"
    texts = [m.plain_text for m in await shop.messages(OWNER)]
    assert any("возвращена" in t for t in texts)


async def test_refund_before_provisioning_provisions_nothing(shop: Shop, stub: MasterStub) -> None:
    order = await shop.order()
    await shop.pay(order)
    await shop.app.billing.drain()  # paid; the relay has not run
    assert order.payment_id is not None
    refund = shop.kassa.refund(order.payment_id)
    await shop.notify("refund.succeeded", refund["id"])
    await shop.settle(order)
    assert stub.created == 0 and stub.calls == []
    assert (await shop.reload(order)).status is OrderStatus.REFUNDED


async def test_refund_not_configured_to_suspend(make_shop, stub: MasterStub) -> None:
    shop = await make_shop(sales_refund_suspends=False)
    order = await shop.order()
    await shop.pay(order)
    await shop.settle(order)
    assert order.payment_id is not None
    refund = shop.kassa.refund(order.payment_id)
    await shop.notify("refund.succeeded", refund["id"])
    await shop.settle(order)
    assert (await shop.reload(order)).status is OrderStatus.REFUNDED
    assert stub.tenants[order.order_id].status == "active"


async def test_payment_is_created_once_per_order(shop: Shop) -> None:
    order = await shop.order()
    # A retry after a crash before the payment id was stored: the same key, the same payment.
    await shop.fetch(
        "UPDATE control.sales_orders SET payment_id = NULL, confirmation_url = NULL"
        " WHERE order_id = $1",
        order.order_id,
    )
    again = await shop.app.billing.checkout(
        await shop.reload(order), description="test", item="test"
    )
    assert again.payment_id == order.payment_id
    assert len(shop.kassa.payments) == 1
    payment = shop.kassa.payments[order.payment_id or ""]
    assert payment["amount"] == {"value": "990.00", "currency": "RUB"}
    assert payment["metadata"]["order_id"] == order.order_id
    assert payment["metadata"]["plan"] == "start"
