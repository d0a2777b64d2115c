"""What the auto-renewal tests share (issue 17): a clock the tests move, a bot bought with or
without auto-renewal, the rows and messages a test reads afterwards.

A tenant bought here is paid for 30 days from (real) now, so with RENEWAL_DAYS_BEFORE=3 its
saved card is due 27 days from now (`DUE` is just past that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sales_bot.billing import Draft, PlanChange
from sales_bot.store import Order
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop, bot_token
from tests.sales.master_stub import MasterStub, StubTenant

DUE = timedelta(days=27, hours=1)  # past the charge date of a tenant paid for 30 days from now


class Clock:
    """The renewal worker's clock: `ahead` sets it relative to real now, `move` moves it on."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def ahead(self, delta: timedelta) -> None:
        self.now = datetime.now(UTC) + delta

    def move(self, delta: timedelta) -> None:
        self.now += delta


def moved_clock(shop: Shop) -> Clock:
    """A clock the test moves, installed in the shop's renewal worker and in its relay (which
    tells whether an upgrade comes too late for its period)."""
    clock = Clock()
    shop.app.renewals.clock = clock
    shop.app.relay.clock = clock
    return clock


async def bought(
    shop: Shop, *, auto_renew: bool, user_id: int = OWNER, plan: str = "start",
    name: str | None = None, timeout: float = 15.0,
) -> Order:  # fmt: skip
    """A new bot bought and paid on the checkout page, the tenant provisioned (by the stub or
    the real master, whichever the shop talks to)."""
    token = bot_token()
    shop.tokens.append(token)  # the bot's own token: what its owner reads in the emulator
    await shop.tg.send_message(SALES_TOKEN, user_id, "/start")
    identity = await shop.tg.register_bot(token, name or f"salon{user_id}_bot", "Salon")
    catalog_plan = shop.app.catalog.get(plan)
    assert catalog_plan is not None
    order = await shop.app.billing.open_new(
        Draft(
            user_id=user_id, locale="ru", plan=catalog_plan, email="owner@example.com",
            business_name="Салон", category="beauty", timezone="Europe/Moscow",
            bot_id=int(identity["id"]), bot_username=str(identity["username"]), token=token,
            auto_renew=auto_renew,
        )
    )  # fmt: skip
    order = await shop.app.billing.checkout(order, description="test", item="test")
    assert await shop.pay(order) == 200
    await shop.settle(order, timeout=timeout)
    return await shop.reload(order)


@dataclass(frozen=True)
class Bought:
    """A bot bought with auto-renewal through the stub: its order, stub tenant, saved card."""

    order: Order
    tenant: StubTenant
    method_id: str

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant_id


async def bought_renewing(shop: Shop, stub: MasterStub, *, user_id: int = OWNER) -> Bought:
    order = await bought(shop, auto_renew=True, user_id=user_id)
    tenant = stub.by_id(order.tenant_id or "")
    assert tenant is not None
    return Bought(order, tenant, saved_method(shop, order))


def saved_method(shop: Shop, order: Order) -> str:
    """The id of the card YooKassa saved with the order's payment."""
    method_id: str = shop.kassa.payments[order.payment_id or ""]["payment_method"]["id"]
    return method_id


async def subscription(shop: Shop, tenant_id: str) -> dict[str, Any]:
    [row] = await shop.fetch(
        "SELECT * FROM control.sales_subscriptions WHERE tenant_id = $1", tenant_id
    )
    return dict(row)


async def renewal_orders(shop: Shop) -> list[dict[str, Any]]:
    rows = await shop.fetch(
        "SELECT * FROM control.sales_orders WHERE kind = 'renewal' ORDER BY created_at"
    )
    return [dict(r) for r in rows]


async def deliver(shop: Shop) -> None:
    """What the relay does meanwhile: outbox rows to the master, notices to the owner."""
    await shop.app.billing.drain()
    for _ in range(3):
        await shop.app.relay.run_once()


async def texts(shop: Shop, user_id: int = OWNER) -> list[str]:
    return [m.plain_text for m in await shop.messages(user_id)]


def extend_calls(stub: MasterStub, tenant_id: str | None = None) -> int:
    """Extensions that reached the stub (of one tenant, or of all)."""
    return sum(
        1
        for method, path in stub.calls
        if method == "POST"
        and path.endswith("/extend")
        and (tenant_id is None or path == f"/api/v1/tenants/{tenant_id}/extend")
    )


async def paid_upgrade(
    shop: Shop, owned: Order, *, current: str, to: str, period_end: datetime
) -> Order:
    """The owner of `owned` upgrades from `current` to `to` (the period ending `period_end`) and
    pays on the checkout page; the notification is processed, the master not called yet."""
    now_plan, target = shop.app.catalog.get(current), shop.app.catalog.get(to)
    assert now_plan is not None and target is not None
    change = PlanChange.of(now_plan, target, period_end, datetime.now(UTC))
    assert change.upgrade
    assert owned.user_id is not None  # a bot bought in Telegram has its buyer
    order = await shop.app.billing.open_upgrade(
        user_id=owned.user_id, locale="ru", email="owner@example.com", tenant=owned, change=change
    )
    order = await shop.app.billing.checkout(order, description="t", item="t")
    assert await shop.pay(order) == 200
    await shop.app.billing.drain()
    return await shop.reload(order)
