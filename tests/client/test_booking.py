"""Customers book, see and cancel their bookings — through the emulator, as a person would."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.client.conftest import ADMIN, fetch


async def book(customer, *, service="Стрижка", day="2", time_="10:00", phone="+7 900 123-45-67"):
    menu = await customer.ask("/start", "Добро пожаловать в «Ромашку»!")
    services = await customer.press(menu, "📅 Записаться", "Выберите услугу")
    button = next(b for row in services.buttons() for b in row if b.startswith(service))
    calendar = await customer.press(services, button, "Выберите день")
    slots = await customer.press(calendar, day, "Выберите время")
    ask_phone = await customer.press(slots, time_, "Поделитесь номером телефона")
    assert ask_phone.reply_buttons() == [["📱 Поделиться номером телефона"]]
    summary = await customer.ask(phone, "Проверьте запись")
    return summary


async def test_full_booking_journey(bot_factory):
    bot = await bot_factory()
    await bot.admin()
    anna = bot.customer(101)
    menu = await anna.ask("/start", "Добро пожаловать")
    assert "Салон «Ромашка»" in menu.plain_text
    assert menu.buttons() == [["💇 Услуги", "📅 Записаться"], ["🗂 Мои записи", "📍 Контакты"]]

    services = await anna.press(menu, "💇 Услуги", "Наши услуги")
    assert "Стрижка — 1\u00a0500 ₽, 60 мин" in services.plain_text
    assert "Окрашивание — 4\u00a0000 ₽, 120 мин" in services.plain_text

    contacts = await anna.press(menu, "📍 Контакты", "Контакты")
    assert "Москва, ул. Ленина, 1" in contacts.plain_text
    assert "вс: выходной" in contacts.plain_text and "пн: 10:00–19:00" in contacts.plain_text

    summary = await book(anna)
    assert "Стрижка" in summary.plain_text and "ср, 2 дек., 10:00" in summary.plain_text
    assert "+79001234567" in summary.plain_text and "1\u00a0500 ₽" in summary.plain_text
    done = await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    assert "Стрижка" in done.plain_text and "ср, 2 дек., 10:00" in done.plain_text

    rows = await fetch(bot.tenant.dsn, "SELECT * FROM bookings")
    assert len(rows) == 1
    assert rows[0]["customer_id"] == 101 and rows[0]["phone"] == "+79001234567"
    assert rows[0]["starts_at"] == bot.clock.now() + timedelta(
        days=1, hours=1
    )  # 10:00 MSK on 2 Dec
    reminders = await fetch(bot.tenant.dsn, "SELECT offset_min FROM reminders ORDER BY 1")
    assert [r["offset_min"] for r in reminders] == [120, 1440]
    # The admin heard about it.
    note = await bot.client.wait_for_message(bot.token, ADMIN, contains="Новая запись")
    assert "Анна" in note.plain_text and "+79001234567" in note.plain_text


async def test_calendar_shows_only_days_with_free_slots(bot_factory):
    bot = await bot_factory()
    anna = bot.customer(102)
    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    calendar = await anna.press(services, "Стрижка · 1\u00a0500 ₽", "Выберите день")
    days = {b for row in calendar.buttons()[2:-1] for b in row if b.isdigit()}
    # 1 Dec (Tue) is today and still has slots; Sundays (6, 13, 20, 27) are closed.
    assert {"1", "2", "5", "7"} <= days
    assert not {"6", "13", "20", "27"} & days
    assert calendar.buttons()[0][1] == "Декабрь 2026"
    slots = await anna.press(calendar, "1", "Выберите время")
    times = [b for row in slots.buttons() for b in row]
    # Lead time 60 min from 09:00 → first slot 10:00; lunch 13–14; last start 18:00.
    assert times[:3] == ["10:00", "10:30", "11:00"]
    assert "12:30" not in times and "13:00" not in times and "13:30" not in times
    assert "14:00" in times and times[-2] == "18:00" and times[-1] == "« Даты"


async def test_invalid_phone_gets_a_clear_answer_and_a_shared_contact_works(bot_factory):
    bot = await bot_factory()
    anna = bot.customer(103)
    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    calendar = await anna.press(services, "Стрижка · 1\u00a0500 ₽", "Выберите день")
    slots = await anna.press(calendar, "3", "Выберите время")
    await anna.press(slots, "11:00", "Поделитесь номером")
    await anna.ask("позвоните мне", "не похоже на номер телефона")
    before = await anna.seen()
    await anna.share_contact("79161234567")
    summary = await anna.wait("Проверьте запись", after=before)
    assert "+79161234567" in summary.plain_text


async def test_double_booking_race_exactly_one_wins(bot_factory):
    bot = await bot_factory()
    anna, boris = bot.customer(104, "Анна"), bot.customer(105, "Борис")
    summaries = await asyncio.gather(book(anna, time_="15:00"), book(boris, time_="15:00"))
    before = [await anna.seen(), await boris.seen()]
    await asyncio.gather(
        anna.click(summaries[0], "✅ Подтвердить"), boris.click(summaries[1], "✅ Подтвердить")
    )
    results = []
    for customer, seen in zip((anna, boris), before, strict=True):
        results.append(await customer.wait("", after=seen))
    texts = sorted(r.plain_text for r in results)
    assert sum("Вы записаны" in t for t in texts) == 1
    loser = next(r for r in results if "Вы записаны" not in r.plain_text)
    assert "только что заняли" in loser.plain_text
    times = [b for row in loser.buttons() for b in row]
    assert "15:00" not in times and "16:00" in times  # fresh choices without the taken slot
    rows = await fetch(bot.tenant.dsn, "SELECT customer_id FROM bookings")
    assert len(rows) == 1


async def test_stale_buttons_get_fresh_choices(bot_factory):
    bot = await bot_factory()
    anna = bot.customer(106)
    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    calendar = await anna.press(services, "Стрижка · 1\u00a0500 ₽", "Выберите день")
    slots = await anna.press(calendar, "2", "Выберите время")
    # Someone else takes 10:00 meanwhile.
    haircut = (await bot.store.services())[0]
    await bot.store.create_booking(
        customer_id=106, service=haircut, starts_at=bot.clock.now() + timedelta(days=1, hours=1),
        customer_name="X", phone="+70000000000",
    )  # fmt: skip
    await bot.store.touch_customer(106, "Анна", None, None)
    fresh = await anna.press(slots, "10:00", "только что заняли")
    assert "10:00" not in [b for row in fresh.buttons() for b in row]
    # The service gets hidden: its old buttons lead back to the service list.
    await bot.store.set_service_hidden(haircut.id, True)
    back = await anna.press(calendar, "3", "больше недоступна")
    assert [b for row in back.buttons() for b in row] == ["Окрашивание · 4\u00a0000 ₽", "« Меню"]
    # A day that has passed.
    bot.clock.advance(timedelta(days=3))
    await bot.store.set_service_hidden(haircut.id, False)
    past = await anna.press(calendar, "2", "уже прошёл")
    assert "Выберите день" in past.plain_text


async def test_my_bookings_and_cancel_until_cutoff(bot_factory):
    bot = await bot_factory()
    await bot.admin()
    anna = bot.customer(107)
    await anna.press(await book(anna, day="2", time_="10:00"), "✅ Подтвердить", "Вы записаны")
    menu = await anna.ask("/start", "Добро пожаловать")
    mine = await anna.press(menu, "🗂 Мои записи", "Ваши записи")
    assert "Стрижка" in mine.plain_text and "ср, 2 дек., 10:00" in mine.plain_text
    booking_id = (await fetch(bot.tenant.dsn, "SELECT id FROM bookings"))[0]["id"]
    # Past the cut-off (less than 2 h before) no cancel button, and an old button is refused.
    bot.clock.advance(timedelta(hours=24, minutes=30))  # 09:30 on 2 Dec
    late = await anna.press(menu, "🗂 Мои записи", "Ваши записи")
    assert late.buttons() == [["« Меню"]] and "позвоните нам" in late.plain_text
    before = await anna.seen()
    query_id = await anna.click(mine, f"✖️ Отменить №{booking_id}")
    answer = await bot.client.wait_for_callback_answer(bot.token, query_id)
    assert "Отменить онлайн уже поздно" in answer.text
    refreshed = await anna.wait("Ваши записи", after=before)  # the list, as it is now
    assert refreshed.buttons() == [["« Меню"]]
    bot.clock.set(bot.clock.now() - timedelta(hours=24))  # back to a day before
    fresh = await anna.press(menu, "🗂 Мои записи", "Ваши записи")
    await anna.press(fresh, f"✖️ Отменить №{booking_id}", "нет предстоящих записей")
    rows = await fetch(bot.tenant.dsn, "SELECT status, cancelled_by FROM bookings")
    assert [(r["status"], r["cancelled_by"]) for r in rows] == [("cancelled", "customer")]
    assert await fetch(bot.tenant.dsn, "SELECT * FROM reminders") == []
    note = await bot.client.wait_for_message(bot.token, ADMIN, contains="Клиент отменил запись")
    assert f"№{booking_id}" in note.plain_text


async def test_free_text_points_to_the_menu(bot_factory):
    bot = await bot_factory()
    anna = bot.customer(108)
    reply = await anna.ask("сколько стоит стрижка?", "Лучше всего я понимаю кнопки меню")
    assert reply.buttons()[0] == ["💇 Услуги", "📅 Записаться"]


EDIT_FAILURES = [
    (400, "Bad Request: message to edit not found"),
    (400, "Bad Request: message is not modified: specified new message content and reply "
     "markup are exactly the same as a current content and reply markup of the message"),
    (502, "Bad Gateway"),
]  # fmt: skip


@pytest.mark.parametrize(("code", "description"), EDIT_FAILURES)
async def test_a_failing_cosmetic_edit_does_not_swallow_the_booking(bot_factory, code, description):
    bot = await bot_factory()
    await bot.admin()
    anna = bot.customer(111)
    summary = await book(anna, time_="12:00")
    # Removing the Confirm/Cancel buttons fails (the message is gone, unchanged, or Telegram
    # has a bad moment): the customer and the admin must still hear about the booking.
    await bot.client.inject_fault(
        bot.token, "editMessageReplyMarkup", error_code=code, description=description
    )
    done = await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    assert "Стрижка" in done.plain_text
    note = await bot.client.wait_for_message(bot.token, ADMIN, contains="Новая запись")
    assert "Анна" in note.plain_text
    assert not [
        m for m in await anna.client.messages(bot.token, anna.id) if "пошло не так" in m.plain_text
    ]
    rows = await fetch(bot.tenant.dsn, "SELECT customer_id FROM bookings")
    assert [r["customer_id"] for r in rows] == [111]
    calls = await bot.client.wait_for_calls(bot.token, "editMessageReplyMarkup")
    assert calls[-1].ok is False  # the edit was tried, and failed


async def test_a_failing_cosmetic_edit_does_not_swallow_a_cancel(bot_factory):
    bot = await bot_factory()
    anna = bot.customer(112)
    summary = await book(anna, time_="11:30")
    await bot.client.inject_fault(
        bot.token, "editMessageReplyMarkup", error_code=400,
        description="Bad Request: message to edit not found",
    )  # fmt: skip
    await anna.press(summary, "✖️ Отмена", "Запись отменена")
    assert not await fetch(bot.tenant.dsn, "SELECT 1 FROM bookings")
