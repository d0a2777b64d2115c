"""54-FZ receipts (issue 17): every charge — the first payment, an upgrade, a renewal of the saved
card — is sent with a receipt, so YooKassa (the fake, over HTTP through the real SDK) holds one
payment receipt per succeeded payment, for its amount, to the owner's email; the owner opens a
payment from /subscription's list and reads its receipt there: amount, items, date, ФН/ФД/ФП,
status; "not registered yet" while YooKassa has no fiscal answer, "try later" while YooKassa is
down (after the gateway's own retries), and nobody opens another owner's receipt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from sales_bot.callbacks import ReceiptCb
from sales_bot.kassa import YooKassa
from tests.sales.conftest import OWNER, SALES_TOKEN, Shop
from tests.sales.master_stub import MasterStub
from tests.sales.people import Person
from tests.sales.renewing import DUE, bought_renewing, deliver, moved_clock, paid_upgrade

EMAIL = "owner@example.com"


async def test_every_charge_has_one_receipt_for_its_amount_to_the_owner(
    shop: Shop, stub: MasterStub
) -> None:
    clock = moved_clock(shop)
    bot = await bought_renewing(shop, stub)
    upgrade = await paid_upgrade(
        shop, bot.order, current="start", to="business", period_end=bot.tenant.expires_at
    )
    await shop.settle(upgrade)
    clock.ahead(DUE)
    assert await shop.app.renewals.run_once() == 1
    await deliver(shop)

    succeeded = [p for p in shop.kassa.payments.values() if p["status"] == "succeeded"]
    kinds = sorted(p["metadata"]["kind"] for p in succeeded)
    assert kinds == ["new", "renewal", "upgrade"]
    for payment in succeeded:
        [receipt] = shop.kassa.receipts_of(payment["id"])
        assert receipt["status"] == "succeeded" and receipt["type"] == "payment"
        assert receipt["settlements"][0]["amount"] == payment["amount"]
        [item] = receipt["items"]
        assert item["amount"] == payment["amount"] and Decimal(str(item["quantity"])) == 1
        assert shop.kassa.receipt_customers[receipt["id"]] == {"email": EMAIL}
    amounts = {p["metadata"]["kind"]: p["amount"]["value"] for p in succeeded}
    assert amounts == {"new": "990.00", "upgrade": "1500.00", "renewal": "2490.00"}
    assert len(shop.kassa.receipts) == 3  # none for anything else


async def test_the_owner_reads_a_receipt_from_the_payments_list(
    make_shop: Callable[..., Awaitable[Shop]], stub: MasterStub
) -> None:
    shop = await make_shop(polling=True)
    gateway: YooKassa = shop.app.kassa  # type: ignore[assignment]
    gateway.retry_base_delay = 0.1  # the retries' backoff, shortened
    shop.kassa.hold_receipts = True  # the fiscal registrar has not answered yet
    bot = await bought_renewing(shop, stub)
    payment_id = bot.order.payment_id or ""
    owner = Person(shop.tg, SALES_TOKEN, OWNER)
    name = f"@{bot.order.bot_username}"

    card = await owner.ask("/subscription", "Тариф: Старт")
    payments = await owner.press(card, f"Платежи {name}", "Платежи")
    assert "Нажмите на платёж, чтобы увидеть его чек" in payments.plain_text
    [[button]] = payments.buttons()
    assert button.startswith("🧾 Чек:") and "990\u00a0₽" in button

    pending = await owner.press(payments, button, "Платёж от")
    assert "Чек ещё не зарегистрирован" in pending.plain_text
    assert "ФН" not in pending.plain_text

    shop.kassa.register_receipts()
    shop.kassa.fail_next = 2  # two 500s: the SDK call is retried with backoff, then answers
    shown = (await owner.press(payments, button, "Кассовый чек")).plain_text
    [receipt] = shop.kassa.receipts_of(payment_id)
    for part in (
        "Кассовый чек (54-ФЗ): приход",
        "Сумма: 990\u00a0₽",
        f"• {receipt['items'][0]['description']} — 1 × 990\u00a0₽",
        f"ФН: {receipt['fiscal_storage_number']}",
        f"ФД: {receipt['fiscal_document_number']}",
        f"ФП: {receipt['fiscal_attribute']}",
        "Статус: зарегистрирован",
        "(МСК)",
        name,
    ):
        assert part in shown, (part, shown)
    lists = [r for r in shop.kassa.requests if r == ("GET", "/v3/receipts")]
    assert len(lists) == 4  # one while pending, then two 500s and the answer

    gateway.retry_budget = 0.5  # a lasting outage: given up after ~0.5 s, not 10
    shop.kassa.down = True
    down = await owner.press(payments, button, "ЮKassa сейчас не отвечает")
    assert "Попробуйте через несколько минут" in down.plain_text
    shop.kassa.down = False

    # Another user sends the same button data (a forged button): refused, nothing read from
    # YooKassa, nothing shown.
    stranger = OWNER + 1
    await shop.tg.send_message(SALES_TOKEN, stranger, "/start")
    forged = ReceiptCb(order=bot.order.order_id).pack()
    bait = await shop.app.bot.send_message(
        stranger, "…", reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="🧾", callback_data=forged)]]
        ),
    )  # fmt: skip
    before = len(shop.kassa.requests)
    query_id = await shop.tg.click(SALES_TOKEN, stranger, bait.message_id, callback_data=forged)
    answer = await shop.tg.wait_for_callback_answer(SALES_TOKEN, query_id)
    assert answer.text == "Этот платёж не найден."
    assert len(shop.kassa.requests) == before
    assert not [m for m in await shop.messages(stranger) if "Платёж от" in m.plain_text]
    assert Decimal(receipt["settlements"][0]["amount"]["value"]) == bot.order.amount
