"""A new bot bought on the web (issue 15): a registered account with no Telegram chooses a plan,
pays on the YooKassa fake's page, gives the bot token, and the bot appears among its bots.

The real web and the real sales bot (its internal endpoints, YooKassa through the `yookassa`
SDK, the Telegram emulator) with the master stub; the rows are the sales bot's own: a 'new'
order and its payment, the outbox's provisioning, the subscription. Bad input on the way: an
unknown plan, "Buy" twice, a token before paying, a malformed / unknown token, nobody having
pressed Start, a token the master refuses after payment, another account's order id.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from tests.conftest import new_tenant_id
from tests.sales.conftest import (  # noqa: F401 - the fixtures
    TRUSTED,
    Shop,
    bot_token,
    clean_sales,
    kassa,
    make_shop,
    stub,
    tg,
)
from tests.sales.master_stub import MasterStub, StubTenant
from tests.web.conftest import Client, WebServer, new_email, screenshot
from tests.web.test_browser import browser  # noqa: F401 - the fixture

INTERNAL = "internal-" + "p" * 32


@pytest.fixture
async def master_rows(pg_dsn: str) -> Any:
    """control.tenants rows of the stub's tenants (the real master writes them), dropped after."""
    made: list[str] = []

    async def add(tenant: StubTenant) -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "INSERT INTO control.tenants (tenant_id, number, status, plan, business_name,"
                " owner_telegram_id, bot_username, expires_at, provision_step)"
                " VALUES ($1, $2, 'active', $3, 'Салон', $4, $5, $6, 'done')",
                tenant.tenant_id,
                int(tenant.tenant_id.removeprefix("client_")),
                tenant.plan,
                tenant.owner,
                tenant.username,
                tenant.expires_at,
            )
        finally:
            await conn.close()
        made.append(tenant.tenant_id)

    yield add
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("DELETE FROM control.tenants WHERE tenant_id = ANY($1)", made)
    finally:
        await conn.close()


async def web_shop(
    make_shop: Callable[..., Awaitable[Shop]],  # noqa: F811 - the fixture's value
    start_web: Callable[..., Awaitable[WebServer]],
    stub: MasterStub,  # noqa: F811 - the fixture's value
    **settings: Any,
) -> tuple[Shop, WebServer]:
    """The sales bot with its internal endpoints on, and the web that asks them."""
    shop = await make_shop(sales_internal_token=INTERNAL, **settings)
    # The stub numbers its tenants from here: an id no parallel test uses.
    stub.created = int(new_tenant_id().removeprefix("client_")) - 900_001
    web = await start_web(
        sales_internal_url=f"http://127.0.0.1:{shop.app.webhook_port}",
        sales_internal_token=INTERNAL,
    )
    return shop, web


async def test_an_account_buys_a_bot_on_the_web(
    make_shop: Callable[..., Awaitable[Shop]],  # noqa: F811
    stub: MasterStub,  # noqa: F811
    start_web: Callable[..., Awaitable[WebServer]],
    master_rows: Any,
    http: Any,
) -> None:
    shop, web = await web_shop(make_shop, start_web, stub)
    owner = Client(http, web)
    email = new_email()
    await owner.register(email)
    status, me = await owner.call("GET", "/api/auth/me")
    assert status == 200 and me["telegram_linked"] is False and me["tenants"] == []

    status, body = await owner.call("GET", "/api/plans")
    assert status == 200, body
    plans = {p["id"]: p for p in body["plans"]}
    assert plans["start"]["price"] == "990.00" and plans["start"]["title"]["ru"]

    status, body = await owner.call("POST", "/api/purchases", json={"plan": "platinum"})
    assert status == 422 and body["error"]["code"] == "unknown_plan", body
    mine = "SELECT {} FROM control.sales_orders WHERE web_account_id = $1"
    assert await shop.fetch(mine.format(1), me["id"]) == []

    # "Buy" twice at once, and again: one order, one payment, on YooKassa's page that sends the
    # owner back here.
    (status, first), (status2, second) = await asyncio.gather(
        owner.call("POST", "/api/purchases", json={"plan": "start"}),
        owner.call("POST", "/api/purchases", json={"plan": "start"}),
    )
    assert status == status2 == 200, (first, second)
    assert first["stage"] == "pay" and first["amount"] == "990.00"
    assert second["order_id"] == first["order_id"]
    status, again = await owner.call("POST", "/api/purchases", json={"plan": "start"})
    assert status == 200 and again["order_id"] == first["order_id"], again
    assert again["confirmation_url"] == first["confirmation_url"]
    order_id = first["order_id"]
    [row] = await shop.fetch(
        "SELECT kind, status, user_id, email, amount, payment_id, web_account_id"
        " FROM control.sales_orders WHERE web_account_id = $1",
        me["id"],
    )
    assert (row["kind"], row["status"], row["user_id"]) == ("new", "pending", None)
    assert row["email"] == email and row["web_account_id"] == me["id"]
    payment = shop.kassa.payments[row["payment_id"]]
    assert len(shop.kassa.payments) == 1 and payment["amount"]["value"] == "990.00"
    assert payment["confirmation"]["return_url"] == web.url + "/dashboard?purchase=back"
    assert first["confirmation_url"] == payment["confirmation"]["confirmation_url"]

    # Another account sees none of it: 404 for the order, an empty list.
    stranger = Client(http, web)
    await stranger.register(new_email())
    status, body = await stranger.call("GET", f"/api/purchases/{order_id}")
    assert status == 404 and body["error"]["code"] == "purchase_not_found", body
    status, body = await stranger.call("GET", "/api/purchases")
    assert status == 200 and body["purchases"] == []
    status, body = await owner.call("GET", "/api/purchases/ord_0000")
    assert status == 404, body

    # Not paid yet: waiting for payment, and no token is taken.
    status, body = await owner.call("GET", f"/api/purchases/{order_id}")
    assert status == 200 and body["stage"] == "pay", body
    token = bot_token()
    status, body = await owner.call(
        "POST", f"/api/purchases/{order_id}/token", json={"token": token}
    )
    assert status == 404, body

    # Paid on YooKassa's page; back on the web, the payment is re-read: paid, give the token.
    shop.kassa.succeed(row["payment_id"])
    status, paid = await owner.call("GET", f"/api/purchases/{order_id}")
    assert status == 200 and paid["stage"] == "token" and paid["confirmation_url"] is None, paid
    assert await shop.notify("payment.succeeded", row["payment_id"]) == 200  # and the webhook
    await shop.app.billing.drain()
    await shop.app.relay.run_once()
    assert stub.provision_calls() == 0  # parked until the token comes
    [outbox] = await shop.fetch(
        "SELECT action, done_at FROM control.sales_outbox WHERE order_id = $1", order_id
    )
    assert outbox["action"] == "provision" and outbox["done_at"] is None

    # Wrong tokens get a clear answer each, and the paid order waits; another account's token
    # for it is a 404 and changes nothing.
    path = f"/api/purchases/{order_id}/token"
    status, body = await stranger.call("POST", path, json={"token": bot_token()})
    assert status == 404 and body["error"]["code"] == "purchase_not_found", body
    status, body = await owner.call("POST", path, json={"token": "not a token"})
    assert status == 422 and body["error"]["code"] == "bad_format", body
    status, body = await owner.call("POST", path, json={"token": token})  # unknown to Telegram
    assert status == 422 and body["error"]["code"] == "token_rejected", body
    username = f"web{secrets.token_hex(3)}_bot"
    await shop.tg.register_bot(token, username, "Салон")
    status, body = await owner.call("POST", path, json={"token": token})
    assert status == 409 and body["error"]["code"] == "press_start", body
    assert f"@{username}" in body["error"]["message"]
    telegram_id = 7_300_000 + secrets.randbelow(100_000)
    await shop.tg.send_message(token, telegram_id, "/start", first_name="Owner")
    # The master will refuse this first token (e.g. its bot was connected meanwhile).
    stub.refuse_tokens[token] = "bot_token_in_use"
    status, given = await owner.call("POST", path, json={"token": f"вот токен: {token}"})
    assert status == 200 and given["stage"] == "setting_up", given
    assert given["bot_username"] == username
    await shop.app.relay.run_once()
    status, refused = await owner.call("GET", f"/api/purchases/{order_id}")
    assert refused["stage"] == "token" and refused["failure"] == "bot_token_in_use", refused

    # Another token: provisioned under the Telegram id that pressed Start; the bot is theirs.
    second = bot_token()
    await shop.tg.register_bot(second, f"web{secrets.token_hex(3)}_bot", "Салон")
    status, given = await owner.call("POST", path, json={"token": second})
    assert status == 200 and given["stage"] == "setting_up", given
    await shop.app.relay.run_once()
    [tenant] = stub.tenants.values()
    assert tenant.bot_token == second and tenant.owner == telegram_id and tenant.plan == "start"
    await master_rows(tenant)
    status, live = await owner.call("GET", f"/api/purchases/{order_id}")
    assert status == 200 and live["stage"] == "live", live
    assert live["tenant_id"] == tenant.tenant_id
    status, me = await owner.call("GET", "/api/auth/me")
    assert [t["tenant_id"] for t in me["tenants"]] == [tenant.tenant_id]
    status, sub = await owner.call("GET", f"/api/tenants/{tenant.tenant_id}/subscription")
    assert status == 200 and sub["plan"] == "start", sub  # the owner, billing included
    [payment_row] = sub["payments"]
    assert (payment_row["kind"], payment_row["outcome"]) == ("new", "paid")
    status, body = await stranger.call("GET", f"/api/tenants/{tenant.tenant_id}/subscription")
    assert status == 404, body

    # The sales bot's own rows, as after a sale in Telegram: one order, provisioned once.
    [row] = await shop.fetch(
        mine.format("status, user_id, tenant_id, fulfilled_at, bot_token_enc"), me["id"]
    )
    assert (row["status"], row["user_id"], row["tenant_id"]) == ("paid", telegram_id,
                                                                  tenant.tenant_id)  # fmt: skip
    assert row["fulfilled_at"] is not None and row["bot_token_enc"] is None
    [outbox] = await shop.fetch(
        "SELECT outcome, done_at FROM control.sales_outbox WHERE order_id = $1", order_id
    )
    assert outbox["done_at"] is not None and outbox["outcome"] == f"provisioned {tenant.tenant_id}"
    # A stale link or a token again changes nothing.
    status, body = await owner.call("POST", path, json={"token": bot_token()})
    assert status == 404, body
    status, body = await owner.call("GET", "/api/purchases")
    assert [p["order_id"] for p in body["purchases"]] == [order_id]
    assert len(shop.kassa.payments) == 1 and stub.provision_calls() == 2  # refused, then made
    # Another bot, paid and refunded before its token came: the order closes, nothing is
    # provisioned or suspended, and the web shows it refunded.
    status, other = await owner.call("POST", "/api/purchases", json={"plan": "business"})
    assert status == 200 and other["order_id"] != order_id, other
    [row] = await shop.fetch(
        "SELECT payment_id FROM control.sales_orders WHERE order_id = $1", other["order_id"]
    )
    shop.kassa.succeed(row["payment_id"])
    assert await shop.notify("payment.succeeded", row["payment_id"]) == 200
    await shop.app.billing.drain()
    await shop.app.relay.run_once()  # parked: waiting for the token
    refund = shop.kassa.refund(row["payment_id"])
    assert await shop.notify("refund.succeeded", refund["id"]) == 200
    await shop.app.billing.drain()
    await shop.app.relay.run_once()
    status, closed = await owner.call("GET", f"/api/purchases/{other['order_id']}")
    assert status == 200 and closed["stage"] == "refunded", closed
    rows = await shop.fetch(
        "SELECT action, done_at, outcome FROM control.sales_outbox WHERE order_id = $1",
        other["order_id"],
    )
    assert [(r["action"], r["outcome"]) for r in rows] == [("provision", "dropped: refunded")]
    status, body = await owner.call(
        "POST", f"/api/purchases/{other['order_id']}/token", json={"token": bot_token()}
    )
    assert status == 404, body
    assert stub.provision_calls() == 2


async def test_the_purchase_in_a_real_browser(
    make_shop: Callable[..., Awaitable[Shop]],  # noqa: F811
    stub: MasterStub,  # noqa: F811
    start_web: Callable[..., Awaitable[WebServer]],
    master_rows: Any,
    http: Any,
    browser: Browser,  # noqa: F811
) -> None:
    """Register → log in → choose a plan → pay on the YooKassa fake's page → back on the
    dashboard "paid" → a wrong token, then the right one → the bot among the account's bots."""
    shop, web = await web_shop(make_shop, start_web, stub, workers=True)
    shop.kassa.webhook_url = shop.webhook_url  # its "Pay" notifies the sales bot, as YooKassa
    shop.kassa.notify_source = TRUSTED
    owner = Client(http, web)
    email = new_email()
    await owner.register(email)
    page = await browser.new_page(viewport={"width": 1000, "height": 800})
    await page.goto(web.url + "/dashboard")
    await page.fill("#login input[name=username]", email)
    await page.fill("#login input[name=password]", "correct horse battery")
    await page.click("#login button[type=submit]")
    await expect(page.locator("#buy")).to_be_visible()
    await expect(page.locator("#bots")).to_contain_text("Ботов пока нет.")
    buy = page.locator("button.buy-plan[data-plan=start]")
    await expect(buy).to_have_text("Купить «Старт»: 990\u00a0₽ за 30 дн.")
    await screenshot(page, "web-purchase-plans.png")

    await buy.click()
    await page.wait_for_url(shop.kassa.base_url + "/**")
    await expect(page.locator("body")).to_contain_text("990.00 RUB")
    await page.click("button[type=submit]")  # the fake's "Pay"
    await page.wait_for_url(web.url + "/dashboard?purchase=back")
    paid = page.locator("li.purchase[data-stage=token]")
    await expect(paid).to_contain_text("Оплачено, спасибо!", timeout=10_000)

    token = bot_token()
    username = f"web{secrets.token_hex(3)}_bot"
    await shop.tg.register_bot(token, username, "Салон")
    stub.usernames[token] = username
    await paid.locator("input[name=token]").fill("123:nope")
    await paid.locator("button[type=submit]").click()
    await expect(paid.locator(".purchase-error")).to_have_text(
        "Это не токен бота: он выглядит как 123456789:AAH… — скопируйте всю строку из @BotFather."
    )
    await paid.locator("input[name=token]").fill(token)
    await paid.locator("button[type=submit]").click()
    await expect(paid.locator(".purchase-error")).to_contain_text(
        f"Откройте @{username} в Telegram"
    )
    await screenshot(page, "web-purchase-token.png")
    telegram_id = 7_400_000 + secrets.randbelow(100_000)
    await shop.tg.send_message(token, telegram_id, "/start", first_name="Owner")

    async def the_master_wrote_its_row(item: Any) -> None:  # before it answers, as the master
        [made] = stub.tenants.values()
        await master_rows(made)

    shop.app.relay.after_call = the_master_wrote_its_row
    await paid.locator("button[type=submit]").click()
    await expect(page.locator("li.purchase[data-stage=live]")).to_have_text(
        f"@{username} работает — он в списке ваших ботов.", timeout=10_000
    )
    await expect(page.locator("#bots")).to_contain_text(f"Салон (@{username}, active)")
    await screenshot(page, "web-purchase-live.png")
    [tenant] = stub.tenants.values()
    assert tenant.owner == telegram_id and tenant.bot_token == token
    _, me = await owner.call("GET", "/api/auth/me")
    [row] = await shop.fetch(
        "SELECT status, user_id, tenant_id FROM control.sales_orders WHERE web_account_id = $1",
        me["id"],
    )
    assert (row["status"], row["user_id"], row["tenant_id"]) == ("paid", telegram_id,
                                                                  tenant.tenant_id)  # fmt: skip
