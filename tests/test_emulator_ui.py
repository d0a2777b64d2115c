"""The emulator's chat view in a real browser (Debian's chromium driven by Playwright): an
owner buys a bot from the real sales bot by typing and pressing buttons in the page, opens the
"Pay" link, pays on the YooKassa fake's checkout page and is back in the chat, told the bot runs.

The browser comes from `scripts/browser.sh` (BOTFLEET_CHROMIUM; Debian's package, never a
Playwright download); without one the test fails and says so.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import AsyncIterator

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from telegram_emulator import EmulatorServer
from tests.sales import conftest as sales
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop, bot_token
from tests.sales.master_stub import MasterStub
from yookassa_emulator import YooKassaFake

# The sales bot's own fixtures (its emulator, YooKassa fake, master stub, a running shop).
tg, kassa, stub, clean_sales, make_shop = (
    sales.tg, sales.kassa, sales.stub, sales.clean_sales, sales.make_shop
)  # fmt: skip

TIMEOUT_MS = 20_000  # a loaded 2-core machine: generous, never a timing assertion


def chromium_path() -> str:
    path = (
        os.environ.get("BOTFLEET_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if not path:
        pytest.fail('no chromium: run `eval "$(scripts/browser.sh up)"` (make test does)')
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def last_bot_message(page: Page, contains: str) -> None:
    await expect(page.locator(".msg.bot").last).to_contain_text(contains, timeout=TIMEOUT_MS)


async def press(page: Page, label: str, then: str) -> None:
    await page.locator(".msg.bot").last.locator(".inline", has_text=label).first.click()
    await last_bot_message(page, then)


async def say(page: Page, text: str, then: str) -> None:
    await page.locator("#text").fill(text)
    await page.locator("#send").click()
    await last_bot_message(page, then)


async def test_the_page_is_served_whole_and_without_a_cdn() -> None:
    async with EmulatorServer() as server, aiohttp.ClientSession() as session:
        for path, kind in (
            ("/", "text/html"),
            ("/ui/app.js", "javascript"),
            ("/ui/style.css", "css"),
        ):
            async with session.get(server.base_url + path) as resp:
                assert resp.status == 200 and kind in resp.content_type
                body = await resp.text()
                assert "http://" not in body and "https://" not in body  # nothing fetched elsewhere
        async with session.get(server.base_url + "/ui/../server.py") as resp:
            assert resp.status == 404


async def test_an_owner_buys_a_bot_in_the_browser(
    make_shop, stub: MasterStub, tg, browser: Browser
) -> None:
    server, client = tg
    chat_url = f"{server.base_url}/?bot=botfleet_sales_bot&user={OWNER}&name=Owner"
    # After paying, YooKassa sends the owner back to the shop: here, the emulator's chat.
    shop: Shop = await make_shop(
        polling=True, workers=True, yookassa_return_url=chat_url,
        yookassa_trusted_networks="127.0.0.1/32",
    )  # fmt: skip
    shop.kassa.webhook_url = shop.webhook_url
    token = bot_token()
    await client.register_bot(token, "romashka_browser_bot", "Ромашка")
    stub.usernames[token] = "romashka_browser_bot"

    page = await browser.new_page()
    await page.goto(chat_url)
    await expect(page.locator("#bot")).to_have_value(SALES_TOKEN, timeout=TIMEOUT_MS)
    await say(page, "/start", "Botfleet")
    await press(page, "Купить бота", "Выберите тариф")
    await press(page, "Бизнес", "Как называется ваш бизнес")
    await say(page, "Салон «Ромашка»", "Чем занимается")
    await press(page, "Салон красоты", "часовом поясе")
    await press(page, "Москва", "@BotFather")
    await say(page, token, "@romashka_browser_bot")
    await press(page, "Да, это мой бот", "email")
    await say(page, "owner@example.com", "автопродление")
    await press(page, "без автопродления", "Оплатить")
    # The user's own messages are shown too, on their side of the chat.
    await expect(page.locator(".msg.user", has_text="/start")).to_have_count(1)

    # "Pay" is a link button: it opens YooKassa's checkout page in a new tab.
    pay = page.locator(".msg.bot").last.locator("a.inline", has_text="Оплатить")
    assert (await pay.get_attribute("href") or "").startswith(shop.kassa.base_url + "/checkout/")
    async with page.context.expect_page() as opened:
        await pay.click()
    checkout = await opened.value
    await checkout.wait_for_load_state()
    await expect(checkout.locator("body")).to_contain_text("2490.00", timeout=TIMEOUT_MS)
    await checkout.get_by_role("button", name="Pay").click()
    # Paid: the checkout page returns to the chat, where the sales bot says the bot runs.
    await checkout.wait_for_url(f"{server.base_url}/**", timeout=TIMEOUT_MS)
    await expect(checkout.locator(".msg.bot").last).to_contain_text(
        "@romashka_browser_bot", timeout=TIMEOUT_MS
    )
    await last_bot_message(page, "запущен")
    assert [payment["status"] for payment in shop.kassa.payments.values()] == ["succeeded"]
    assert len(stub.tenants) == 1


async def test_the_checkout_page_pays_even_when_the_shop_does_not_answer(
    kassa: YooKassaFake,
) -> None:
    kassa.webhook_url = "http://127.0.0.1:9/yookassa/webhook"  # nobody listens there
    body = {
        "amount": {"value": "990.00", "currency": "RUB"},
        "confirmation": {"type": "redirect", "return_url": "http://127.0.0.1:9/back"},
        "description": "<b>Салон</b> & Co",
    }
    basic = base64.b64encode(f"{kassa.shop_id}:{kassa.secret_key}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {basic}"}) as session:
        async with session.post(
            kassa.api_url + "/payments", json=body, headers={"Idempotence-Key": "k1"}
        ) as resp:
            payment = await resp.json()
        page_url = payment["confirmation"]["confirmation_url"]
        async with session.get(page_url) as resp:
            page = await resp.text()
            assert resp.content_type == "text/html" and resp.charset == "utf-8"
        assert "&lt;b&gt;Салон&lt;/b&gt; &amp; Co" in page and "<button" in page
        async with session.post(page_url, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "http://127.0.0.1:9/back"
        async with session.get(page_url) as resp:
            page = await resp.text()
        assert "succeeded" in page and "<button" not in page and "Back to the shop" in page
    assert kassa.payments[payment["id"]]["status"] == "succeeded"
