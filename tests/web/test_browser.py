"""A real browser: Debian's Chromium driven by Playwright (the system browser, never a
downloaded one; `make test` installs it through scripts/browser.sh). A business's page on
another origin embeds /widget.js with its public key; a visitor opens the chat, asks, and reads
the assistant's answer (the OpenAI emulator's), which survives a page reload. Swagger UI renders
the web's document; an owner arrives by a login link on the dashboard and sees only their leads."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright, expect

from client_bot.clock import SystemClock
from tests.client.conftest import bot_factory, emulator  # noqa: F401 - the fixtures
from tests.support import free_port
from tests.web.conftest import Client, fetch, new_email, screenshot
from tests.web.test_desk import give_bot_token, running_bot
from tests.web.test_owner_data import add_booking, add_messages, tomorrow_noon
from tests.web.test_tenant_data import add_lead, owner_client
from tests.web.test_widget import widget_key
from web.tokens import login_link_url

CHROMIUM = os.environ.get("BOTFLEET_CHROMIUM", "/usr/bin/chromium")


def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f'no Chromium at {CHROMIUM}: run `eval "$(scripts/browser.sh up)"` (make test does)'
        )
    return CHROMIUM


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=executable, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        await chromium.close()


async def business_site(web_url: str, key: str) -> tuple[str, web.AppRunner]:
    """The business's own site (another origin) with the snippet the owner copied."""
    page = (
        '<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>Салон</title></head>'
        "<body><h1>Салон «Ромашка»</h1>"
        f'<script src="{web_url}/widget.js" data-bot="{key}" async></script></body></html>'
    )

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return f"http://127.0.0.1:{port}/", runner


async def test_a_visitor_chats_through_the_widget_in_a_real_browser(
    web_server, http, make_web_tenant, model, browser
):
    tenant = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, tenant)
    key = await widget_key(owner, tenant.tenant_id)
    site_url, site = await business_site(web_server.url, key)
    try:
        model.reply("Стрижка стоит 1500 ₽, запишу вас на любое свободное время.")
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(site_url)
        widget = page.locator("#botfleet-widget")
        await widget.locator("button.btn").click()
        await widget.locator("input[name=text]").fill("Сколько стоит стрижка?")
        await widget.locator("input[name=text]").press("Enter")
        answer = widget.locator(".msg.assistant")
        await expect(answer).to_have_text(
            "Стрижка стоит 1500 ₽, запишу вас на любое свободное время.", timeout=15_000
        )
        await expect(widget.locator(".msg.user")).to_have_text("Сколько стоит стрижка?")

        # The conversation is the tenant's: stored under the visitor's web customer id.
        rows = await fetch(
            tenant.dsn, "SELECT customer_id, role, content FROM ai_messages ORDER BY id"
        )
        assert [(r["role"], r["content"]) for r in rows] == [
            ("user", "Сколько стоит стрижка?"),
            ("assistant", "Стрижка стоит 1500 ₽, запишу вас на любое свободное время."),
        ]
        assert rows[0]["customer_id"] < 0

        # A reload keeps what the visitor saw (and their visitor id).
        await page.reload()
        await expect(page.locator("#botfleet-widget .msg.assistant")).to_have_count(1)

        # The owner answers as a person on the web: the widget shows it when opened.
        talk = f"/api/tenants/{tenant.tenant_id}/conversations/{rows[0]['customer_id']}"
        status, _ = await owner.call("POST", f"{talk}/reply", json={"text": "Это Ольга, админ"})
        assert status == 200
        await page.locator("#botfleet-widget button.btn").click()
        await expect(page.locator("#botfleet-widget .msg.staff")).to_have_text(
            "👤 Это Ольга, админ", timeout=15_000
        )
        await screenshot(page, "widget.png")
        assert errors == []
    finally:
        await site.cleanup()


async def test_a_visitor_books_through_the_widget_and_the_owner_sees_it_on_the_web_and_in_admin(
    start_web,
    http,
    make_web_tenant,
    model,
    browser,
    emulator,  # noqa: F811 - the imported fixture
    bot_factory,  # noqa: F811 - the imported fixture
):
    """The widget on the business's site books a time through the assistant's tools; the booking
    is the tenant's row, on the owner's dashboard and in the bot's /admin; another owner's token
    sees none of it."""
    server, _client = emulator
    web_server = await start_web(telegram_api_url=server.base_url)
    mine = await make_web_tenant(web_server)
    other = await make_web_tenant(web_server)
    owner = await owner_client(http, web_server, mine)
    key = await widget_key(owner, mine.tenant_id)
    (haircut,) = await fetch(mine.dsn, "SELECT id FROM services WHERE name = 'Стрижка'")
    day = tomorrow_noon().date()
    while day.weekday() == 6:  # the seeded salon rests on Sundays
        day += timedelta(days=1)
    service, when = haircut["id"], f"{day.isoformat()}T12:00"
    model.call_tools(("find_free_slots", {"service": service, "date": day.isoformat()}))
    model.call_tools(
        ("create_booking", {"service": service, "slot": when, "name": "Вера", "phone": "+79001234567"})
    )  # fmt: skip
    model.reply("Готово, Вера: стрижка в 12:00, ждём вас!")
    site_url, site = await business_site(web_server.url, key)
    try:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(site_url)
        widget = page.locator("#botfleet-widget")
        await widget.locator("button.btn").click()
        await widget.locator("input[name=text]").fill("Запишите на стрижку, Вера, +79001234567")
        await widget.locator("input[name=text]").press("Enter")
        await expect(widget.locator(".msg.assistant")).to_have_text(
            "Готово, Вера: стрижка в 12:00, ждём вас!", timeout=15_000
        )
        assert errors == []
    finally:
        await site.cleanup()
    (booked,) = await fetch(mine.dsn, "SELECT id, customer_name, phone, starts_at FROM bookings")
    assert (booked["customer_name"], booked["phone"]) == ("Вера", "+79001234567")
    assert booked["starts_at"] == datetime(day.year, day.month, day.day, 9, tzinfo=UTC)

    # The owner's dashboard, that day.
    dashboard = await browser.new_page()
    link = login_link_url(web_server.deps.keys, web_server.url, mine.owner_telegram_id, 60)
    await dashboard.goto(link)
    await dashboard.wait_for_url(web_server.url + "/dashboard", timeout=15_000)
    await expect(dashboard.locator("#bot-data")).to_be_visible(timeout=15_000)
    await dashboard.fill("#day", day.isoformat())
    await dashboard.dispatch_event("#day", "change")
    row = dashboard.locator(f"#bookings tbody tr[data-id='{booked['id']}']")
    await expect(row).to_contain_text("Вера", timeout=15_000)
    await expect(row).to_contain_text("12:00")

    # The bot's /admin (its own clock: today), a day at a time to that day.
    bot = await running_bot(emulator, bot_factory, web_server, mine, clock=SystemClock())
    admin = await bot.admin(mine.owner_telegram_id)
    panel = await admin.ask("/admin", "Панель управления")
    shown = await admin.press(panel, "📅 Записи", "Записи")
    for _ in range((day - datetime.now(UTC).date()).days):
        (forward,) = [b for row in shown.buttons() for b in row if b.endswith("»")]
        shown = await admin.press(shown, forward, "Записи")
    assert "12:00–13:00 · Стрижка · Вера, +79001234567" in shown.plain_text

    # Another owner: no such bot for them, anywhere.
    stranger = await owner_client(http, web_server, other)
    path = f"/api/tenants/{mine.tenant_id}/bookings"
    assert (await stranger.call("GET", path, params={"day": day.isoformat()}))[0] == 404
    status, theirs = await stranger.call(
        "GET", f"/api/tenants/{other.tenant_id}/bookings", params={"day": day.isoformat()}
    )
    assert (status, theirs["total"]) == (200, 0)


async def test_swagger_ui_renders_the_document_under_its_own_csp(web_server, browser):
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    await page.goto(web_server.url + "/docs")
    await expect(page.locator(".info .title")).to_contain_text("botfleet web API", timeout=15_000)
    await expect(page.locator(".opblock-summary-path", has_text="/api/auth/login")).to_have_count(1)
    await expect(page.locator("button.authorize")).to_be_visible()
    assert errors == []


async def test_the_owner_arrives_by_login_link_and_sees_only_their_leads(
    web_server, http, make_web_tenant, browser
):
    mine = await make_web_tenant(web_server)
    other = await make_web_tenant(web_server)
    await add_lead(mine, "Анна")
    await add_lead(mine, "Борис", "won")
    await add_lead(other, "Чужой Клиент")
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    link = login_link_url(
        web_server.deps.keys,
        web_server.url,
        mine.owner_telegram_id,
        web_server.settings.web_link_ttl,
    )
    await page.goto(link)
    await page.wait_for_url(web_server.url + "/dashboard", timeout=15_000)
    assert "token=" not in page.url
    rows = page.locator("#leads tbody tr")
    await expect(rows).to_have_count(2, timeout=15_000)
    await expect(page.locator("#leads")).to_contain_text("Анна")
    await expect(page.locator("#leads")).not_to_contain_text("Чужой")
    await expect(page.locator("code.snippet")).to_contain_text("/widget.js")
    # Anna's lead taken into work from the dashboard: saved in the tenant's table at once.
    anna = rows.filter(has_text="Анна").locator("select.lead-status")
    await anna.select_option("in_work")
    await expect(anna).to_have_attribute("data-saved", "in_work")
    saved = await fetch(mine.dsn, "SELECT status FROM leads WHERE name = 'Анна'")
    assert [r["status"] for r in saved] == ["in_work"]
    await page.select_option("#status", "won")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Борис")

    # Logging out ends the session for the API too; the form logs a password account in.
    await page.click("#logout")
    await expect(page.locator("#login")).to_be_visible()
    email = new_email()
    await Client(http, web_server).register(email, "correct horse battery")
    await page.fill("#login input[name=username]", email)
    await page.fill("#login input[name=password]", "wrong one")
    await page.click("#login button[type=submit]")
    await expect(page.locator("#login-error")).to_contain_text("wrong email or password")
    await page.fill("#login input[name=password]", "correct horse battery")
    await page.click("#login button[type=submit]")
    await expect(page.locator("#bots")).to_contain_text("Ботов пока нет")
    await expect(rows).to_have_count(0)
    assert errors == []


async def test_the_owner_works_a_bots_day_in_the_dashboard(
    web_server, http, make_web_tenant, browser
):
    """Bookings of a day (cancel with a note, done), customers, a conversation and services
    (a price changed, one added), each saved in the bot's own tables; another bot's rows never
    appear."""
    mine = await make_web_tenant(web_server)
    other = await make_web_tenant(web_server)
    noon = tomorrow_noon()
    anna = await add_booking(mine, 801, "Анна", noon)
    boris = await add_booking(mine, 802, "Борис", noon + timedelta(hours=2))
    await add_booking(other, 803, "Чужой Клиент", noon)
    await add_messages(mine, 801, ("user", "Можно в субботу?"), ("assistant", "Да, с 11:00."))
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept("мастер заболел")))
    link = login_link_url(web_server.deps.keys, web_server.url, mine.owner_telegram_id, 60)
    await page.goto(link)
    await page.wait_for_url(web_server.url + "/dashboard", timeout=15_000)
    await expect(page.locator("#bot-data")).to_be_visible(timeout=15_000)
    await page.fill("#day", noon.date().isoformat())
    await page.dispatch_event("#day", "change")
    rows = page.locator("#bookings tbody tr")
    await expect(rows).to_have_count(2, timeout=15_000)
    await expect(page.locator("#bookings")).not_to_contain_text("Чужой")
    anna_row = page.locator(f"#bookings tbody tr[data-id='{anna}']")
    await anna_row.get_by_role("button", name="Отменить").click()
    await expect(anna_row.locator(".booking-status")).to_have_text("отменена (мастер заболел)")
    boris_row = page.locator(f"#bookings tbody tr[data-id='{boris}']")
    await boris_row.get_by_role("button", name="Пришёл", exact=True).click()
    await expect(boris_row.locator(".booking-status")).to_have_text("пришёл")
    saved = await fetch(mine.dsn, "SELECT id, status, cancel_note FROM bookings ORDER BY id")
    assert [tuple(r) for r in saved] == [
        (anna, "cancelled", "мастер заболел"),
        (boris, "done", None),
    ]

    await expect(page.locator("#customers")).to_contain_text("Анна")
    await expect(page.locator("#customers")).not_to_contain_text("Чужой")
    await page.locator("#conversations button").click()
    await expect(page.locator("#conversation")).to_contain_text("Ассистент: Да, с 11:00.")

    haircut = page.locator("#services tbody tr", has_text="Стрижка")
    await haircut.locator("input.service-price").fill("1700")
    await haircut.get_by_role("button", name="Сохранить").click()
    await expect(haircut).to_have_attribute("data-saved", "1700.00")
    await page.fill("#add-service input[name=name]", "Укладка")
    await page.fill("#add-service input[name=price]", "900")
    await page.fill("#add-service input[name=duration_min]", "30")
    await page.click("#add-service button[type=submit]")
    await expect(page.locator("#services tbody tr", has_text="Укладка")).to_have_count(1)
    await screenshot(page, "dashboard-bookings.png", showing=page.locator("#bookings"))
    services = await fetch(mine.dsn, "SELECT name, price::text FROM services ORDER BY id")
    assert [tuple(r) for r in services] == [
        ("Стрижка", "1700.00"),
        ("Окрашивание", "4000.00"),
        ("Укладка", "900.00"),
    ]
    assert errors == []


async def test_an_owner_who_came_by_link_sets_a_password_and_logs_in_with_it(
    web_server, make_web_tenant, browser
):
    tenant = await make_web_tenant(web_server)
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    link = login_link_url(web_server.deps.keys, web_server.url, tenant.owner_telegram_id, 60)
    await page.goto(link)
    await page.wait_for_url(web_server.url + "/dashboard", timeout=15_000)
    await page.click("#account summary")
    email = new_email()
    await expect(page.locator("#email-row")).to_be_visible(timeout=15_000)  # none yet
    await page.fill("#password-form input[name=email]", email)
    await page.fill("#password-form input[name=password]", "my own password")
    await page.click("#password-form button[type=submit]")
    await expect(page.locator("#password-status")).to_contain_text("Сохранено")
    await expect(page.locator("#current-row")).to_be_visible()  # now it asks for the old one
    await page.click("#logout")
    await page.fill("#login input[name=username]", email)
    await page.fill("#login input[name=password]", "my own password")
    await page.click("#login button[type=submit]")
    await expect(page.locator("#bots")).to_contain_text(tenant.tenant_id[-4:], timeout=15_000)
    assert errors == []


async def test_the_owner_takes_a_lead_answers_a_customer_sets_hours_and_exports(
    start_web,
    make_web_tenant,
    browser,
    emulator,  # noqa: F811 - the imported fixture
):
    """Take a lead and note it; answer a Telegram customer (they read it from the bot) and hand
    back; change Monday's hours and add a day off; download the leads as CSV. Each lands in the
    bot's own tables."""
    server, telegram = emulator
    web_server = await start_web(telegram_api_url=server.base_url)
    mine = await make_web_tenant(web_server)
    await add_lead(mine, "Анна")
    token = f"{6100000 + secrets.randbelow(99_999)}:browser-desk-{secrets.token_hex(6)}"
    await telegram.register_bot(token, f"desk{mine.tenant_id[-4:]}_bot", "Salon")
    await give_bot_token(web_server, mine, token)
    await telegram.send_message(token, 9201, "Можно записаться на завтра?", first_name="Вера")
    await add_messages(mine, 9201, ("user", "Можно записаться на завтра?"))
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    link = login_link_url(web_server.deps.keys, web_server.url, mine.owner_telegram_id, 60)
    await page.goto(link)
    await page.wait_for_url(web_server.url + "/dashboard", timeout=15_000)

    anna = page.locator("#leads tbody tr", has_text="Анна")
    await anna.locator("button.take").click()
    await expect(anna.locator("select.lead-status")).to_have_value("in_work")
    await expect(anna.locator("button.take")).to_have_count(0)
    rows = await fetch(mine.dsn, "SELECT status, taken_by FROM leads")
    assert [tuple(r) for r in rows] == [("in_work", mine.owner_telegram_id)]
    await page.check("#mine")
    await expect(page.locator("#leads tbody tr")).to_have_count(1)
    await anna.locator("button.notes").click()
    await page.fill("#note-form input[name=text]", "Перезвонить в пятницу")
    await page.click("#note-form button[type=submit]")
    await expect(page.locator("#notes li")).to_contain_text("Перезвонить в пятницу")
    await expect(anna.locator("button.notes")).to_have_text("📝 1")
    await screenshot(page, "dashboard-leads.png", showing=page.locator("#leads"))
    notes = await fetch(mine.dsn, "SELECT body, via FROM lead_notes")
    assert [tuple(r) for r in notes] == [("Перезвонить в пятницу", "web")]

    await page.locator("#conversations button", has_text="9201").click()
    await page.fill("#reply-form input[name=text]", "Да, в 15:00 свободно")
    await page.click("#reply-form button[type=submit]")
    await expect(page.locator("#with-human")).to_be_visible()
    await expect(page.locator("#messages")).to_contain_text("Сотрудник: Да, в 15:00 свободно")
    sent = await telegram.wait_for_message(token, 9201, contains="Да, в 15:00 свободно")
    assert sent.plain_text == "👤 Да, в 15:00 свободно"
    await page.click("#release")
    await expect(page.locator("#with-human")).to_be_hidden()
    await telegram.wait_for_message(token, 9201, contains="С вами снова ассистент")

    monday = page.locator("#hours tbody tr[data-weekday='0']")
    await expect(monday.locator("input.hours")).to_have_value("10:00-19:00")
    await monday.locator("input.hours").fill("9:00-13:00, 14:00-18:00")
    await monday.locator("input.breaks").fill("")
    await page.click("#save-hours")
    await expect(page.locator("#hours-status")).to_have_text("Сохранено")
    hours = await fetch(
        mine.dsn, "SELECT opens::text, closes::text FROM working_hours WHERE weekday = 0 ORDER BY 1"
    )
    assert [tuple(r) for r in hours] == [("09:00:00", "13:00:00"), ("14:00:00", "18:00:00")]
    await monday.locator("input.hours").fill("с утра")
    await page.click("#save-hours")
    await expect(page.locator("#hours-status")).to_contain_text("10:00-19:00")
    day = (date.today() + timedelta(days=20)).isoformat()
    await page.fill("#add-day-off input[name=day]", day)
    await page.click("#add-day-off button[type=submit]")
    await expect(page.locator(f"#days-off li[data-day='{day}']")).to_have_count(1)
    days_off = await fetch(mine.dsn, "SELECT day::text FROM days_off")
    assert [r["day"] for r in days_off] == [day]

    async with page.expect_download() as download_info:
        await page.click("button.export[data-what='leads']")
    download = await download_info.value
    path = await download.path()
    body = await asyncio.to_thread(Path(path).read_bytes)
    assert body.startswith(b"\xef\xbb\xbf")
    assert "Анна" in body.decode("utf-8-sig") and "Перезвонить в пятницу" in body.decode(
        "utf-8-sig"
    )
    assert errors == []


async def test_the_owner_turns_auto_renewal_off_in_the_dashboard(
    web_server, make_web_tenant, pg_dsn, browser
):
    """The subscription section reads the sales bot's rows (plan, paid until, card, next
    charge, payments); "Turn auto-renewal off" changes the row the renewal worker reads."""
    mine = await make_web_tenant(web_server)
    end = datetime(2031, 1, 1, tzinfo=UTC)  # 00:00 UTC = 03:00 Moscow: paid until 01.01.2031
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "UPDATE control.tenants SET plan = 'start', expires_at = $2 WHERE tenant_id = $1",
            mine.tenant_id,
            end,
        )
        await conn.execute(
            "INSERT INTO control.sales_subscriptions (tenant_id, user_id, email, plan,"
            " period_days, amount, auto_renew, method_enc, card_last4, card_expiry, paid_until,"
            " next_charge_at) VALUES ($1, $2, 'owner@example.com', 'start', 30, 990, true,"
            " 'sealed', '4444', '07/2031', $3, $3::timestamptz - interval '3 days')",
            mine.tenant_id,
            mine.owner_telegram_id,
            end,
        )
        await conn.execute(
            "INSERT INTO control.sales_orders (order_id, kind, status, user_id, plan,"
            " period_days, amount, email, idempotence_key, tenant_id, payment_id, paid_at,"
            " fulfilled_at) VALUES ($1, 'new', 'paid', $2, 'start', 30, 990,"
            " 'owner@example.com', $1, $3, 'pay-1', $4, $4)",
            "ord_" + secrets.token_hex(12),
            mine.owner_telegram_id,
            mine.tenant_id,
            datetime(2030, 12, 2, 9, tzinfo=UTC),
        )
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        link = login_link_url(web_server.deps.keys, web_server.url, mine.owner_telegram_id, 60)
        await page.goto(link)
        section = page.locator("#subscription")
        await expect(section).to_be_visible(timeout=15_000)
        await expect(section).to_contain_text("оплачен до 01.01.2031")
        await expect(section).to_contain_text("Автопродление: включено, карта •••• 4444 (07/2031)")
        await expect(section).to_contain_text("Следующее списание: 29.12.2030, 990\u00a0₽")
        await expect(page.locator("#payments")).to_contain_text("02.12.2030")
        await expect(page.locator("#payments")).to_contain_text("первый платёж")
        await page.get_by_role("button", name="Отключить автопродление").click()
        await expect(section).to_contain_text("Автопродление: выключено. Сохранённая карта")
        await expect(page.get_by_role("button", name="Включить автопродление")).to_be_visible()
        row = await conn.fetchrow(
            "SELECT auto_renew, next_charge_at FROM control.sales_subscriptions"
            " WHERE tenant_id = $1",
            mine.tenant_id,
        )
        assert (row["auto_renew"], row["next_charge_at"]) == (False, None)
        assert errors == []
    finally:
        await conn.execute("DELETE FROM control.sales_orders WHERE tenant_id = $1", mine.tenant_id)
        await conn.execute(
            "DELETE FROM control.sales_subscriptions WHERE tenant_id = $1", mine.tenant_id
        )
        await conn.close()
