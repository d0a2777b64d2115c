""" "Open the web panel" from a client bot's /admin, end to end: the owner presses the button in
the Telegram emulator, the bot (with only its tenant's credentials) writes the SHA-256 of a
one-time token into its own schema and shows a link; opened in Chromium, the web spends that
token as the tenant's own role and logs the owner in, to that bot only.

The attacks: the link replayed or moved to another bot; a row forged with the tenant's own
credentials (what a compromised bot could write) naming another bot's owner; and a session
opened this way reaching the owner's other bot or the account's password.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import asyncpg
from playwright.async_api import expect

from tests.client.conftest import TenantCreds, bot_factory, emulator  # noqa: F401 - fixtures
from tests.web.conftest import Client, fetch
from tests.web.test_browser import browser  # noqa: F401 - the fixture
from tests.web.test_tenant_data import add_lead, owner_client


def link_of(message: object) -> str:
    markup = getattr(message, "reply_markup", None) or {}
    urls = [b["url"] for row in markup.get("inline_keyboard", []) for b in row if "url" in b]
    assert len(urls) == 1, markup
    return str(urls[0])


async def test_the_owner_opens_the_web_panel_from_admin(
    web_server,
    http,
    make_web_tenant,
    bot_factory,  # noqa: F811 - the imported fixture
    browser,  # noqa: F811 - the imported fixture
):
    tenant = await make_web_tenant(web_server)
    # The owner's second bot, bought under the same Telegram id.
    other = await make_web_tenant(web_server, owner=tenant.owner_telegram_id)
    await add_lead(other, "Лид второго бота")
    bot = await bot_factory(
        tenant=TenantCreds(tenant.tenant_id, tenant.dsn, tenant.redis_url),
        admin_ids=(tenant.owner_telegram_id,),
        seed=False,
        settings={"web_public_url": web_server.url},
    )
    owner = await bot.admin(tenant.owner_telegram_id)
    panel = await owner.ask("/admin", "Панель управления")
    shown = await owner.press(panel, "🌐 Открыть веб-панель", "Веб-панель")
    url = link_of(shown)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == web_server.url
    assert parts.path == "/login/link"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["bot"] == tenant.tenant_id
    # The bot kept only the token's digest, for this owner, expiring in 15 minutes.
    rows = await fetch(
        tenant.dsn,
        "SELECT token_hash, telegram_id, expires_at - created_at AS ttl, used_at"
        " FROM web_login_tokens",
    )
    assert len(rows) == 1
    assert bytes(rows[0]["token_hash"]) == hashlib.sha256(query["token"].encode()).digest()
    assert rows[0]["telegram_id"] == tenant.owner_telegram_id
    assert rows[0]["ttl"].total_seconds() == 15 * 60 and rows[0]["used_at"] is None

    # Moved to another bot, the token is unknown there.
    web = Client(http, web_server)
    status, body = await web.call(
        "POST", "/api/auth/bot-link", json={"tenant_id": other.tenant_id, "token": query["token"]}
    )
    assert status == 401, body
    # Opened in a real browser, the page behind the link spends it: the dashboard, this bot
    # only, and no password form (this session speaks for this bot alone).
    page = await browser.new_page()
    await page.goto(url)
    await page.wait_for_url(web_server.url + "/dashboard", timeout=15_000)
    assert "token=" not in page.url
    await expect(page.locator("#bot option")).to_have_count(1, timeout=15_000)
    await expect(page.locator("#bot option")).to_have_attribute("value", tenant.tenant_id)
    await page.click("#account summary")
    await expect(page.locator("#only-bot")).to_be_visible()
    await expect(page.locator("#password-form")).to_be_hidden()
    web.access = await page.evaluate("sessionStorage.getItem('botfleet.access')")
    rows = await fetch(tenant.dsn, "SELECT used_at FROM web_login_tokens")
    assert rows[0]["used_at"] is not None
    status, me = await web.call("GET", "/api/auth/me")
    assert [t["tenant_id"] for t in me["tenants"]] == [tenant.tenant_id]
    assert me["only_bot"] == tenant.tenant_id
    status, again = await web.call(
        "POST", "/api/auth/bot-link", json={"tenant_id": query["bot"], "token": query["token"]}
    )
    assert status == 401, again

    # Its data is the bot's: a lead the owner sees in /admin is on the web, and back.
    await add_lead(tenant, "Анна")
    status, page = await web.call("GET", "/api/leads")
    assert [lead["name"] for lead in page["items"]] == ["Анна"]
    # The owner's other bot stays out of reach of this session, and so does the account.
    status, _ = await web.call("GET", "/api/leads", params={"tenant_id": other.tenant_id})
    assert status == 404
    status, _ = await web.call("GET", f"/api/tenants/{other.tenant_id}/customers")
    assert status == 404
    status, body = await web.call(
        "POST", "/api/auth/password", json={"password": "a new password!", "email": "x@ex.com"}
    )
    assert (status, body["error"]["code"]) == (403, "whole_account_required")
    # The whole account (the sales bot's platform-signed link) sees both bots.
    whole = await owner_client(http, web_server, tenant)
    status, me = await whole.call("GET", "/api/auth/me")
    assert {t["tenant_id"] for t in me["tenants"]} == {tenant.tenant_id, other.tenant_id}
    assert me["only_bot"] is None


async def test_a_forged_row_for_another_owner_opens_nothing(web_server, http, make_web_tenant):
    """What a compromised bot could do with its own credentials: write a token row naming the
    owner of another bot. The web checks the owner against the platform's record."""
    mine = await make_web_tenant(web_server)
    victim = await make_web_tenant(web_server)
    await add_lead(victim, "Секрет")
    token = secrets.token_urlsafe(32)
    conn = await asyncpg.connect(mine.dsn)  # the tenant's own login role
    try:
        await conn.execute(
            "INSERT INTO web_login_tokens (token_hash, telegram_id, expires_at)"
            " VALUES ($1, $2, now() + interval '10 minutes')",
            hashlib.sha256(token.encode()).digest(),
            victim.owner_telegram_id,
        )
    finally:
        await conn.close()
    web = Client(http, web_server)
    status, body = await web.call(
        "POST", "/api/auth/bot-link", json={"tenant_id": mine.tenant_id, "token": token}
    )
    assert (status, body["error"]["code"]) == (403, "not_the_owner")
    assert "access_token" not in body
    sessions = await web_server.deps.control.fetchval(
        "SELECT count(*) FROM control.web_sessions s JOIN control.web_accounts a"
        " ON a.id = s.account_id WHERE a.owner_telegram_id = $1",
        victim.owner_telegram_id,
    )
    assert sessions == 0
    # Expired and malformed tokens, unknown and paused bots: refused the same way.
    expired = secrets.token_urlsafe(32)
    conn = await asyncpg.connect(mine.dsn)
    try:
        await conn.execute(
            "INSERT INTO web_login_tokens (token_hash, telegram_id, expires_at)"
            " VALUES ($1, $2, now() - interval '1 second')",
            hashlib.sha256(expired.encode()).digest(),
            mine.owner_telegram_id,
        )
    finally:
        await conn.close()
    for tenant_id, value in (
        (mine.tenant_id, expired),
        ("client_999999", token),
    ):
        status, _ = await web.call(
            "POST", "/api/auth/bot-link", json={"tenant_id": tenant_id, "token": value}
        )
        assert status == 401, tenant_id
    for payload in (
        {"tenant_id": mine.tenant_id, "token": "short"},
        {"tenant_id": "x", "token": token},
    ):
        status, _ = await web.call("POST", "/api/auth/bot-link", json=payload)
        assert status == 422, payload
