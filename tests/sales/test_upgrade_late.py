"""An upgrade link paid too late (issue 17): a prorated upgrade is priced for the rest of one
period, so paid after that period ended, or after the subscription was renewed into the next
one, it does not switch the plan. The payment is accepted (never lost) and refunded in full
through YooKassa's refunds API, with a refund receipt, once; the owner is told once why, with a
button to the same upgrade priced for the period they are in now.

Time travel: the renewal worker's and the relay's clock is moved (tests/sales/renewing.py); the
YooKassa fake over HTTP through the real SDK, the master stub over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sales_bot.billing import PlanChange
from sales_bot.kassa import KassaUnavailableError, RefundDraft
from sales_bot.orders import OrderStatus, RefundView
from sales_bot.store import Order
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop
from tests.sales.master_stub import MasterStub
from tests.sales.people import Person
from tests.sales.renewing import DUE, bought, bought_renewing, deliver, moved_clock, subscription

LATE = "так что тариф не изменён"


class LosesRefundAnswer:
    """The gateway, but the answer to the first refund is lost after YooKassa made it (a cut
    connection, a crash before it was recorded)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.lost = inner, False

    async def create_refund(self, draft: RefundDraft) -> RefundView:
        refund: RefundView = await self.inner.create_refund(draft)
        if not self.lost:
            self.lost = True
            raise KassaUnavailableError(f"the answer about {refund.id} was lost")
        return refund

    def __getattr__(self, name: str) -> Any:
        return getattr(
            self.inner, name
        )  # "..., so the plan was not changed and ... refunded in full"


async def upgrade_link(shop: Shop, owned: Order, period_end: datetime) -> Order:
    """The owner asks to move from Start to Business: the payment is created, not paid yet."""
    start, business = shop.app.catalog.get("start"), shop.app.catalog.get("business")
    assert start is not None and business is not None
    change = PlanChange.of(start, business, period_end, datetime.now(UTC))
    order = await shop.app.billing.open_upgrade(
        user_id=OWNER, locale="ru", email="owner@example.com", tenant=owned, change=change
    )
    order = await shop.app.billing.checkout(order, description="t", item="t")
    assert order.payment_id is not None
    return order


async def pay_late(shop: Shop, order: Order) -> None:
    """Paid on the YooKassa page; the notification comes twice at once and once more late."""
    assert order.payment_id is not None
    shop.kassa.succeed(order.payment_id)
    statuses = await asyncio.gather(
        *(shop.notify("payment.succeeded", order.payment_id) for _ in range(2))
    )
    assert statuses == [200, 200]
    await shop.settle(order)
    assert await shop.notify("payment.succeeded", order.payment_id) == 200
    await shop.settle(order)


async def told_late(shop: Shop) -> list[str]:
    return [m.plain_text for m in await shop.messages() if LATE in m.plain_text]


async def assert_refunded_once(shop: Shop, order: Order, *, asked: int = 1) -> None:
    """One refund of the whole payment, however often it was asked for (`asked` times, with
    one idempotence key)."""
    assert order.payment_id is not None
    [refund] = [r for r in shop.kassa.refunds.values() if r["payment_id"] == order.payment_id]
    assert refund["amount"] == shop.kassa.payments[order.payment_id]["amount"]
    creates = [r for r in shop.kassa.requests if r == ("POST", "/v3/refunds")]
    assert len(creates) == asked and len(shop.kassa.refund_keys) == 1
    # YooKassa's own refund.succeeded notification, twice, changes nothing more.
    for _ in range(2):
        assert await shop.notify("refund.succeeded", refund["id"]) == 200
    await shop.settle(order)
    assert (await shop.reload(order)).status is OrderStatus.REFUNDED
    # The refund carries its 54-FZ receipt, to the owner, for the whole amount.
    [receipt] = [r for r in shop.kassa.receipts.values() if r.get("refund_id") == refund["id"]]
    assert receipt["type"] == "refund"
    assert receipt["settlements"][0]["amount"] == refund["amount"]
    assert shop.kassa.receipt_customers[receipt["id"]] == {"email": "owner@example.com"}


async def test_an_upgrade_paid_after_its_period_ended_is_refunded_not_applied(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    owned = await bought(shop, auto_renew=False)
    tenant = stub.by_id(owned.tenant_id or "")
    assert tenant is not None
    order = await upgrade_link(shop, owned, tenant.expires_at)
    assert order.amount == Decimal("1500.00")  # 30 days at 50 ₽ a day more

    clock.ahead(timedelta(days=30, hours=1))  # the period is over; no renewal (no card)
    shop.app.billing.kassa = LosesRefundAnswer(shop.app.billing.kassa)
    await pay_late(shop, order)

    assert tenant.plan == "start" and stub.plan_keys == {}
    fresh = await shop.reload(order)
    assert (fresh.status, fresh.failure) == (OrderStatus.REFUNDED, "late:period_over")
    await assert_refunded_once(shop, order, asked=2)  # the answer lost, asked again: one refund
    [told] = await told_late(shop)
    assert "1\u00a0500\u00a0₽" in told and "тариф «Бизнес»" in told
    assert "закончился период, на который была рассчитана её цена" in told
    assert "остаётся на тарифе «Старт»" in told
    outcomes = await shop.fetch(
        "SELECT action, outcome FROM control.sales_outbox WHERE order_id = $1 ORDER BY id",
        order.order_id,
    )
    assert [r["action"] for r in outcomes] == ["change_plan", "revert_plan"]
    assert outcomes[0]["outcome"].startswith("late:period_over: refunded rf")


async def test_an_upgrade_paid_after_the_renewal_is_refunded_and_a_fresh_one_offered(
    make_shop: Callable[..., Awaitable[Shop]], stub: MasterStub
) -> None:
    shop = await make_shop(polling=True)
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    order = await upgrade_link(shop, bot.order, bot.tenant.expires_at)
    clock.ahead(DUE)  # the card is charged for the next period, on Start
    assert await shop.app.renewals.run_once() == 1
    await deliver(shop)
    renewed_until = bot.tenant.expires_at
    assert renewed_until - order.cycle_end == timedelta(days=30)  # type: ignore[operator]

    await pay_late(shop, order)  # the old link, still within the old period's last days

    assert bot.tenant.plan == "start" and stub.plan_keys == {}
    fresh = await shop.reload(order)
    assert (fresh.status, fresh.failure) == (OrderStatus.REFUNDED, "late:renewed")
    await assert_refunded_once(shop, order)
    sub = await subscription(shop, bot.tenant_id)
    assert (sub["plan"], sub["amount"], sub["auto_renew"]) == ("start", Decimal("990.00"), True)
    [told] = await told_late(shop)
    assert "подписка перешла в новый период" in told

    # The button: the same upgrade, priced for the days left of the periods paid now (the
    # handler reads the real clock: the old period and the renewed one, 60 days).
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    [message] = [m for m in await shop.messages() if LATE in m.plain_text]
    checkout = await owner.press(message, "Перейти на тариф «Бизнес» по цене на сегодня",
                                 "Переход")  # fmt: skip
    [again] = await shop.fetch(
        "SELECT * FROM control.sales_orders WHERE kind = 'upgrade' AND status = 'pending'"
    )
    assert again["cycle_end"] == renewed_until and again["period_days"] == 60
    assert again["amount"] == Decimal("3000.00")  # 60 days left at 50 ₽ a day more
    assert "3\u00a0000\u00a0₽ за оставшиеся 60 дн." in checkout.plain_text

    # In the payments list: refunded as too late; its receipts are the sale's and the refund's.
    card = await owner.ask("/subscription", "Тариф: Старт")
    payments = await owner.press(card, f"Платежи @{bot.order.bot_username}", "Платежи")
    assert "1\u00a0500\u00a0₽ — переход на тариф выше: возвращён: оплачен слишком поздно" in (
        payments.plain_text
    )
    [button] = [b for [b] in payments.buttons() if "1\u00a0500\u00a0₽" in b]
    shown = (await owner.press(payments, button, "Кассовый чек")).plain_text
    assert "Кассовый чек (54-ФЗ): приход" in shown
    assert "Кассовый чек (54-ФЗ): возврат прихода" in shown
    assert shown.count("Сумма: 1\u00a0500\u00a0₽") == 2 and shown.count("ФП: ") == 2
