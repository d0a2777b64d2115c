"""The sales bot's dialog through the Telegram emulator, as an owner lives it."""

from __future__ import annotations

import re

from sales_bot.orders import OrderStatus
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop, bot_token
from tests.sales.master_stub import MasterStub
from tests.sales.people import Person


async def buy_until_payment(shop: Shop, owner: Person, token: str) -> tuple[str, str]:
    """/start → … → the payment message; (payment id, the Pay button's URL)."""
    home = await owner.ask("/start", "Botfleet")
    assert "Тарифы от 990" in home.plain_text
    assert "ИИ-ассистент" in home.plain_text
    plans = await owner.press(home, "🛒 Купить бота", "Выберите тариф")
    assert plans.buttons()[1] == ["Бизнес — 2\u00a0490\u00a0₽ / месяц"]
    await owner.press(plans, plans.buttons()[1][0], "Как называется ваш бизнес")
    kinds = await owner.ask("Салон «Ромашка»", "Чем занимается «Салон «Ромашка»»")
    zones = await owner.press(kinds, "Салон красоты, барбершоп", "часовом поясе")
    assert zones.buttons()[0] == ["✅ Москва (UTC+3)"]
    await owner.press(zones, "✅ Москва (UTC+3)", "@BotFather")

    await owner.ask("мой токен: 12345", "не похоже на токен")
    revoked = bot_token()
    await shop.tg.register_bot(revoked, "old_salon_bot")
    await shop.tg.revoke_bot(revoked)
    await owner.ask(revoked, "Telegram не принимает этот токен")
    await owner.ask(SALES_TOKEN, "мой собственный токен")

    await shop.tg.register_bot(token, "romashka_salon_bot", "Ромашка")
    # Flood control on the check of the pasted token: a clear "send it again", not silence.
    await shop.tg.inject_fault(
        token, "getMe", error_code=429, description="Too Many Requests", retry_after=60
    )
    await owner.ask(token, "Не удалось связаться с Telegram, чтобы проверить токен")
    confirm = await owner.ask(f"вот он {token}", "Нашёл вашего бота @romashka_salon_bot")
    # The token was taken out of the chat.
    history = await shop.tg.history(SALES_TOKEN, OWNER)
    assert not any(token in (m.text or "") for m in history if not m.deleted)
    await owner.press(confirm, "Да, это мой бот", "email для чека")
    await owner.ask("not-an-email", "не похоже на адрес почты")
    consent = await owner.ask("Owner@Example.COM", "Включить автопродление?")
    pay = await owner.press(consent, "Оплатить один раз, без автопродления", "Оплатить")
    assert "Бизнес" in pay.plain_text and "2\u00a0490\u00a0₽" in pay.plain_text
    assert "Чек придёт на Owner@example.com" in pay.plain_text
    assert pay.buttons() == [["💳 Оплатить 2\u00a0490\u00a0₽"], ["Я оплатил — проверить"]]
    url = pay.reply_markup["inline_keyboard"][0][0]["url"]  # type: ignore[index]
    payment_id = url.rsplit("/", 1)[1]
    return payment_id, url


async def test_owner_buys_a_bot_and_hears_it_is_live(make_shop, stub: MasterStub) -> None:
    shop: Shop = await make_shop(polling=True, workers=True)
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    token = bot_token()
    payment_id, _ = await buy_until_payment(shop, owner, token)

    payment = shop.kassa.payments[payment_id]
    assert payment["amount"] == {"value": "2490.00", "currency": "RUB"}
    assert payment["metadata"]["plan"] == "business"
    assert re.fullmatch(r"ord_[0-9a-f]{24}", payment["metadata"]["order_id"])
    [order_row] = await shop.fetch("SELECT * FROM control.sales_orders")
    assert order_row["email"] == "Owner@example.com"
    assert order_row["timezone"] == "Europe/Moscow" and order_row["category"] == "beauty"
    assert token not in str(dict(order_row))  # sealed at rest

    pay = await owner.wait("Оплатить")
    alert = await owner.press_for_alert(pay, "Я оплатил — проверить")
    assert "пока не поступила" in alert

    stub.usernames[token] = "romashka_salon_bot"
    shop.kassa.succeed(payment_id)
    assert await shop.notify("payment.succeeded", payment_id) == 200
    live = await owner.wait("запущен")
    assert "@romashka_salon_bot" in live.plain_text and "/admin" in live.plain_text
    tenant = stub.tenants[order_row["order_id"]]
    assert tenant.bot_token == token and tenant.owner == OWNER and tenant.plan == "business"

    done = await owner.press(pay, "Я оплатил — проверить", "уже работает")
    assert "@romashka_salon_bot" in done.plain_text

    # /subscription, then "Extend" pays for another period and the master extends.
    subscription = await owner.ask("/subscription", "Статус: работает")
    assert "Тариф: Бизнес" in subscription.plain_text
    before = tenant.expires_at
    consent = await owner.press(
        subscription, "Продлить @romashka_salon_bot — 2\u00a0490\u00a0₽", "автопродление?"
    )
    renewal = await owner.press(consent, "Оплатить один раз, без автопродления", "Продление")
    renewal_payment = renewal.reply_markup["inline_keyboard"][0][0]["url"].rsplit("/", 1)[1]  # type: ignore[index]
    tenant.status = "suspended"  # expired meanwhile: paying brings it back
    shop.kassa.succeed(renewal_payment)
    await shop.notify("payment.succeeded", renewal_payment)
    await owner.wait("оплачен до")
    assert tenant.status == "active" and (tenant.expires_at - before).days >= 29
    rows = await shop.fetch("SELECT kind, status FROM control.sales_orders ORDER BY created_at")
    assert [(r["kind"], r["status"]) for r in rows] == [("new", "paid"), ("extend", "paid")]


async def test_used_token_and_a_refused_token_after_payment(make_shop, stub: MasterStub) -> None:
    shop: Shop = await make_shop(polling=True, workers=True)
    first = await shop.order(user_id=OWNER + 1)
    await shop.pay(first)
    await shop.settle(first)
    used = stub.tenants[first.order_id].bot_token

    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    home = await owner.ask("/start", "Botfleet")
    plans = await owner.press(home, "🛒 Купить бота", "Выберите тариф")
    await owner.press(plans, plans.buttons()[0][0], "Как называется")
    kinds = await owner.ask("Барбершоп", "Чем занимается")
    zones = await owner.press(kinds, "Другое", "часовом поясе")
    await owner.press(zones, "Самара (UTC+4)", "@BotFather")
    await owner.ask(used, "уже подключён к Botfleet")

    # A token the master refuses only after the payment (used by a tenant made elsewhere).
    token = bot_token()
    await shop.tg.register_bot(token, "taken_elsewhere_bot")
    stub.refuse_tokens[token] = "bot_token_in_use"
    confirm = await owner.ask(token, "@taken_elsewhere_bot")
    await owner.press(confirm, "Да, это мой бот", "email")
    consent = await owner.ask("me@example.org", "Включить автопродление?")
    pay = await owner.press(consent, "Оплатить один раз, без автопродления", "Оплатить")
    payment_id = pay.reply_markup["inline_keyboard"][0][0]["url"].rsplit("/", 1)[1]  # type: ignore[index]
    shop.kassa.succeed(payment_id)
    await shop.notify("payment.succeeded", payment_id)
    refused = await owner.wait("уже подключён к другому бизнесу")

    fresh = bot_token()
    await shop.tg.register_bot(fresh, "barber_new_bot")
    await owner.press(refused, "Прислать новый токен", "Пришлите токен бота")
    await owner.ask(fresh, "Настраиваю @barber_new_bot")
    await owner.wait("запущен")
    [row] = await shop.fetch(
        "SELECT order_id, status, failure, timezone FROM control.sales_orders WHERE user_id = $1",
        OWNER,
    )
    assert row["status"] == OrderStatus.PAID and row["failure"] is None
    assert row["timezone"] == "Europe/Samara"
    assert stub.tenants[row["order_id"]].bot_token == fresh


async def test_english_on_request(make_shop) -> None:
    shop: Shop = await make_shop(polling=True)
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    home = await owner.ask("/start", "Botfleet")
    english = await owner.press(home, "🇬🇧 English", "your own Telegram bot")
    assert "Plans from 990" in english.plain_text
    plans = await owner.press(english, "🛒 Buy a bot", "Choose a plan")
    assert plans.buttons()[0] == ["Start — 990\u00a0₽ / month"]
    faq = await owner.press(english, "❓ FAQ", "What do I need?")
    assert "/subscription" in faq.plain_text
    await owner.ask("/subscription", "You have no bots yet")

    newcomer = Person(shop.tg, SALES_TOKEN, OWNER + 5, language="en")
    await newcomer.ask("/start", "ready in a minute")
