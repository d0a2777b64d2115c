"""A month of auto-renewals for 50 tenants with the clock moved (issue 17): the renewal worker
is driven pass by pass with a fake clock, on real PostgreSQL, the YooKassa fake over HTTP
through the real SDK, the Telegram emulator and the master stub.

Tenants end their paid period on different days. By tenant number modulo 5: 0 and 1 always pay;
2 are declined (not enough money) until a day and a half before the period ends, so they pay on
a retry; 3 are always declined (the retries run out, the period lapses: the master's expiry and
grace take over); 4 either have their card expire (no retry) or turn auto-renewal off (never
charged). What should happen is worked out by `expected()` from the dates and the retry
schedule alone; the test checks every charge was made and every period extended exactly once,
with duplicate notifications on the way, and that each owner was told once per charge.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sales_bot.billing import Draft
from sales_bot.store import Order
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop, bot_token
from tests.sales.master_stub import MasterStub
from tests.sales.renewing import Bought, extend_calls, moved_clock, saved_method, texts

TENANTS = 50
STEP = timedelta(hours=12)  # the worker's pass, in the moved clock
HORIZON = timedelta(days=35)
NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass
class Tenant:
    bot: Bought
    number: int
    first_end: datetime
    declined_until: datetime | None  # declined before this moment (None: never)
    dead_card: bool = False
    opted_out: bool = False


@dataclass(frozen=True)
class Expected:
    succeeded: int
    declined: int


def expected(tenant: Tenant, start: datetime, days_before: int, retry: tuple[int, ...]) -> Expected:
    """What a month should do to `tenant`: the worker runs at start + k * STEP, a charge is
    due `days_before` days before the period ends, a decline retries after `retry` days."""

    def next_pass(moment: datetime) -> datetime:
        return start + STEP * max(1, math.ceil((moment - start) / STEP))

    if tenant.opted_out:
        return Expected(0, 0)
    if tenant.dead_card:
        return Expected(0, 1)
    succeeded = declined = 0
    end, horizon = tenant.first_end, start + HORIZON
    while True:
        at, failures = next_pass(end - timedelta(days=days_before)), 0
        while at <= horizon:
            until = tenant.declined_until
            if until is None or at >= until:
                break
            declined += 1
            failures += 1
            if failures > len(retry):
                return Expected(succeeded, declined)
            at = next_pass(at + timedelta(days=retry[failures - 1]))
        if at > horizon:
            return Expected(succeeded, declined)
        succeeded += 1
        end += timedelta(days=30)


async def bought_many(shop: Shop, stub: MasterStub, count: int) -> list[Bought]:
    """`count` bots bought with auto-renewal by as many owners, paid on the checkout page and
    provisioned; the same steps as `bought_renewing`, each step for all of them at once."""
    limit = asyncio.Semaphore(8)
    plan = shop.app.catalog.get("start")
    assert plan is not None

    async def checkout(number: int) -> Order:
        user_id, token = OWNER + 1000 + number, bot_token()
        async with limit:
            await shop.tg.send_message(SALES_TOKEN, user_id, "/start")
            identity = await shop.tg.register_bot(token, f"month{number}_bot", "Salon")
            order = await shop.app.billing.open_new(
                Draft(
                    user_id=user_id, locale="ru", plan=plan, email="owner@example.com",
                    business_name="Салон", category="beauty", timezone="Europe/Moscow",
                    bot_id=int(identity["id"]), bot_username=str(identity["username"]),
                    token=token, auto_renew=True,
                )
            )  # fmt: skip
            return await shop.app.billing.checkout(order, description="test", item="test")

    async def pay(order: Order) -> None:
        async with limit:
            assert await shop.pay(order) == 200

    orders = await asyncio.gather(*(checkout(n) for n in range(count)))
    await asyncio.gather(*(pay(order) for order in orders))
    await delivered(shop)
    bots = []
    for order in orders:
        order = await shop.reload(order)
        tenant = stub.by_id(order.tenant_id or "")
        assert tenant is not None
        bots.append(Bought(order, tenant, saved_method(shop, order)))
    return bots


async def delivered(shop: Shop) -> None:
    """Notifications processed, then the relay run until nothing is left for it."""
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        await shop.app.billing.drain()
        if await shop.app.relay.run_once():
            continue
        if not await shop.app.store.outbox_pending():
            return
        assert asyncio.get_running_loop().time() < deadline, "the outbox is not delivered"
        await asyncio.sleep(0.02)  # a row waits for its retry


async def test_a_month_of_renewals_for_50_tenants_charges_and_extends_each_period_once(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    start = clock.now
    days_before = shop.app.store.renewal_days_before
    retry = tuple(shop.app.billing.renewal_retry_days)
    bots = await bought_many(shop, stub, TENANTS)
    tenants: list[Tenant] = []
    for number, bot in enumerate(bots):
        end = start + timedelta(days=4, hours=12 * number)
        group = number % 5
        tenants.append(
            Tenant(
                bot, number, end,
                declined_until=(
                    end - timedelta(days=1, hours=12) if group == 2
                    else NEVER if group == 3 else None
                ),
                dead_card=group == 4 and number % 2 == 0,
                opted_out=group == 4 and number % 2 == 1,
            )
        )  # fmt: skip
        bot.tenant.expires_at = end  # the master's end of the paid period...
        if group in (2, 3):
            shop.kassa.decline(bot.method_id, "insufficient_funds")
        if group == 4 and number % 2 == 0:
            shop.kassa.expire_card(bot.method_id)
        if group == 4 and number % 2 == 1:
            assert bot.order.user_id is not None
            assert await shop.app.store.set_auto_renew(bot.tenant_id, bot.order.user_id, False)
    await shop.fetch(  # ... and the sales bot's copy of it
        "UPDATE control.sales_subscriptions s SET paid_until = v.e,"
        " next_charge_at = CASE WHEN s.auto_renew THEN v.e - make_interval(days => $3) END"
        " FROM unnest($1::text[], $2::timestamptz[]) AS v(t, e) WHERE s.tenant_id = v.t",
        [t.bot.tenant_id for t in tenants],
        [t.first_end for t in tenants],
        days_before,
    )
    first_ends = {t.bot.tenant_id: t.first_end for t in tenants}

    duplicates = 0
    while clock.now < start + HORIZON:
        clock.move(STEP)
        for tenant in tenants:
            until = tenant.declined_until
            if until is not None and clock.now >= until:
                shop.kassa.decline(tenant.bot.method_id, None)  # money on the card now
        charged = len(shop.kassa.charges)
        await shop.app.renewals.run_once()
        for charge in shop.kassa.charges[charged:][::4]:  # YooKassa says it again, late
            assert await shop.notify(f"payment.{charge['status']}", charge["payment_id"]) == 200
            duplicates += 1
        await delivered(shop)

    tenant_of = {
        r["order_id"]: r["tenant_id"]
        for r in await shop.fetch(
            "SELECT order_id, tenant_id FROM control.sales_orders WHERE kind = 'renewal'"
        )
    }
    outcomes = Counter[str]()
    for tenant in tenants:
        tid = tenant.bot.tenant_id
        want = expected(tenant, start, days_before, retry)
        charges = [c for c in shop.kassa.charges if tenant_of[c["metadata"]["order_id"]] == tid]
        succeeded = [c for c in charges if c["status"] == "succeeded"]
        declined = [c for c in charges if c["status"] == "canceled"]
        assert (len(succeeded), len(declined)) == (want.succeeded, want.declined), tid
        # Every success extended the master once, every period by its 30 days.
        assert {k for k in stub.extend_keys if tenant_of.get(k) == tid} == {
            c["metadata"]["order_id"] for c in succeeded
        }
        assert extend_calls(stub, tid) == len(succeeded)
        assert tenant.bot.tenant.expires_at == first_ends[tid] + timedelta(days=30) * len(succeeded)
        assert tenant.bot.order.user_id is not None
        told = await texts(shop, tenant.bot.order.user_id)
        assert sum("Автопродление: списано" in t for t in told) == len(succeeded), tid
        assert sum("Не удалось продлить" in t for t in told) == len(declined), tid
        outcomes["renewed"] += len(succeeded)
        outcomes["declined"] += len(declined)
        outcomes["twice"] += len(succeeded) > 1
        outcomes["lapsed"] += want.declined > 0 and want.succeeded == 0
    # Lapsed periods are left to the master's expiry and grace: nothing more is planned.
    subs = {
        r["tenant_id"]: r
        for r in await shop.fetch("SELECT tenant_id, paid_until, next_charge_at, auto_renew,"
                                  " method_enc FROM control.sales_subscriptions")
    }  # fmt: skip
    for tenant in tenants:
        sub, want = subs[tenant.bot.tenant_id], expected(tenant, start, days_before, retry)
        assert sub["paid_until"] == tenant.bot.tenant.expires_at
        if want.succeeded == 0:
            assert sub["next_charge_at"] is None, tenant.number
        assert (sub["method_enc"] is None) == tenant.dead_card
    # One paid charge per tenant and period, a new idempotence key for every attempt.
    paid = await shop.fetch(
        "SELECT tenant_id, cycle_end, fulfilled_at FROM control.sales_orders"
        " WHERE kind = 'renewal' AND status = 'paid'"
    )
    assert len({(r["tenant_id"], r["cycle_end"]) for r in paid}) == len(paid)
    assert all(r["fulfilled_at"] is not None for r in paid)
    keys = [c["idempotence_key"] for c in shop.kassa.charges]
    assert len(set(keys)) == len(keys) == outcomes["renewed"] + outcomes["declined"]
    assert len(paid) == outcomes["renewed"]
    # The mix really happened: renewals, second periods, retries that paid, lapses.
    assert outcomes["twice"] > 0 and outcomes["lapsed"] > 0 and duplicates > 0
    assert outcomes["declined"] > outcomes["lapsed"]
