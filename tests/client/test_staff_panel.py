"""Staff in Telegram (issue 14.3), through the emulator as people do: the admin's one-time invite
links a staff member's account; they see only their own day with their own customers, hear of
their own bookings, mark their own visits; another staff member's booking is refused, unchanged.
"""

from __future__ import annotations

import re
from datetime import timedelta

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from client_bot.callbacks import StaffVisitCb, VisitAction
from client_bot.workers.reminders import ReminderWorker
from tests.client.conftest import T0, fetch

WED_10 = T0 + timedelta(days=1, hours=1)  # Wednesday 2 December, 10:00 in Moscow
OLGA_TG = 8101
MARIA_TG = 8102


async def _two_masters_with_bookings(bot):
    [maria] = await bot.store.staff()
    await bot.store.update_staff(maria.id, "name", "Мария")
    olga = await bot.store.add_staff("Ольга", "Колорист")
    haircut = (await bot.store.services())[0]
    booked = {}
    for customer_id, name, staff, start in (
        (301, "Анна", maria, WED_10),
        (302, "Борис", olga, WED_10 + timedelta(hours=1)),
        (303, "Вера", olga, WED_10 + timedelta(days=1)),  # Thursday: Ольга's "tomorrow"
    ):
        await bot.store.touch_customer(customer_id, name, None, None)
        booking = await bot.store.create_booking(
            customer_id=customer_id, service=haircut, starts_at=start, customer_name=name,
            phone=f"+7900000{customer_id}", staff_id=staff.id,
            reminders=[(120, start - timedelta(hours=2))],
        )  # fmt: skip
        booked[name] = booking.id
    return maria, olga, booked


async def _invite(owner, name: str) -> str:
    home = await owner.ask("/admin", "Панель управления")
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    card = await owner.press(
        await owner.press(settings, "👤 Специалисты", "Специалисты"), name, "Telegram: не подключён"
    )
    shown = await owner.press(card, "🔗 Приглашение в Telegram", "Отправьте эту ссылку")
    match = re.search(r"https://t\.me/(\w+)\?start=(staff_[A-Za-z0-9_-]+)", shown.plain_text)
    assert match is not None, shown.plain_text
    return match.group(2)


async def test_invite_links_a_staff_member_who_sees_only_their_own_day_and_marks_own_visits(
    bot_factory,
):
    bot = await bot_factory()
    bot.clock.advance(timedelta(days=1))  # Wednesday 09:00: the bookings are today
    _maria, olga, booked = await _two_masters_with_bookings(bot)
    owner = await bot.admin()
    payload = await _invite(owner, "Ольга")
    rows = await fetch(bot.tenant.dsn, "SELECT code_hash, staff_id, used_at FROM staff_invites")
    assert len(rows) == 1 and rows[0]["staff_id"] == olga.id and rows[0]["used_at"] is None
    assert payload.removeprefix("staff_").encode() not in rows[0]["code_hash"]  # only a hash

    # Ольга opens the link: linked, and her day is today's bookings of hers only.
    olga_tg = bot.customer(OLGA_TG, "Ольга")
    await olga_tg.ask(f"/start {payload}", "Вы подключены как специалист")
    day = await olga_tg.wait("Ольга · среда, 2 декабря")
    assert "11:00–12:00 · Стрижка · Борис, +7900000302 — 🕒 записан" in day.plain_text
    assert "Анна" not in day.plain_text and "+7900000301" not in day.plain_text
    await owner.wait("Ольга: Telegram специалиста подключён")
    [linked] = await fetch(bot.tenant.dsn, "SELECT telegram_id FROM staff WHERE id = $1", olga.id)
    assert linked["telegram_id"] == OLGA_TG
    tomorrow = await olga_tg.press(day, "Завтра", "четверг, 3 декабря")
    assert "Вера, +7900000303" in tomorrow.plain_text and "Борис" not in tomorrow.plain_text

    # The link works once: someone else opening it is refused, nothing changes.
    stranger = bot.customer(8199, "Чужой")
    await stranger.ask(f"/start {payload}", "ссылка-приглашение не работает")
    await stranger.ask("/staff", "Вы не подключены как специалист")
    [linked] = await fetch(bot.tenant.dsn, "SELECT telegram_id FROM staff WHERE id = $1", olga.id)
    assert linked["telegram_id"] == OLGA_TG

    # Her own visit: done.
    day = await olga_tg.ask("/staff", "Ольга · среда, 2 декабря")
    card = await olga_tg.press(day, "11:00 · Борис", f"Запись №{booked['Борис']}")
    done = await olga_tg.press(card, "✅ Пришёл", "Сохранено")
    assert "✅ пришёл" in done.plain_text

    # Another staff member's booking through a forged button (the Telegram emulator accepts
    # only buttons a message has: a message carrying them stands in for a modified client).
    forged = [
        InlineKeyboardButton(
            text=action.name,
            callback_data=StaffVisitCb(action=action, booking_id=booked["Анна"]).pack(),
        )
        for action in VisitAction
    ]
    planted = await bot.app.bot.send_message(
        OLGA_TG, "forged", reply_markup=InlineKeyboardMarkup(inline_keyboard=[forged])
    )
    for action in VisitAction:
        before = await olga_tg.seen()
        query = await olga_tg.client.click(bot.token, OLGA_TG, planted.message_id, text=action.name)
        answer = await bot.client.wait_for_callback_answer(bot.token, query)
        assert "Это не ваша запись" in answer.text
        assert await olga_tg.seen() == before  # no card, no names, nothing else
    rows = await fetch(bot.tenant.dsn, "SELECT id, status FROM bookings ORDER BY id")
    assert {r["id"]: r["status"] for r in rows} == {
        booked["Анна"]: "confirmed", booked["Борис"]: "done", booked["Вера"]: "confirmed",
    }  # fmt: skip
    # A customer who is no staff member pressing such a button is told so.
    planted = await bot.app.bot.send_message(
        8199, "forged", reply_markup=InlineKeyboardMarkup(inline_keyboard=[forged])
    )
    query = await stranger.client.click(bot.token, 8199, planted.message_id, text="done")
    assert (
        "не подключены как специалист"
        in (await bot.client.wait_for_callback_answer(bot.token, query)).text
    )


async def test_staff_hear_of_their_own_bookings_and_get_their_reminders(bot_factory):
    bot = await bot_factory()
    *_staff, booked = await _two_masters_with_bookings(bot)
    owner = await bot.admin()
    olga_tg = bot.customer(OLGA_TG, "Ольга")
    await olga_tg.ask(f"/start {await _invite(owner, 'Ольга')}", "Вы подключены")
    maria_tg = bot.customer(MARIA_TG, "Мария")
    await maria_tg.ask(f"/start {await _invite(owner, 'Мария')}", "Вы подключены")

    # A customer books Ольга: she is told (with the customer's name and phone), Мария is not.
    anna = bot.customer(304, "Дарья")
    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    masters = await anna.press(services, "Стрижка · 1\u00a0500 ₽", "Выберите специалиста")
    calendar = await anna.press(masters, "Ольга · 1\u00a0500 ₽", "Выберите день")
    slots = await anna.press(calendar, "4", "Выберите время")
    await anna.press(slots, "12:00", "Поделитесь номером")
    summary = await anna.ask("+7 900 555-44-33", "Проверьте запись")
    maria_seen = await maria_tg.seen()
    await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    notice = await olga_tg.wait("Новая запись")
    assert "Дарья, +79005554433" in notice.plain_text and "пт, 4 дек., 12:00" in notice.plain_text

    # Reminders: each staff member gets those of their own bookings only.
    await bot.customer(301, "Анна").ask("/start", "Добро пожаловать")  # her chat exists
    bot.clock.set(WED_10 - timedelta(hours=2))  # Анна's (Мария's) reminder is due
    worker = ReminderWorker(bot.app.ctx, bot.app.bot)
    assert await worker.tick() == 1
    reminder = await maria_tg.wait("Напоминание", after=maria_seen)
    assert (
        "Анна, +7900000301" in reminder.plain_text and f"№{booked['Анна']}" in reminder.plain_text
    )
    olga_messages = [m.plain_text for m in await bot.client.messages(bot.token, OLGA_TG)]
    assert not any("Напоминание" in m for m in olga_messages)
