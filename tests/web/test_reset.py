"""Password reset by a one-time link that reaches the owner in Telegram, through their chat with
the sales bot (the Telegram emulator stands in): the answer never says whether the account
exists, the link works once, the new password logs in and every old session ends."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from tests.client.conftest import emulator  # noqa: F401 - the fixture
from tests.web.conftest import Client, new_email
from web.tokens import issue_login_link

SALES_TOKEN = "4242424:sales-bot-token-for-the-reset-test"


async def test_a_reset_link_reaches_the_owners_telegram_and_works_once(
    start_web,
    http,
    emulator,  # noqa: F811 - the imported fixture
):
    server, tg = emulator
    await tg.register_bot(SALES_TOKEN, "botfleet_sales_bot", "Sales")
    web_server = await start_web(
        sales_bot_token=SALES_TOKEN, telegram_api_url=server.base_url, web_login_email_limit=5
    )
    owner_id = 880_999_001
    await tg.send_message(SALES_TOKEN, owner_id, "/start")  # they bought there: the chat exists
    email = new_email()
    client = Client(http, web_server)
    await client.register(email, "the old password")
    link = issue_login_link(web_server.deps.keys, owner_id, ttl=60)
    status, _ = await client.call("POST", "/api/auth/link", json={"token": link})
    assert status == 200  # the account now has the owner's Telegram

    anonymous = Client(http, web_server)
    status, known = await anonymous.call("POST", "/api/auth/reset", json={"email": email})
    assert status == 202, known
    status, unknown = await anonymous.call("POST", "/api/auth/reset", json={"email": new_email()})
    assert (status, unknown) == (202, known)  # no account enumeration

    for _ in range(100):
        sent = await tg.messages(SALES_TOKEN, owner_id)
        if sent:
            break
        await asyncio.sleep(0.05)
    (message,) = sent
    assert "Сброс пароля" in message.plain_text
    (link_url,) = [e["url"] for e in message.entities or [] if e.get("type") == "text_link"]
    url = urlsplit(link_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == web_server.url + "/reset"
    token = url.fragment.removeprefix("token=")
    kept = await web_server.deps.control.fetch("SELECT * FROM control.web_password_resets")
    assert token and token not in str(kept)  # only its digest is kept

    status, body = await anonymous.call(
        "POST", "/api/auth/reset/confirm", json={"token": token, "password": "short"}
    )
    assert status == 422, body
    status, tokens = await anonymous.call(
        "POST", "/api/auth/reset/confirm", json={"token": token, "password": "the new password"}
    )
    assert status == 200, tokens
    status, _ = await anonymous.call(
        "POST", "/api/auth/reset/confirm", json={"token": token, "password": "another one!!"}
    )
    assert status == 401  # once
    status, _ = await client.call("GET", "/api/auth/me")
    assert status == 401  # the old session ended
    status, _ = await client.login(email, "the old password")
    assert status == 401
    status, _ = await client.login(email, "the new password")
    assert status == 200

    # Asking again and again is throttled like failed logins.
    codes = []
    for _ in range(6):
        status, _ = await anonymous.call("POST", "/api/auth/reset", json={"email": email})
        codes.append(status)
    assert codes[-1] == 429, codes


async def test_a_telegram_account_sets_its_email_and_password(web_server, http):
    owner_id = 880_999_002
    client = Client(http, web_server)
    link = issue_login_link(web_server.deps.keys, owner_id, ttl=60)
    status, tokens = await client.call("POST", "/api/auth/link", json={"token": link}, token="")
    client.keep(tokens)
    status, body = await client.call("POST", "/api/auth/password", json={"password": "12345678a"})
    assert (status, body["error"]["code"]) == (422, "email_required")
    email = new_email()
    status, tokens = await client.call(
        "POST", "/api/auth/password", json={"password": "a good password", "email": email}
    )
    assert status == 200, tokens
    client.keep(tokens)
    status, _ = await client.login(email, "a good password")
    assert status == 200
    status, body = await client.call(
        "POST",
        "/api/auth/password",
        json={"password": "another password", "current_password": "no"},
    )
    assert (status, body["error"]["code"]) == (403, "wrong_password")
