"""Auto-renewal (issue 17) on real PostgreSQL, the YooKassa fake over HTTP through the real SDK,
the Telegram emulator and the master stub; the renewal worker's clock is moved by the tests.

The helpers (a clock the tests move, a bot bought with auto-renewal, the rows read afterwards)
are in tests/sales/renewing.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from core.secrets import SecretBox
from sales_bot.kassa import KassaUnavailableError
from sales_bot.orders import OrderStatus
from sales_bot.store import Order
from scripts.stats import _control
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop, bot_token
from tests.sales.master_stub import MasterStub
from tests.sales.people import Person
from tests.sales.renewing import (
    DUE,
    bought,
    bought_renewing,
    deliver,
    extend_calls,
    moved_clock,
    renewal_orders,
    subscription,
    texts,
)


async def test_consent_saves_the_card_and_the_renewal_extends_exactly_once(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    first = await bought(shop, auto_renew=True)
    first_payment = shop.kassa.payments[first.payment_id or ""]
    assert shop.kassa.bodies[first_payment["id"]]["save_payment_method"] is True
    method_id = first_payment["payment_method"]["id"]
    assert first_payment["payment_method"]["saved"] is True

    tenant = stub.by_id(first.tenant_id or "")
    assert tenant is not None
    sub = await subscription(shop, tenant.tenant_id)
    assert sub["auto_renew"] is True
    assert (sub["card_last4"], sub["card_expiry"]) == ("4444", "07/2031")
    assert method_id not in str(sub) and method_id not in str(await shop.fetch(
        "SELECT * FROM control.sales_orders"))  # fmt: skip
    keys = shop.app.settings.encryption_keys.get_secret_value()
    assert SecretBox(keys).decrypt(tenant.tenant_id, sub["method_enc"]) == method_id
    assert first.method_enc is None  # moved to the subscription, not kept on the order
    assert sub["paid_until"] == tenant.expires_at
    assert sub["next_charge_at"] == tenant.expires_at - timedelta(days=3)

    clock.ahead(timedelta(days=26))  # not due yet
    assert await shop.app.renewals.run_once() == 0
    assert shop.kassa.charges == []

    clock.ahead(DUE)
    expires_before = tenant.expires_at
    assert await shop.app.renewals.run_once() == 1
    [charge] = shop.kassa.charges
    assert charge["method_id"] == method_id and charge["status"] == "succeeded"
    assert charge["amount"] == {"value": "990.00", "currency": "RUB"}
    assert charge["receipt"]["customer"] == {"email": "owner@example.com"}
    assert charge["receipt"]["items"][0]["amount"] == {"value": "990.00", "currency": "RUB"}
    assert charge["idempotence_key"] != first.idempotence_key
    [renewal] = await renewal_orders(shop)
    assert charge["metadata"]["order_id"] == renewal["order_id"]
    assert charge["metadata"]["kind"] == "renewal"
    assert renewal["payment_id"] == charge["payment_id"]
    assert renewal["cycle_end"] == expires_before
    told = await texts(shop)
    assert any("сейчас списываю 990" in t and "•••• 4444" in t for t in told)

    # YooKassa's notification, twice at once and once more late: one extension.
    statuses = await asyncio.gather(
        *(shop.notify("payment.succeeded", charge["payment_id"]) for _ in range(2))
    )
    assert statuses == [200, 200]
    await deliver(shop)
    assert await shop.notify("payment.succeeded", charge["payment_id"]) == 200
    await deliver(shop)
    assert renewal["order_id"] in stub.extend_keys
    assert extend_calls(stub) == 1
    assert tenant.expires_at - expires_before == timedelta(days=30)
    [renewal] = await renewal_orders(shop)
    assert renewal["status"] == OrderStatus.PAID and renewal["fulfilled_at"] is not None
    outbox = await shop.fetch(
        "SELECT action, done_at FROM control.sales_outbox WHERE order_id = $1",
        renewal["order_id"],
    )
    assert [(r["action"], r["done_at"] is not None) for r in outbox] == [("extend", True)]
    told = await texts(shop)
    assert sum("Автопродление: списано 990" in t for t in told) == 1
    # The "we are about to charge" notice was sent before the payment was settled.
    [soon] = await shop.fetch(
        "SELECT sent_at FROM control.sales_notices WHERE order_id = $1 AND kind = 'renewal_soon'",
        renewal["order_id"],
    )
    assert soon["sent_at"] is not None and soon["sent_at"] < renewal["paid_at"]

    sub = await subscription(shop, tenant.tenant_id)
    assert sub["paid_until"] == tenant.expires_at
    assert sub["next_charge_at"] == tenant.expires_at - timedelta(days=3)
    assert await shop.app.renewals.run_once() == 0  # same clock: this period is paid
    assert len(shop.kassa.charges) == 1


async def test_without_consent_the_card_is_never_saved_nor_charged(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    order = await bought(shop, auto_renew=False)
    payment = shop.kassa.payments[order.payment_id or ""]
    assert "save_payment_method" not in shop.kassa.bodies[payment["id"]]
    assert payment["payment_method"]["saved"] is False
    sub = await subscription(shop, order.tenant_id or "")
    assert sub["auto_renew"] is False and sub["method_enc"] is None
    assert sub["next_charge_at"] is None
    for days in (27, 29, 31, 60):
        clock.ahead(timedelta(days=days))
        assert await shop.app.renewals.run_once() == 0
    assert shop.kassa.charges == []
    assert await renewal_orders(shop) == []


async def test_a_declined_charge_tells_the_owner_why_offers_to_pay_and_is_retried(
    make_shop: Callable[..., Awaitable[Shop]], stub: MasterStub
) -> None:
    shop = await make_shop(polling=True)
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    tenant, method_id = bot.tenant, bot.method_id
    shop.kassa.decline(method_id, "insufficient_funds")

    clock.ahead(DUE)
    await shop.app.renewals.run_once()
    await deliver(shop)
    [declined] = shop.kassa.charges
    assert declined["status"] == "canceled"
    [failed] = await renewal_orders(shop)
    assert failed["status"] == OrderStatus.CANCELED
    assert failed["cancel_reason"] == "insufficient_funds"
    sub = await subscription(shop, tenant.tenant_id)
    assert sub["failures"] == 1 and sub["auto_renew"] is True
    assert sub["next_charge_at"] == clock.now + timedelta(days=1)
    assert not stub.extend_keys
    # Operators see it in `make stats`: a failed renewal this month, one due within the week
    # of the retry.
    conn = await asyncpg.connect(shop.pg_dsn)
    try:
        _, payments, _ = await _control(conn, datetime.now(UTC), ZoneInfo("Europe/Moscow"))
        assert payments is not None and payments.renewals_failed == 1
        assert payments.renewals_due_week == 0
        _, later, _ = await _control(conn, clock.now, ZoneInfo("Europe/Moscow"))
        assert later is not None and later.renewals_due_week == 1
    finally:
        await conn.close()

    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    notice = await owner.wait("Не удалось продлить")
    assert "на карте не хватает денег" in notice.plain_text
    retry_day = (clock.now + timedelta(days=1)).strftime("%d.%m.%Y")
    assert f"Попробую снова {retry_day}" in notice.plain_text
    assert notice.buttons() == [["💳 Оплатить 990\u00a0₽"]]
    # The button leads to a payment link (auto-renewal asked again first).
    consent = await owner.press(notice, "💳 Оплатить 990\u00a0₽", "Включить автопродление?")
    link = await owner.press(consent, "Оплатить один раз, без автопродления", "Продление")
    assert link.reply_markup["inline_keyboard"][0][0]["url"].startswith(shop.kassa.base_url)  # type: ignore[index]

    # Same day: not charged again.
    await shop.app.renewals.run_once()
    assert len(shop.kassa.charges) == 1
    # A day later, with money on the card: charged with a new key, extended once.
    shop.kassa.decline(method_id, None)
    clock.ahead(DUE + timedelta(days=1, minutes=1))
    expires_before = tenant.expires_at
    assert await shop.app.renewals.run_once() == 1
    await deliver(shop)
    first_try, second_try = shop.kassa.charges
    assert second_try["status"] == "succeeded"
    assert second_try["idempotence_key"] != first_try["idempotence_key"]
    assert tenant.expires_at - expires_before == timedelta(days=30)
    sub = await subscription(shop, tenant.tenant_id)
    assert sub["failures"] == 0 and sub["last_failure"] is None
    await owner.wait("Автопродление: списано 990")


async def test_turning_auto_renewal_off_while_a_charge_is_claimed_charges_nothing(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    order = await bought(shop, auto_renew=True)
    tenant_id = order.tenant_id or ""
    switched: list[Any] = []

    async def owner_switches_off(claimed: Order) -> None:
        # The charge is claimed (order written, owner warned) but not sent yet.
        [row] = await renewal_orders(shop)
        assert row["status"] == OrderStatus.PENDING and row["payment_id"] is None
        switched.append(await shop.app.store.set_auto_renew(tenant_id, OWNER, False))

    shop.app.renewals.after_claim = owner_switches_off
    clock.ahead(DUE)
    assert await shop.app.renewals.run_once() == 0
    assert switched and switched[0].auto_renew is False
    assert shop.kassa.charges == []
    assert not [p for p in shop.kassa.payments.values() if p["metadata"].get("kind") == "renewal"]
    [row] = await renewal_orders(shop)
    assert row["status"] == OrderStatus.CANCELED and row["cancel_reason"] == "opted_out"
    assert row["payment_id"] is None
    sub = await subscription(shop, tenant_id)
    assert sub["auto_renew"] is False and sub["next_charge_at"] is None
    clock.ahead(DUE + timedelta(days=5))
    assert await shop.app.renewals.run_once() == 0
    assert shop.kassa.charges == []


async def test_a_switch_during_the_charge_waits_for_it(shop: Shop, stub: MasterStub) -> None:
    """The switch takes the lock the charge holds: it lands after the charge was sent (made
    with consent), never between the consent check and YooKassa."""
    clock = moved_clock(shop)
    order = await bought(shop, auto_renew=True)
    shop.kassa.delay = 1.0  # YooKassa answers slowly: the charge holds the lock meanwhile
    clock.ahead(DUE)
    charging = asyncio.create_task(shop.app.renewals.run_once())
    await shop.wait(
        lambda: asyncio.sleep(0, result=("POST", "/v3/payments") in shop.kassa.requests[-1:])
    )
    sub = await shop.app.store.set_auto_renew(order.tenant_id or "", OWNER, False)
    assert sub is not None and sub.auto_renew is False
    [row] = await renewal_orders(shop)  # read after the switch returned
    assert row["payment_id"] is not None  # the charge was sent before the switch landed
    assert await charging == 1
    shop.kassa.delay = 0
    clock.ahead(DUE + timedelta(days=40))
    assert await shop.app.renewals.run_once() == 0
    assert len(shop.kassa.charges) == 1


async def test_subscription_shows_the_card_and_removing_it_stops_charges(
    make_shop: Callable[..., Awaitable[Shop]], stub: MasterStub
) -> None:
    shop = await make_shop(polling=True)
    clock = moved_clock(shop)
    bought_bot = await bought_renewing(shop, stub)
    order, tenant = bought_bot.order, bought_bot.tenant
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    card = await owner.ask("/subscription", "Автопродление: включено")
    assert "карта •••• 4444 (07/2031)" in card.plain_text
    next_day = (tenant.expires_at - timedelta(days=3)).strftime("%d.%m.%Y")
    assert f"Следующее списание: {next_day}, 990\u00a0₽" in card.plain_text
    bot = f"@{order.bot_username}"
    assert [f"Отключить автопродление {bot}"] in card.buttons()

    payments = await owner.press(card, f"Платежи {bot}", "Платежи")
    assert "990\u00a0₽ — первый платёж: оплачен" in payments.plain_text
    assert "owner@example.com" in payments.plain_text

    off = await owner.press(card, f"Отключить автопродление {bot}", "отключено")
    assert "ничего списываться не будет" in off.plain_text
    assert (await subscription(shop, tenant.tenant_id))["auto_renew"] is False
    twice = await owner.press(card, f"Отключить автопродление {bot}", "отключено")
    assert twice.plain_text == off.plain_text  # pressing it again changes nothing
    again = await owner.ask("/subscription", "Сохранённая карта: •••• 4444 (07/2031)")
    back = await owner.press(again, f"Включить автопродление {bot}", "включено")
    assert f"следующее списание {next_day}, 990\u00a0₽" in back.plain_text
    assert (await subscription(shop, tenant.tenant_id))["auto_renew"] is True

    removed = await owner.press(card, "Удалить карту •••• 4444", "Карта удалена")
    assert "ничего списываться не будет" in removed.plain_text
    sub = await subscription(shop, tenant.tenant_id)
    assert sub["method_enc"] is None and sub["card_last4"] is None
    assert sub["auto_renew"] is False and sub["next_charge_at"] is None
    again = await owner.ask("/subscription", "Автопродление: выключено")
    assert not any("Удалить карту" in b for row in again.buttons() for b in row)

    for days in (27, 28, 40):
        clock.ahead(timedelta(days=days, hours=1))
        assert await shop.app.renewals.run_once() == 0
    assert shop.kassa.charges == []


async def test_checkout_asks_for_consent_with_the_terms(
    make_shop: Callable[..., Awaitable[Shop]], stub: MasterStub
) -> None:
    """Through the dialog: the terms in plain words, a button each; "yes" saves the card."""
    shop = await make_shop(polling=True)
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    home = await owner.ask("/start", "Botfleet")
    plans = await owner.press(home, "🛒 Купить бота", "Выберите тариф")
    await owner.press(plans, plans.buttons()[0][0], "Как называется")
    kinds = await owner.ask("Барбершоп", "Чем занимается")
    zones = await owner.press(kinds, "Другое", "часовом поясе")
    await owner.press(zones, "Самара (UTC+4)", "@BotFather")
    token = bot_token()
    await shop.tg.register_bot(token, "barber_auto_bot")
    confirm = await owner.ask(token, "@barber_auto_bot")
    await owner.press(confirm, "Да, это мой бот", "email")
    consent = await owner.ask("me@example.org", "Включить автопродление?")
    terms = consent.plain_text
    for part in ("990\u00a0₽", "за 3 дн. до конца", "Перед каждым списанием", "/subscription",
                 "ничего не списывается"):  # fmt: skip
        assert part in terms, part
    assert consent.buttons() == [
        ["✅ Да, продлевать автоматически"],
        ["Оплатить один раз, без автопродления"],
    ]
    pay = await owner.press(consent, "✅ Да, продлевать автоматически", "Оплатить")
    assert "Автопродление: включено" in pay.plain_text
    payment_id = pay.reply_markup["inline_keyboard"][0][0]["url"].rsplit("/", 1)[1]  # type: ignore[index]
    assert shop.kassa.bodies[payment_id]["save_payment_method"] is True
    [row] = await shop.fetch("SELECT auto_renew FROM control.sales_orders")
    assert row["auto_renew"] is True


class LosesAnswers:
    """A PaymentGateway whose next `lose` create answers are lost after YooKassa acted (a crash
    or a cut connection between the charge and recording it)."""

    def __init__(self, inner: Any, lose: int) -> None:
        self.inner, self.lose = inner, lose

    async def create_payment(self, draft: Any) -> Any:
        payment = await self.inner.create_payment(draft)
        if self.lose > 0:
            self.lose -= 1
            raise KassaUnavailableError("the answer was lost")
        return payment

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_charge_whose_answer_was_lost_is_resent_with_its_key_and_charged_once(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    renewals = shop.app.renewals
    tenant = (await bought_renewing(shop, stub)).tenant
    renewals.kassa = LosesAnswers(renewals.kassa, lose=1)
    renewals.resend_after = 0
    clock.ahead(DUE)
    expires_before = tenant.expires_at
    assert await renewals.run_once() == 0  # charged at YooKassa, not recorded here
    [charge] = shop.kassa.charges
    [row] = await renewal_orders(shop)
    assert row["status"] == OrderStatus.PENDING and row["payment_id"] is None

    assert await renewals.run_once() == 1  # resent: same idempotence key, the same payment
    assert len(shop.kassa.charges) == 1
    [row] = await renewal_orders(shop)
    assert row["payment_id"] == charge["payment_id"]
    assert row["idempotence_key"] == charge["idempotence_key"]
    await deliver(shop)
    assert await shop.notify("payment.succeeded", charge["payment_id"]) == 200
    await deliver(shop)
    assert tenant.expires_at - expires_before == timedelta(days=30)
    assert extend_calls(stub) == 1


async def test_a_notification_after_the_owner_turned_renewal_off_is_honoured_once(
    shop: Shop, stub: MasterStub
) -> None:
    """YooKassa charged (with consent) but its answer was lost; the owner turns auto-renewal
    off; the charge is not sent again, and YooKassa's late notification still extends the paid
    period once: money taken is never lost, and nothing more is charged."""
    clock = moved_clock(shop)
    renewals = shop.app.renewals
    bot = await bought_renewing(shop, stub)
    expires_before = bot.tenant.expires_at
    renewals.kassa = LosesAnswers(renewals.kassa, lose=1)
    renewals.resend_after = 0
    clock.ahead(DUE)
    assert await renewals.run_once() == 0  # charged at YooKassa, not recorded here
    [charge] = shop.kassa.charges
    sub = await shop.app.store.set_auto_renew(bot.tenant_id, OWNER, False)
    assert sub is not None and sub.auto_renew is False
    assert await renewals.run_once() == 0  # the unsent charge is not sent again
    [row] = await renewal_orders(shop)
    assert (row["status"], row["cancel_reason"]) == ("canceled", "opted_out")
    assert len(shop.kassa.charges) == 1

    for _ in range(2):  # late, and twice
        assert await shop.notify("payment.succeeded", charge["payment_id"]) == 200
        await deliver(shop)
    [row] = await renewal_orders(shop)
    assert (row["status"], row["payment_id"]) == ("paid", charge["payment_id"])
    assert bot.tenant.expires_at - expires_before == timedelta(days=30)
    assert extend_calls(stub) == 1
    assert sum("Автопродление: списано 990" in t for t in await texts(shop)) == 1
    sub_row = await subscription(shop, bot.tenant_id)
    assert sub_row["auto_renew"] is False and sub_row["next_charge_at"] is None
    assert sub_row["paid_until"] == bot.tenant.expires_at
    for days in (30, 60):
        clock.ahead(DUE + timedelta(days=days))
        assert await renewals.run_once() == 0
    assert len(shop.kassa.charges) == 1


async def test_change_card_in_subscription_saves_the_new_card_and_the_old_is_never_charged(
    make_shop: Callable[..., Awaitable[Shop]], stub: MasterStub
) -> None:
    shop = await make_shop(polling=True)
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    card = await owner.ask("/subscription", "Автопродление: включено")
    before = await owner.seen()
    consent = await owner.press(card, "Сменить карту •••• 4444", "Включить автопродление?")
    [why] = [m for m in (await shop.messages())[before:] if "новой картой" in m.plain_text]
    assert "990\u00a0₽ за 30 дн." in why.plain_text and "заменит старую" in why.plain_text
    pay = await owner.press(consent, "✅ Да, продлевать автоматически", "Оплатить")
    payment_id = pay.reply_markup["inline_keyboard"][0][0]["url"].rsplit("/", 1)[1]  # type: ignore[index]
    assert shop.kassa.bodies[payment_id]["save_payment_method"] is True
    shop.kassa.card = {**shop.kassa.card, "last4": "1111", "expiry_month": "12",
                       "expiry_year": "2030"}  # fmt: skip
    [extension] = await shop.fetch("SELECT * FROM control.sales_orders WHERE kind = 'extend'")
    paid = await shop.app.store.get(extension["order_id"])
    assert paid is not None and await shop.pay(paid) == 200
    await shop.settle(paid)
    sub = await subscription(shop, bot.tenant_id)
    assert (sub["card_last4"], sub["card_expiry"], sub["auto_renew"]) == ("1111", "12/2030", True)
    shown = await owner.ask("/subscription", "карта •••• 1111 (12/2030)")
    assert ["Сменить карту •••• 1111"] in shown.buttons()

    clock.ahead(DUE + timedelta(days=30))  # the period the new card paid for ends
    assert await shop.app.renewals.run_once() == 1
    [charge] = shop.kassa.charges
    new_method = shop.kassa.payments[payment_id]["payment_method"]["id"]
    assert charge["method_id"] == new_method != bot.method_id


async def test_a_refunded_renewal_pauses_the_bot_and_the_card_is_not_charged_again(
    shop: Shop, stub: MasterStub
) -> None:
    """As a refunded first payment (REFUND_SUSPENDS on): the bot is paused once, the owner told
    once; auto-renewal goes off (the card stays saved), so the next period is not charged."""
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    clock.ahead(DUE)
    assert await shop.app.renewals.run_once() == 1
    await deliver(shop)
    [charge] = shop.kassa.charges
    [renewal] = await renewal_orders(shop)
    assert bot.tenant.status == "active" and renewal["fulfilled_at"] is not None

    refund_id = shop.kassa.refund(charge["payment_id"])["id"]
    for _ in range(2):
        assert await shop.notify("refund.succeeded", refund_id) == 200
    await shop.settle(await _order(shop, renewal["order_id"]))
    [row] = await renewal_orders(shop)
    assert row["status"] == OrderStatus.REFUNDED
    assert bot.tenant.status == "suspended"
    suspends = [p for m, p in stub.calls if p == f"/api/v1/tenants/{bot.tenant_id}/suspend"]
    assert len(suspends) == 1
    assert sum("возвращена, поэтому бот приостановлен" in t for t in await texts(shop)) == 1
    sub = await subscription(shop, bot.tenant_id)
    assert (sub["auto_renew"], sub["next_charge_at"]) == (False, None)
    assert sub["method_enc"] is not None and sub["card_last4"] == "4444"
    for days in (30, 31, 60):
        clock.ahead(DUE + timedelta(days=days))
        assert await shop.app.renewals.run_once() == 0
    assert len(shop.kassa.charges) == 1


async def test_paying_with_auto_renewal_again_replaces_the_card(
    shop: Shop, stub: MasterStub
) -> None:
    """Card change: an extension paid with consent saves the new card in place of the old."""
    order = await bought(shop, auto_renew=True)
    tenant_id = order.tenant_id or ""
    old = await subscription(shop, tenant_id)
    plan = shop.app.catalog.get("start")
    assert plan is not None
    owned = await shop.reload(order)
    shop.kassa.card = {**shop.kassa.card, "last4": "1111", "expiry_month": "12",
                       "expiry_year": "2030"}  # fmt: skip
    extension = await shop.app.billing.open_extension(
        user_id=OWNER, locale="ru", plan=plan, email="owner@example.com", tenant=owned,
        auto_renew=True,
    )  # fmt: skip
    extension = await shop.app.billing.checkout(extension, description="t", item="t")
    assert await shop.pay(extension) == 200
    await shop.settle(extension)
    new = await subscription(shop, tenant_id)
    assert (new["card_last4"], new["card_expiry"]) == ("1111", "12/2030")
    assert new["auto_renew"] is True and new["method_enc"] != old["method_enc"]
    keys = shop.app.settings.encryption_keys.get_secret_value()
    saved = shop.kassa.payments[extension.payment_id or ""]["payment_method"]["id"]
    assert SecretBox(keys).decrypt(tenant_id, new["method_enc"]) == saved


async def test_a_revoked_permission_drops_the_card_and_stops_retries(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    shop.kassa.revoke_method(bot.method_id)
    clock.ahead(DUE)
    await shop.app.renewals.run_once()
    await deliver(shop)
    [charge] = shop.kassa.charges
    assert charge["status"] == "canceled"
    sub = await subscription(shop, bot.tenant_id)
    assert sub["auto_renew"] is False and sub["method_enc"] is None
    assert sub["last_failure"] == "permission_revoked" and sub["next_charge_at"] is None
    told = await texts(shop)
    [notice] = [t for t in told if "Не удалось продлить" in t]
    assert "разрешение на списание с карты отозвано" in notice
    assert "больше нельзя списывать" in notice
    for days in (1, 2, 3, 10):
        clock.ahead(DUE + timedelta(days=days))
        assert await shop.app.renewals.run_once() == 0
    assert len(shop.kassa.charges) == 1


async def test_the_master_is_asked_first_deleted_is_never_charged_extended_moves_the_date(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    kept_tenant = (await bought_renewing(shop, stub)).tenant
    deleted_tenant = (await bought_renewing(shop, stub, user_id=OWNER + 1)).tenant
    deleted_tenant.status = "deleted"
    kept_tenant.expires_at += timedelta(days=10)  # an operator extended it in the master
    clock.ahead(DUE)
    assert await shop.app.renewals.run_once() == 0
    assert shop.kassa.charges == []
    gone = await subscription(shop, deleted_tenant.tenant_id)
    assert gone["auto_renew"] is False and gone["next_charge_at"] is None
    moved = await subscription(shop, kept_tenant.tenant_id)
    assert moved["paid_until"] == kept_tenant.expires_at
    assert moved["next_charge_at"] == kept_tenant.expires_at - timedelta(days=3)
    clock.ahead(DUE + timedelta(days=10))
    assert await shop.app.renewals.run_once() == 1
    [charge] = shop.kassa.charges
    [row] = await renewal_orders(shop)
    assert row["tenant_id"] == kept_tenant.tenant_id and charge["status"] == "succeeded"


async def test_the_master_down_during_a_renewal_extends_once_when_it_is_back(
    shop: Shop, stub: MasterStub
) -> None:
    """Charged, then the master is unreachable: the extension waits in the outbox (retried),
    later passes charge nothing more, and it lands once when the master is back."""
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    expires_before = bot.tenant.expires_at

    async def master_goes_down(claimed: Order) -> None:
        await stub.stop()  # after the pre-charge check, before the charge

    shop.app.renewals.after_claim = master_goes_down
    clock.ahead(DUE)
    assert await shop.app.renewals.run_once() == 1
    [charge] = shop.kassa.charges
    assert charge["status"] == "succeeded"
    for _ in range(2):  # YooKassa's notification, twice, while the master is down
        assert await shop.notify("payment.succeeded", charge["payment_id"]) == 200
    [renewal] = await renewal_orders(shop)

    async def tried_again() -> bool:
        await deliver(shop)
        [row] = await shop.fetch(
            "SELECT attempts, done_at, last_error FROM control.sales_outbox WHERE order_id = $1",
            renewal["order_id"],
        )
        return bool(row["attempts"] >= 2 and row["done_at"] is None and row["last_error"])

    await shop.wait(tried_again)
    # Later passes, even past the retry days: the period is paid, nothing is charged again.
    for days in (0, 1, 2, 4):
        clock.ahead(DUE + timedelta(days=days))
        assert await shop.app.renewals.run_once() == 0
    assert len(shop.kassa.charges) == 1 and bot.tenant.expires_at == expires_before
    assert not [t for t in await texts(shop) if "Автопродление: списано" in t]

    await stub.start()  # the master is back (same address)
    await shop.settle(await _order(shop, renewal["order_id"]))
    assert bot.tenant.expires_at - expires_before == timedelta(days=30)
    assert extend_calls(stub) == 1 and stub.extend_keys == {renewal["order_id"]}
    assert sum("Автопродление: списано 990" in t for t in await texts(shop)) == 1
    sub = await subscription(shop, bot.tenant_id)
    assert sub["paid_until"] == bot.tenant.expires_at
    assert sub["next_charge_at"] == bot.tenant.expires_at - timedelta(days=3)
    clock.ahead(DUE + timedelta(days=5))
    assert await shop.app.renewals.run_once() == 0
    assert len(shop.kassa.charges) == 1


async def test_a_card_that_expires_between_two_charges_stops_renewals_and_offers_to_pay(
    make_shop: Callable[..., Awaitable[Shop]], stub: MasterStub
) -> None:
    shop = await make_shop(polling=True)
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    clock.ahead(DUE)
    assert await shop.app.renewals.run_once() == 1
    await deliver(shop)
    paid_until = bot.tenant.expires_at  # one period renewed with the card

    shop.kassa.expire_card(bot.method_id)
    clock.ahead(DUE + timedelta(days=30))
    await shop.app.renewals.run_once()
    await deliver(shop)
    first, second = shop.kassa.charges
    assert (first["status"], second["status"]) == ("succeeded", "canceled")
    for _ in range(2):  # YooKassa's payment.canceled, twice: nothing more happens
        assert await shop.notify("payment.canceled", second["payment_id"]) == 200
    await deliver(shop)
    failed = (await renewal_orders(shop))[-1]
    assert (failed["status"], failed["cancel_reason"]) == ("canceled", "card_expired")
    sub = await subscription(shop, bot.tenant_id)
    assert (sub["auto_renew"], sub["method_enc"], sub["next_charge_at"]) == (False, None, None)
    assert (sub["failures"], sub["last_failure"]) == (1, "card_expired")

    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    notice = await owner.wait("Не удалось продлить")
    assert "срок действия карты истёк" in notice.plain_text
    assert "больше нельзя списывать" in notice.plain_text
    assert len([t for t in await texts(shop) if "Не удалось продлить" in t]) == 1
    consent = await owner.press(notice, "💳 Оплатить 990\u00a0₽", "Включить автопродление?")
    link = await owner.press(consent, "Оплатить один раз, без автопродления", "Продление")
    assert link.reply_markup["inline_keyboard"][0][0]["url"].startswith(shop.kassa.base_url)  # type: ignore[index]

    # No retry with a dead card; the period ends as paid (the master's expiry and grace).
    for days in (1, 2, 3, 10):
        clock.ahead(DUE + timedelta(days=30 + days))
        assert await shop.app.renewals.run_once() == 0
    assert len(shop.kassa.charges) == 2
    assert bot.tenant.expires_at == paid_until and extend_calls(stub) == 1


async def _order(shop: Shop, order_id: str) -> Order:
    order = await shop.app.store.get(order_id)
    assert order is not None
    return order
