"""The owner's subscription on the web (issues 15 and 17): the same rows as the sales bot's
/subscription, read and switched through the same SQL (database/subscriptions.py). A real sales
bot (YooKassa fake over HTTP, the Telegram emulator, the master stub) sells a bot with
auto-renewal; the web shows it, and turning it off on the web while a charge is claimed charges
nothing; the bot's /subscription shows it off; someone else's bot is a 404 on every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from core.dates import paid_until
from sales_bot.orders import OrderStatus
from sales_bot.store import Order
from tests.sales.conftest import (  # noqa: F401 - the fixtures
    OWNER,
    SALES_TOKEN,
    Shop,
    clean_sales,
    kassa,
    make_shop,
    stub,
    tg,
)
from tests.sales.master_stub import MasterStub
from tests.sales.people import Person
from tests.sales.renewing import (
    DUE,
    bought,
    bought_renewing,
    extend_calls,
    moved_clock,
    renewal_orders,
)
from tests.web.conftest import Client, WebServer, new_email
from tests.web.test_browser import browser  # noqa: F401 - the fixture
from web.tokens import issue_login_link, login_link_url


@pytest.fixture
async def platform_rows(pg_dsn: str) -> Any:
    """control.tenants rows for the stub's tenants (the master would write them), dropped after."""
    made: list[str] = []

    async def add(order: Order, expires_at: Any) -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "INSERT INTO control.tenants (tenant_id, number, status, plan, business_name,"
                " owner_telegram_id, bot_username, expires_at, provision_step)"
                " VALUES ($1, $2, 'active', $3, 'Салон', $4, $5, $6, 'done')",
                order.tenant_id,
                int((order.tenant_id or "").removeprefix("client_")),
                order.plan,
                order.user_id,
                order.bot_username,
                expires_at,
            )
        finally:
            await conn.close()
        made.append(order.tenant_id or "")

    yield add
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("DELETE FROM control.tenants WHERE tenant_id = ANY($1)", made)
    finally:
        await conn.close()


async def _nothing(claimed: Order) -> None:
    return None


async def _owner_client(http: Any, server: WebServer, telegram_id: int) -> Client:
    """The Telegram owner logged in on the web by a one-time link (as after a purchase)."""
    client = Client(http, server)
    link = issue_login_link(server.deps.keys, telegram_id, ttl=60)
    status, tokens = await client.call("POST", "/api/auth/link", json={"token": link}, token="")
    assert status == 200, tokens
    client.keep(tokens)
    return client


async def test_the_web_shows_the_subscription_and_switching_off_there_charges_nothing(
    make_shop: Callable[..., Awaitable[Shop]],  # noqa: F811
    stub: MasterStub,  # noqa: F811
    tg: Any,  # noqa: F811
    start_web: Callable[..., Awaitable[WebServer]],
    platform_rows: Any,
    http: Any,
) -> None:
    shop = await make_shop(polling=True)
    clock = moved_clock(shop)
    bought = await bought_renewing(shop, stub)
    await platform_rows(bought.order, bought.tenant.expires_at)
    server, _client = tg
    web = await start_web(sales_bot_token=SALES_TOKEN, telegram_api_url=server.base_url)
    owner = await _owner_client(http, web, OWNER)
    path = f"/api/tenants/{bought.tenant_id}/subscription"

    status, sub = await owner.call("GET", path)
    assert status == 200, sub
    assert sub["plan"] == "start" and sub["status"] == "active"
    assert sub["paid_until"] == paid_until(bought.tenant.expires_at)  # the bots' convention
    assert sub["auto_renew"] is True
    assert sub["card"] == {"mask": "•••• 4444", "expiry": "07/2031"}
    next_day = (bought.tenant.expires_at - timedelta(days=3)).strftime("%d.%m.%Y")
    assert sub["next_charge"]["date"] == next_day and sub["next_charge"]["amount"] == "990.00"
    [payment] = sub["payments"]
    assert (payment["kind"], payment["status"], payment["outcome"]) == ("new", "paid", "paid")
    assert payment["amount"] == "990.00"
    sales_username = (await shop.app.bot.me()).username
    assert sub["renew_url"] == f"https://t.me/{sales_username}?start=subscription"
    assert sub["pay_here"] is False  # no internal endpoint: Renew / pay is the deep link
    status, body = await owner.call("POST", path + "/renew", json={})
    assert status == 409 and body["error"]["code"] == "pay_in_telegram", body

    # Someone else (an account of another Telegram owner) gets 404 on every route, never data.
    stranger = await _owner_client(http, web, OWNER + 1)
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", path, {}),
        ("POST", path + "/renew", {"json": {}}),
        ("PUT", path + "/auto-renew", {"json": {"on": False}}),
        ("DELETE", path + "/card", {}),
    ]
    for method, route, kwargs in routes:
        status, body = await stranger.call(method, route, **kwargs)
        assert status == 404, (method, route, body)
    # An admin the owner invited to the bot's panel sees its data, not its billing.
    admin = Client(http, web)
    await admin.register(new_email())
    status, me = await admin.call("GET", "/api/auth/me")
    await web.deps.control.execute(
        "INSERT INTO control.web_account_tenants (account_id, tenant_id, role)"
        " VALUES ($1, $2, 'admin')",
        me["id"],
        bought.tenant_id,
    )
    status, body = await admin.call("PUT", path + "/auto-renew", json={"on": False})
    assert status == 403 and body["error"]["code"] == "not_the_owner", body
    status, body = await owner.call(
        "PUT", path + "/auto-renew", json={"on": False, "tenant_id": "client_1"}
    )
    assert status == 422, body  # nothing but `on` in the body
    assert (await shop.fetch(
        "SELECT auto_renew FROM control.sales_subscriptions WHERE tenant_id = $1",
        bought.tenant_id,
    ))[0]["auto_renew"] is True  # fmt: skip

    # The owner turns it off on the web while the renewal worker has claimed the charge: the
    # switch waits for the lock and the charge is never sent.
    switched: list[tuple[int, Any]] = []

    async def owner_switches_off_on_the_web(claimed: Order) -> None:
        switched.append(await owner.call("PUT", path + "/auto-renew", json={"on": False}))

    shop.app.renewals.after_claim = owner_switches_off_on_the_web
    clock.ahead(DUE)
    assert await shop.app.renewals.run_once() == 0
    [(status, off)] = switched
    assert status == 200, off
    assert off["auto_renew"] is False and off["next_charge"] is None
    assert off["card"] == {"mask": "•••• 4444", "expiry": "07/2031"}  # kept: on in one tap
    assert shop.kassa.charges == []
    [renewal] = await renewal_orders(shop)
    assert renewal["status"] == OrderStatus.CANCELED and renewal["cancel_reason"] == "opted_out"
    shop.app.renewals.after_claim = _nothing
    clock.ahead(DUE + timedelta(days=5))
    assert await shop.app.renewals.run_once() == 0
    assert shop.kassa.charges == []

    # The sales bot's /subscription (and the web's renew deep link) show it off.
    person = Person(shop.tg, SALES_TOKEN, OWNER)
    await person.ask("/subscription", "Автопродление: выключено")
    await person.ask("/start subscription", "Сохранённая карта: •••• 4444 (07/2031)")

    # On again (the card is saved), then the card removed: off, and on is refused without one.
    status, on = await owner.call("PUT", path + "/auto-renew", json={"on": True})
    assert status == 200 and on["auto_renew"] is True and on["next_charge"]["date"] == next_day
    status, removed = await owner.call("DELETE", path + "/card")
    assert status == 200, removed
    assert removed["card"] is None and removed["auto_renew"] is False
    status, refused = await owner.call("PUT", path + "/auto-renew", json={"on": True})
    assert status == 409 and refused["error"]["code"] == "no_card", refused
    [row] = await shop.fetch(
        "SELECT auto_renew, method_enc FROM control.sales_subscriptions WHERE tenant_id = $1",
        bought.tenant_id,
    )
    assert row["auto_renew"] is False and row["method_enc"] is None
    await person.ask("/subscription", "Автопродление: выключено")
    for days in (27, 40):
        clock.ahead(timedelta(days=days, hours=1))
        assert await shop.app.renewals.run_once() == 0
    assert shop.kassa.charges == []


async def test_renew_on_the_web_is_the_sales_bots_payment_and_extends_once(
    make_shop: Callable[..., Awaitable[Shop]],  # noqa: F811
    stub: MasterStub,  # noqa: F811
    start_web: Callable[..., Awaitable[WebServer]],
    platform_rows: Any,
    http: Any,
) -> None:
    """Renew / pay asks the sales bot's internal endpoint: an 'extend' order and its YooKassa
    payment as "Extend" makes them; paid (the notification twice), the master extends once."""
    token = "internal-" + "t" * 32
    shop = await make_shop(sales_internal_token=token)
    order = await bought(shop, auto_renew=False)
    tenant = stub.by_id(order.tenant_id or "")
    assert tenant is not None
    await platform_rows(order, tenant.expires_at)
    sales_url = f"http://127.0.0.1:{shop.app.webhook_port}"
    web = await start_web(sales_internal_url=sales_url, sales_internal_token=token)
    owner = await _owner_client(http, web, OWNER)
    path = f"/api/tenants/{order.tenant_id}/subscription"
    status, sub = await owner.call("GET", path)
    assert status == 200 and sub["pay_here"] is True, sub

    status, paying = await owner.call("POST", path + "/renew", json={"auto_renew": True})
    assert status == 200, paying
    assert paying["amount"] == "990.00" and paying["period_days"] == 30
    made = await shop.app.store.get(paying["order_id"])
    assert made is not None and made.kind.value == "extend" and made.tenant_id == order.tenant_id
    assert made.user_id == OWNER and made.auto_renew is True
    assert paying["confirmation_url"] == made.confirmation_url
    assert shop.kassa.payments[made.payment_id or ""]["amount"]["value"] == "990.00"

    # The endpoint itself: no token, a wrong one, or another owner's bot get nothing.
    async with http.post(
        sales_url + "/internal/subscription/renew",
        json={"tenant_id": order.tenant_id, "user_id": OWNER},
        headers={"Authorization": "Bearer wrong"},
    ) as answer:
        assert answer.status == 401
    async with http.post(
        sales_url + "/internal/subscription/renew",
        json={"tenant_id": order.tenant_id, "user_id": OWNER + 1},
        headers={"Authorization": f"Bearer {token}"},
    ) as answer:
        assert answer.status == 404

    before = extend_calls(stub, order.tenant_id)
    assert await shop.pay(made) == 200
    assert await shop.notify("payment.succeeded", made.payment_id or "") == 200  # a duplicate
    await shop.settle(made)
    assert extend_calls(stub, order.tenant_id) == before + 1
    paid = await shop.reload(made)
    assert paid.status is OrderStatus.PAID and paid.fulfilled_at is not None
    status, after = await owner.call("GET", path)
    assert status == 200 and after["auto_renew"] is True  # the card paid with is saved
    assert [p["kind"] for p in after["payments"]] == ["extend", "new"]


async def test_receipt_card_and_plan_on_the_web_are_the_sales_bots_own(
    make_shop: Callable[..., Awaitable[Shop]],  # noqa: F811
    stub: MasterStub,  # noqa: F811
    start_web: Callable[..., Awaitable[WebServer]],
    platform_rows: Any,
    http: Any,
) -> None:
    """Issue 17.3 on the web, through the sales bot's internal endpoint and the code of its
    /subscription buttons: a paid payment's receipt (pending first, YooKassa down), "Change
    card" (paid: the new card is the saved one), an upgrade paid (twice notified: the plan
    switched once), a downgrade stored for the next period; another owner gets 404 on each."""
    token = "internal-" + "t" * 32
    shop = await make_shop(sales_internal_token=token)
    gateway: Any = shop.app.kassa
    gateway.retry_base_delay, gateway.retry_budget = 0.05, 0.3  # an outage: given up fast
    shop.kassa.hold_receipts = True  # the fiscal registrar has not answered yet
    order = await bought(shop, auto_renew=True)
    tenant = stub.by_id(order.tenant_id or "")
    assert tenant is not None
    await platform_rows(order, tenant.expires_at)
    sales_url = f"http://127.0.0.1:{shop.app.webhook_port}"
    web = await start_web(sales_internal_url=sales_url, sales_internal_token=token)
    owner = await _owner_client(http, web, OWNER)
    path = f"/api/tenants/{order.tenant_id}/subscription"
    receipt_path = f"{path}/payments/{order.order_id}/receipt"

    # The receipt: not registered yet, then registered with its fiscal attributes; YooKassa
    # down is a clear 503.
    status, pending = await owner.call("GET", receipt_path)
    assert status == 200 and pending["pending"] is True, pending
    shop.kassa.register_receipts()
    status, shown = await owner.call("GET", receipt_path)
    assert status == 200 and shown["pending"] is False, shown
    [fiscal] = shop.kassa.receipts_of(order.payment_id or "")
    [doc] = shown["receipts"]
    assert (doc["type"], doc["status"], doc["total"]) == ("payment", "succeeded", "990.00")
    assert doc["items"][0]["description"] == fiscal["items"][0]["description"]
    assert doc["fiscal_storage_number"] == fiscal["fiscal_storage_number"]
    assert doc["fiscal_document_number"] == fiscal["fiscal_document_number"]
    assert doc["fiscal_attribute"] == fiscal["fiscal_attribute"]
    assert shown["amount"] == "990.00" and doc["registered"]
    shop.kassa.down = True
    status, down = await owner.call("GET", receipt_path)
    assert status == 503 and down["error"]["code"] == "kassa_unavailable", down
    shop.kassa.down = False
    status, missing = await owner.call("GET", f"{path}/payments/ord-nope/receipt")
    assert status == 404 and missing["error"]["code"] == "payment_not_found", missing

    # Change card: the next period paid with another card, which replaces the saved one.
    status, sub = await owner.call("GET", path)
    assert sub["card"]["mask"] == "•••• 4444", sub
    status, paying = await owner.call("POST", path + "/card", json={"locale": "en"})
    assert status == 200, paying
    made = await shop.app.store.get(paying["order_id"])
    assert made is not None and made.kind.value == "extend" and made.auto_renew is True
    assert paying["confirmation_url"] == made.confirmation_url
    shop.kassa.card = {**shop.kassa.card, "last4": "1111", "expiry_month": "02"}
    assert await shop.pay(made) == 200
    await shop.settle(made)
    status, sub = await owner.call("GET", path)
    assert sub["card"] == {"mask": "•••• 1111", "expiry": "02/2031"}, sub
    assert sub["auto_renew"] is True

    # The plans as the bot prices them: Business now for the days left, prorated.
    status, plans = await owner.call("GET", path + "/plans")
    assert status == 200 and plans["current"] == "start", plans
    by_id = {p["id"]: p for p in plans["plans"]}
    business = by_id["business"]
    assert business["upgrade"] is True and business["days_left"] >= 59
    assert business["amount_now"] == f"{50 * business['days_left']}.00"  # 50 ₽ a day more

    # Upgrade: the bot's own 'upgrade' order (asked twice: the same one), paid, the duplicate
    # notification changes nothing: the plan switched once.
    status, up = await owner.call("POST", path + "/plan", json={"plan": "business"})
    assert status == 200 and up["result"] == "upgrade", up
    status, again = await owner.call("POST", path + "/plan", json={"plan": "business"})
    assert again["payment"]["order_id"] == up["payment"]["order_id"]
    upgrade = await shop.app.store.get(up["payment"]["order_id"])
    assert upgrade is not None and upgrade.kind.value == "upgrade" and upgrade.plan == "business"
    assert (upgrade.amount, upgrade.plan_from) == (Decimal(business["amount_now"]), "start")
    assert up["payment"]["amount"] == business["amount_now"]
    assert await shop.pay(upgrade) == 200
    assert await shop.notify("payment.succeeded", upgrade.payment_id or "") == 200
    await shop.settle(upgrade)
    assert tenant.plan == "business" and list(stub.plan_keys.values()) == ["business"]

    # Downgrade: nothing paid now, Start from the next period.
    status, down_move = await owner.call("POST", path + "/plan", json={"plan": "start"})
    assert status == 200 and down_move["result"] == "downgrade", down_move
    assert down_move["payment"] is None
    assert down_move["starts"] == paid_until(tenant.expires_at)
    [row] = await shop.fetch(
        "SELECT next_plan FROM control.sales_subscriptions WHERE tenant_id = $1", order.tenant_id
    )
    assert row["next_plan"] == "start" and tenant.plan == "business"
    status, bad = await owner.call("POST", path + "/plan", json={"plan": "gold"})
    assert status == 409 and bad["error"]["code"] == "plan_not_sold", bad

    # Another owner: 404 on each, nothing opened; the internal endpoint refuses a forged owner.
    stranger = await _owner_client(http, web, OWNER + 1)
    orders_before = await shop.fetch("SELECT count(*) FROM control.sales_orders")
    routes: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", receipt_path, {}),
        ("POST", path + "/card", {"json": {}}),
        ("GET", path + "/plans", {}),
        ("POST", path + "/plan", {"json": {"plan": "business_year"}}),
    ]
    for method, route, kwargs in routes:
        status, body = await stranger.call(method, route, **kwargs)
        assert status == 404, (method, route, body)
    admin = Client(http, web)  # an admin the owner invited: the bot's data, not its billing
    await admin.register(new_email())
    status, me = await admin.call("GET", "/api/auth/me")
    await web.deps.control.execute(
        "INSERT INTO control.web_account_tenants (account_id, tenant_id, role)"
        " VALUES ($1, $2, 'admin')",
        me["id"],
        order.tenant_id,
    )
    for method, route, kwargs in [("GET", receipt_path, {}), ("GET", path + "/plans", {})]:
        status, body = await admin.call(method, route, **kwargs)
        assert status == 403 and body["error"]["code"] == "not_the_owner", (route, body)
    async with http.post(
        sales_url + "/internal/subscription/receipt",
        json={"tenant_id": order.tenant_id, "user_id": OWNER + 1, "order_id": order.order_id},
        headers={"Authorization": f"Bearer {token}"},
    ) as answer:
        assert answer.status == 404
    assert await shop.fetch("SELECT count(*) FROM control.sales_orders") == orders_before


async def test_the_dashboard_shows_a_receipt_and_changes_the_plan(
    make_shop: Callable[..., Awaitable[Shop]],  # noqa: F811
    stub: MasterStub,  # noqa: F811
    start_web: Callable[..., Awaitable[WebServer]],
    platform_rows: Any,
    browser: Browser,  # noqa: F811
) -> None:
    """In Chromium: "🧾 Чек" shows the registered receipt with ФН/ФД/ФП; "Сменить тариф" lists
    the plans priced as the bot prices them, "Оставить" keeps it, and choosing Business opens
    the YooKassa page of the bot's own upgrade payment."""
    token = "internal-" + "t" * 32
    shop = await make_shop(sales_internal_token=token)
    order = await bought(shop, auto_renew=True)
    tenant = stub.by_id(order.tenant_id or "")
    assert tenant is not None
    await platform_rows(order, tenant.expires_at)
    sales_url = f"http://127.0.0.1:{shop.app.webhook_port}"
    web = await start_web(sales_internal_url=sales_url, sales_internal_token=token)
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Active on the platform, but its database is not there (this test runs no bot): the owner
    # stays logged in and the panel says the bot's data cannot be read, not the login form.
    await page.goto(login_link_url(web.deps.keys, web.url, OWNER, 60))
    await expect(page.locator("#data-error")).not_to_be_empty(timeout=15_000)
    await expect(page.locator("#panel")).to_be_visible()
    await expect(page.locator("#login")).to_be_hidden()
    # Stopped on the platform: the panel does not read the (absent) tenant database; billing
    # is the sales bot's, which sells it as active.
    await web.deps.control.execute(
        "UPDATE control.tenants SET status = 'stopped' WHERE tenant_id = $1", order.tenant_id
    )
    [fiscal] = shop.kassa.receipts_of(order.payment_id or "")
    await page.reload()
    await expect(page.locator("#subscription")).to_be_visible(timeout=15_000)

    await page.get_by_role("button", name="🧾 Чек").click()
    receipt = page.locator("#sub-receipt")
    await expect(receipt).to_contain_text("Кассовый чек (54-ФЗ): приход")
    await expect(receipt).to_contain_text(f"ФН: {fiscal['fiscal_storage_number']}")
    await expect(receipt).to_contain_text(f"ФП: {fiscal['fiscal_attribute']}")
    await expect(receipt).to_contain_text("Статус: зарегистрирован")

    await page.get_by_role("button", name="Сменить тариф").click()
    plans = page.locator("#sub-plans")
    await expect(plans).to_contain_text("Тариф сейчас: Старт")
    await expect(plans).to_contain_text("Бизнес: сразу, 1\u00a0500\u00a0₽ за оставшиеся 30 дн.")
    await page.get_by_role("button", name="Оставить Старт").click()
    await expect(page.locator("#sub-status")).to_have_text("Тариф остаётся прежним.")
    await page.get_by_role("button", name="Сменить тариф").click()
    await page.get_by_role("button", name="Выбрать Бизнес", exact=True).click()
    await page.wait_for_url("**/checkout/**")
    [upgrade] = await shop.fetch(
        "SELECT confirmation_url, amount FROM control.sales_orders WHERE kind = 'upgrade'"
        " AND tenant_id = $1",
        order.tenant_id,
    )
    assert page.url == upgrade["confirmation_url"] and upgrade["amount"] == Decimal("1500.00")
    await expect(page.locator("body")).to_contain_text("1500.00 RUB")
    assert errors == []
