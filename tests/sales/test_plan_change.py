"""Plan changes from /subscription and failed-renewal alerts (issue 17), end to end: the sales
bot in the Telegram emulator, the YooKassa fake through the real SDK, and the real master
(process backend: each tenant's bot is a real client bot process) over its REST API.

- an upgrade mid-period is charged once, the remaining days at the price difference, and the
  master switches the plan: control.tenants says so and the re-deployed bot process has the new
  plan's features in its environment;
- a downgrade is stored, charged at the lower price by the next renewal and switched by the
  master only when that period begins;
- a failed renewal raises exactly one operator alert (the master's subscription monitor).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

from master_bot.alert import AlertKind
from master_bot.deploy.process import PID_FILE
from master_bot.services import Master
from sales_bot.store import Order
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop
from tests.sales.people import Person
from tests.sales.renewing import DUE, bought, deliver, moved_clock, paid_upgrade, subscription
from tests.sales.test_headline import MASTER_TOKEN, real_master
from tests.support import wait_until

__all__ = ["real_master"]  # the fixture, used by name below

AI = "ai_assistant"


async def buy(shop: Shop, plan_id: str, name: str) -> Order:
    """A bot bought with auto-renewal on the checkout page; the real master provisions it."""
    return await bought(shop, auto_renew=True, plan=plan_id, name=name, timeout=60)


async def tenant_row(shop: Shop, tenant_id: str) -> dict[str, Any]:
    [row] = await shop.fetch(
        "SELECT plan, expires_at FROM control.tenants WHERE tenant_id = $1", tenant_id
    )
    return dict(row)


def bot_features(clients: Path, tenant_id: str) -> set[str]:
    """PLAN_FEATURES in the environment of the tenant's running bot process."""
    pid = json.loads((clients / tenant_id / PID_FILE).read_text())["pid"]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    return set(filter(None, env["PLAN_FEATURES"].split(",")))


async def test_an_upgrade_mid_period_is_charged_once_prorated_and_the_bot_gets_the_features(
    make_shop: Callable[..., Awaitable[Shop]],
    real_master: tuple[Master, str],
    tmp_path: Path,
) -> None:
    master, url = real_master
    shop = await make_shop(master_url=url, master_token=MASTER_TOKEN, polling=True)
    order = await buy(shop, "start", "upgrade_salon_bot")
    tid = order.tenant_id or ""
    clients = tmp_path / "clients"
    assert bot_features(clients, tid) == {"booking", "reminders", "admin_panel"}
    # Mid-period: 20 days of the 30 left (990 ₽ -> 2490 ₽ a month: 50 ₽ a day more).
    conn = await asyncpg.connect(shop.pg_dsn)
    try:
        await conn.execute(
            "UPDATE control.tenants SET expires_at = now() + interval '20 days' - interval '1 min'"
            " WHERE tenant_id = $1",
            tid,
        )
    finally:
        await conn.close()
    expires = (await tenant_row(shop, tid))["expires_at"]

    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    card = await owner.ask("/subscription", "Тариф: Старт")
    bot = f"@{order.bot_username}"
    choice = await owner.press(card, f"Сменить тариф {bot}", "Выберите другой")
    assert (
        "«Бизнес»: сразу, 1\u00a0000\u00a0₽ за оставшиеся 20 дн.; затем 2\u00a0490\u00a0₽ за 30 дн."
        in (choice.plain_text)
    )
    checkout = await owner.press(choice, "Бизнес", "Переход")
    assert f"Переход {bot} на тариф «Бизнес»: 1\u00a0000\u00a0₽ за оставшиеся 20 дн." in (
        checkout.plain_text
    )
    again = await owner.press(choice, "Бизнес", "Переход")  # pressed twice: the same payment
    assert again.buttons() == checkout.buttons()
    [upgrade] = await shop.fetch("SELECT * FROM control.sales_orders WHERE kind = 'upgrade'")
    assert (upgrade["plan"], upgrade["plan_from"], upgrade["amount"], upgrade["period_days"]) == (
        "business", "start", Decimal("1000.00"), 20,
    )  # fmt: skip
    assert upgrade["tenant_id"] == tid and upgrade["cycle_end"] == expires
    payment = shop.kassa.payments[upgrade["payment_id"]]
    assert payment["amount"] == {"value": "1000.00", "currency": "RUB"}
    assert shop.kassa.bodies[payment["id"]].get("save_payment_method") in (None, False)

    shop.kassa.succeed(payment["id"])  # paid on the YooKassa page
    assert await shop.notify("payment.succeeded", payment["id"]) == 200
    assert await shop.notify("payment.succeeded", payment["id"]) == 200  # a duplicate
    paid = await shop.app.store.get(upgrade["order_id"])
    assert paid is not None
    await shop.settle(paid, timeout=60)
    done = await owner.wait("теперь на тарифе «Бизнес»")
    assert "дальше тариф стоит 2\u00a0490\u00a0₽ за 30 дн." in done.plain_text

    # Charged once, the plan switched once, the period unchanged.
    upgrade_payments = [
        p for p in shop.kassa.payments.values() if p["metadata"].get("order_id") == paid.order_id
    ]
    assert len(upgrade_payments) == 1
    assert await tenant_row(shop, tid) == {"plan": "business", "expires_at": expires}
    changes = await shop.fetch(
        "SELECT details FROM control.audit_log WHERE tenant_id = $1 AND action = 'plan.changed'",
        tid,
    )
    assert len(changes) == 1
    [outbox] = await shop.fetch(
        "SELECT action, done_at, attempts FROM control.sales_outbox WHERE order_id = $1",
        paid.order_id,
    )
    assert outbox["action"] == "change_plan" and outbox["done_at"] is not None
    # Renewals now charge the new plan; the bot runs with the plan's features.
    sub = await subscription(shop, tid)
    assert (sub["plan"], sub["amount"], sub["period_days"]) == ("business", Decimal("2490.00"), 30)
    assert AI in bot_features(clients, tid) and "broadcasts" in bot_features(clients, tid)
    payments = await owner.press(card, f"Платежи {bot}", "Платежи")
    assert "1\u00a0000\u00a0₽ — переход на тариф выше: оплачен" in payments.plain_text
    assert master.deps.metrics.deploys.get("plan") == 1

    # The endpoint itself: a retry with the order's key changes nothing; bad requests are 4xx.
    async def post(plan: str, key: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {MASTER_TOKEN}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{url}/api/v1/tenants/{tid}/plan", json={"plan": plan}, headers=headers
            ) as resp,
        ):
            return resp.status, await resp.json()

    status, body = await post("business", paid.order_id)
    assert (status, body["plan"]) == (200, "business")
    status, body = await post("start", paid.order_id)
    assert (status, body["error"]["code"]) == (409, "idempotency_key_reused")
    status, body = await post("platinum", "k-1")
    assert (status, body["error"]["code"]) == (422, "unknown_plan")
    status, body = await post("start", None)
    assert (status, body["error"]["code"]) == (400, "idempotency_key_required")
    assert (await tenant_row(shop, tid))["plan"] == "business"
    assert len(await shop.fetch(
        "SELECT 1 FROM control.audit_log WHERE tenant_id = $1 AND action = 'plan.changed'", tid
    )) == 1  # fmt: skip


async def test_a_refunded_upgrade_switches_the_bot_back_once_and_tells_the_owner(
    make_shop: Callable[..., Awaitable[Shop]],
    real_master: tuple[Master, str],
    tmp_path: Path,
) -> None:
    """Issue 17.5 with the real master: the refund of a delivered upgrade puts control.tenants
    and the running bot back on the plan the period was paid on, with one more plan.changed;
    duplicate and late notifications change nothing more; the bot is not paused."""
    _, url = real_master
    shop = await make_shop(master_url=url, master_token=MASTER_TOKEN)
    order = await buy(shop, "start", "refund_salon_bot")
    tid = order.tenant_id or ""
    clients = tmp_path / "clients"
    before = await tenant_row(shop, tid)
    paid = await paid_upgrade(
        shop, order, current="start", to="business", period_end=before["expires_at"]
    )
    await shop.settle(paid, timeout=60)
    assert (await tenant_row(shop, tid))["plan"] == "business"
    assert AI in bot_features(clients, tid)

    refund_id = shop.kassa.refund(paid.payment_id or "")["id"]
    for _ in range(2):
        assert await shop.notify("refund.succeeded", refund_id) == 200
    await shop.settle(paid, timeout=60)
    assert await shop.notify("payment.succeeded", paid.payment_id or "") == 200  # late
    await shop.settle(paid, timeout=60)

    assert await tenant_row(shop, tid) == {"plan": "start", "expires_at": before["expires_at"]}
    changes = await shop.fetch(
        "SELECT details FROM control.audit_log WHERE tenant_id = $1 AND action = 'plan.changed'"
        " ORDER BY id",
        tid,
    )
    assert [json.loads(c["details"])["to"] for c in changes] == ["business", "start"]
    [status] = await shop.fetch("SELECT status FROM control.tenants WHERE tenant_id = $1", tid)
    assert status["status"] == "active"
    await wait_until(lambda: _features_lack(clients, tid, AI), 30)
    assert bot_features(clients, tid) == {"booking", "reminders", "admin_panel"}
    sub = await subscription(shop, tid)
    assert (sub["plan"], sub["amount"]) == ("start", Decimal("990.00"))
    told = [m.plain_text for m in await shop.messages() if "возвращена" in m.plain_text]
    assert len(told) == 1 and "снова на тарифе «Старт»" in told[0]


async def test_a_downgrade_is_charged_and_applied_at_the_next_renewal_not_before(
    make_shop: Callable[..., Awaitable[Shop]],
    real_master: tuple[Master, str],
    tmp_path: Path,
) -> None:
    _, url = real_master
    shop = await make_shop(master_url=url, master_token=MASTER_TOKEN, polling=True)
    clock = moved_clock(shop)
    order = await buy(shop, "business", "downgrade_salon_bot")
    tid = order.tenant_id or ""
    bot = f"@{order.bot_username}"
    before = await tenant_row(shop, tid)

    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    card = await owner.ask("/subscription", "Тариф: Бизнес")
    choice = await owner.press(card, f"Сменить тариф {bot}", "Выберите другой")
    picked = await owner.press(choice, "Старт", "переходит на тариф «Старт»")
    assert "990\u00a0₽ за 30 дн." in picked.plain_text
    assert "сейчас ничего не списывается" in picked.plain_text
    sub = await subscription(shop, tid)
    assert (sub["next_plan"], sub["next_amount"], sub["plan"]) == (
        "start", Decimal("990.00"), "business",
    )  # fmt: skip
    shown = await owner.ask("/subscription", "тариф «Старт», 990")
    assert "Тариф: Бизнес" in shown.plain_text
    # Paying the next period by hand is on the lower plan too, switched when that period begins.
    terms = await owner.press(shown, f"Продлить {bot} — 990\u00a0₽", "Тариф Старт: 990")
    await owner.press(terms, "Оплатить один раз, без автопродления", "Продление")
    [manual] = await shop.fetch("SELECT * FROM control.sales_orders WHERE kind = 'extend'")
    assert (manual["plan"], manual["plan_from"], manual["amount"]) == (
        "start", "business", Decimal("990.00"),
    )  # fmt: skip
    assert manual["cycle_end"] == before["expires_at"] and manual["status"] == "pending"
    assert await shop.fetch("SELECT 1 FROM control.sales_orders WHERE kind = 'upgrade'") == []

    clock.ahead(timedelta(days=20))  # mid-period: nothing charged, nothing switched
    assert await shop.app.renewals.run_once() == 0
    assert shop.kassa.charges == [] and (await tenant_row(shop, tid))["plan"] == "business"

    clock.ahead(DUE)  # the renewal: charged at the lower price, for the next period
    assert await shop.app.renewals.run_once() == 1
    await deliver(shop)
    [charge] = shop.kassa.charges
    assert charge["status"] == "succeeded"
    assert charge["amount"] == {"value": "990.00", "currency": "RUB"}
    [renewal] = await shop.fetch("SELECT * FROM control.sales_orders WHERE kind = 'renewal'")
    assert (renewal["plan"], renewal["plan_from"], renewal["status"]) == (
        "start", "business", "paid",
    )  # fmt: skip
    await shop.wait(lambda: _fulfilled(shop, renewal["order_id"]))
    row = await tenant_row(shop, tid)
    assert row["expires_at"] == before["expires_at"] + timedelta(days=30)
    assert row["plan"] == "business"  # the paid period has not ended yet: still Business
    assert AI in bot_features(tmp_path / "clients", tid)
    assert await shop.app.renewals.switch_plans() == 0

    clock.ahead(timedelta(days=30, minutes=5))  # the new period has begun
    assert await shop.app.renewals.switch_plans() == 1
    assert await shop.app.renewals.switch_plans() == 0  # once
    assert (await tenant_row(shop, tid))["plan"] == "start"
    sub = await subscription(shop, tid)
    assert (sub["plan"], sub["amount"], sub["next_plan"]) == ("start", Decimal("990.00"), None)
    await wait_until(lambda: _features_lack(tmp_path / "clients", tid, AI), 30)
    assert bot_features(tmp_path / "clients", tid) == {"booking", "reminders", "admin_panel"}
    assert len(shop.kassa.charges) == 1


async def test_the_expiry_reminder_of_a_renewing_bot_says_when_the_card_is_charged(
    make_shop: Callable[..., Awaitable[Shop]],
    real_master: tuple[Master, str],
) -> None:
    """The master's reminders before the end: with auto-renewal on, the charge (date, amount,
    card) and how to stop it, not "extend it"; without, "extend it" as before."""
    master, url = real_master
    shop = await make_shop(master_url=url, master_token=MASTER_TOKEN)
    renewing = await buy(shop, "start", "reminded_auto_bot")
    await bought(shop, auto_renew=False, name="reminded_manual_bot", timeout=60)
    renewing_token, manual_token = shop.tokens[-2:]
    for token in (renewing_token, manual_token):  # the owner opened each bot
        await shop.tg.send_message(token, OWNER, "/start")
    master.monitor.clock = lambda: datetime.now(UTC) + timedelta(days=23, hours=12)
    await master.monitor.run_once()

    async def reminder(token: str) -> str:  # sent by run_once, before it returned
        [text] = [
            m.plain_text
            for m in await shop.tg.messages(token, OWNER)
            if "⏳" in m.plain_text or "🔄" in m.plain_text
        ]
        return text

    sub = await subscription(shop, renewing.tenant_id or "")
    moscow = ZoneInfo("Europe/Moscow")
    charge = sub["next_charge_at"].astimezone(moscow).strftime("%d.%m.%Y %H:%M")
    auto = await reminder(renewing_token)
    assert "продлится автоматически" in auto, auto
    assert f"{charge} с карты •••• 4444 спишется 990 ₽" in auto
    assert "/subscription" in auto and "Продлите" not in auto
    plain = await reminder(manual_token)
    assert "Продлите её в боте продаж" in plain and "автоматически" not in plain


async def test_a_failed_renewal_alerts_the_operators_once(
    make_shop: Callable[..., Awaitable[Shop]],
    real_master: tuple[Master, str],
) -> None:
    master, url = real_master
    alerts: list[tuple[AlertKind, str | None, str]] = []

    class Recorder:
        async def alert(self, kind: AlertKind, tenant_id: str | None, text: str) -> None:
            alerts.append((kind, tenant_id, text))

    master.deps.alerts.add(Recorder())
    shop = await make_shop(master_url=url, master_token=MASTER_TOKEN)
    clock = moved_clock(shop)
    order = await buy(shop, "start", "declined_salon_bot")
    tid = order.tenant_id or ""
    method_id = shop.kassa.payments[order.payment_id or ""]["payment_method"]["id"]
    shop.kassa.decline(method_id, "insufficient_funds")
    await master.monitor.run_once()
    assert [a for a in alerts if a[0] is AlertKind.RENEWAL_FAILED] == []

    clock.ahead(DUE)
    await shop.app.renewals.run_once()
    await deliver(shop)
    [declined] = shop.kassa.charges
    assert declined["status"] == "canceled"
    for _ in range(3):  # every pass of the monitor sees the failed charge; one alert
        await master.monitor.run_once()
    failed = [a for a in alerts if a[0] is AlertKind.RENEWAL_FAILED]
    assert len(failed) == 1
    _, tenant_id, text = failed[0]
    assert tenant_id == tid and "insufficient_funds" in text and "990.00 RUB" in text
    assert method_id not in text


async def _fulfilled(shop: Shop, order_id: str) -> bool:
    rows = await shop.fetch(
        "SELECT 1 FROM control.sales_orders WHERE order_id = $1 AND fulfilled_at IS NOT NULL",
        order_id,
    )
    return bool(rows)


async def _features_lack(clients: Path, tenant_id: str, feature: str) -> bool:
    try:
        return feature not in bot_features(clients, tenant_id)
    except (OSError, KeyError, ValueError):
        return False  # being re-deployed
