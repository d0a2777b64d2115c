"""The business's admin panel, used through the emulator as the owner would, with what the
customers see afterwards and the database state checked."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from aiogram.filters.callback_data import CallbackData
from aiogram.utils.keyboard import InlineKeyboardBuilder

from client_bot.callbacks import HandoffAction, HandoffCb, LeadAction, LeadCb, LeadStatus
from client_bot.handlers.admin import parse
from client_bot.handlers.admin.callbacks import (
    AdminCb,
    AdminsAction,
    AdminsCb,
    AssistantAction,
    AssistantCb,
    BookingAction,
    BookingAdminCb,
    CustomersAction,
    CustomersCb,
    Locale,
    LocaleCb,
    ProfileCb,
    ProfileKey,
    RuleCb,
    RuleKey,
    ScheduleAction,
    ScheduleCb,
    Screen,
    ServiceAction,
    ServiceAdminCb,
)
from client_bot.i18n import build_i18n
from tests.client.conftest import ADMIN, fetch

PANEL = "Панель управления"


async def calm(bot, user_id=ADMIN):
    """Reset the flood counter: these tests click faster than the 20-per-10-s limit allows."""
    await bot.app.redis.delete(f"{bot.settings.redis_key_prefix}throttle:{user_id}")


async def open_settings(owner, section, expect):
    home = await owner.ask("/admin", PANEL)
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    return await owner.press(settings, section, expect)


def flat(message):
    return [b for row in message.buttons() for b in row]


async def customer_services(customer):
    menu = await customer.ask("/start", "")
    return await customer.press(menu, "💇 Услуги", "Наши услуги")


async def customer_slots(customer, day, service="Стрижка · 1\u00a0500 ₽"):
    menu = await customer.ask("/start", "")
    services = await customer.press(menu, "📅 Записаться", "Выберите услугу")
    calendar = await customer.press(services, service, "Выберите день")
    days = {b for row in calendar.buttons()[2:-1] for b in row if b.isdigit()}
    if day not in days:
        return days, None
    slots = await customer.press(calendar, day, "Выберите время")
    return days, [b for b in flat(slots) if ":" in b]


async def test_services_add_edit_hide_reorder(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    services = await open_settings(owner, "💇 Услуги", "Услуги")
    assert "1. Стрижка — 1\u00a0500 ₽, 60 мин" in services.plain_text
    assert flat(services) == ["Стрижка", "Окрашивание", "➕ Добавить услугу", "« Настройки"]

    await owner.press(services, "➕ Добавить услугу", "одним сообщением")
    await owner.ask("Маникюр", "одной строкой")
    await owner.ask("Маникюр; дёшево; 45", "Цена — это число")
    await owner.ask("Маникюр; 1200; 3", "от 5 до 1440")
    card = await owner.ask("Маникюр; 1 200; 45; Классический", "Услуга добавлена")
    assert "Цена: 1\u00a0200 ₽" in card.plain_text and "Длительность: 45 мин" in card.plain_text
    rows = await fetch(bot.tenant.dsn, "SELECT * FROM services WHERE name = 'Маникюр'")
    assert rows[0]["price"] == 1200 and rows[0]["duration_min"] == 45
    assert rows[0]["description"] == "Классический"

    await owner.press(card, "✏️ Цена", "новую цену")
    await owner.ask("бесплатно", "Цена — это число")
    card = await owner.ask("1300,50", "Сохранено")
    assert "Цена: 1\u00a0300,50 ₽" in card.plain_text
    await owner.press(card, "✏️ Название", "новое название")
    card = await owner.ask("Маникюр <классика>", "Сохранено")
    assert "Маникюр <классика>" in card.plain_text  # escaped HTML, shown as typed
    await owner.press(card, "✏️ Длительность", "длительность")
    card = await owner.ask("50", "Длительность: 50 мин")
    await owner.press(card, "✏️ Описание", "новое описание")
    card = await owner.ask("-", "Описание: —")
    await calm(bot)
    # Move it to the top.
    listing = await owner.press(card, "⬆️ Выше", "Услуги")
    assert "1. Стрижка" in listing.plain_text and "2. Маникюр <классика>" in listing.plain_text
    await owner.press(card, "⬆️ Выше", "1. Маникюр <классика>")
    # Hide Окрашивание.
    listing = await owner.press(card, "« Услуги", "Услуги")
    coloring = await owner.press(listing, "Окрашивание", "Видна клиентам")
    hidden = await owner.press(coloring, "🙈 Скрыть", "клиенты её больше не видят")
    assert "👁 Показать" in flat(hidden)
    rows = await fetch(bot.tenant.dsn, "SELECT name, hidden FROM services ORDER BY position")
    assert [(r["name"], r["hidden"]) for r in rows] == [
        ("Маникюр <классика>", False),
        ("Стрижка", False),
        ("Окрашивание", True),
    ]

    anna = bot.customer(111)
    seen = await customer_services(anna)
    assert seen.plain_text.index("Маникюр <классика> — 1\u00a0300,50 ₽, 50 мин") < (
        seen.plain_text.index("Стрижка")
    )
    assert "Окрашивание" not in seen.plain_text
    menu = await anna.ask("/start", "")
    choose = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    assert flat(choose) == [
        "Маникюр <классика> · 1\u00a0300,50 ₽",
        "Стрижка · 1\u00a0500 ₽",
        "« Меню",
    ]
    # Shown again, it is offered again.
    await owner.press(hidden, "👁 Показать", "Снова видна")
    assert "Окрашивание" in (await customer_services(anna)).plain_text


async def test_schedule_hours_breaks_and_days_off_change_the_calendar(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    schedule = await open_settings(owner, "🕒 График", "График работы")
    assert "ср: 10:00–19:00 (перерывы: 13:00–14:00)" in schedule.plain_text
    assert "вс: выходной" in schedule.plain_text

    wednesday = await owner.press(schedule, "ср", "Часы работы: 10:00–19:00")
    await owner.press(wednesday, "✏️ Часы работы", "пришлите часы работы")
    await owner.ask("с утра", "это не интервал")
    await owner.ask("12:00-11:00", "конец должен быть позже начала")
    await owner.ask("10:00-12:00, 11:00-13:00", "пересекаются")
    wednesday = await owner.ask("10:00-12:00, 15:00-17:00", "Сохранено")
    assert "Часы работы: 10:00–12:00, 15:00–17:00" in wednesday.plain_text
    await owner.press(wednesday, "✏️ Перерывы", "пришлите перерывы")
    wednesday = await owner.ask("-", "Перерывы: —")

    sunday = await owner.press(schedule, "вс", "Часы работы: выходной")
    await owner.press(sunday, "✏️ Часы работы", "пришлите часы работы")
    await owner.ask("11:00-15:00", "Сохранено")

    await calm(bot)
    await owner.press(schedule, "➕ Добавить выходной", "дату выходного")
    await owner.ask("завтра", "это не дата")
    await owner.ask("30.11.2026", "уже прошла")
    done = await owner.ask("03.12.2026", "теперь выходной")
    assert "четверг, 3 декабря" in done.plain_text
    await owner.press(schedule, "➕ Добавить выходной", "дату выходного")
    done = await owner.ask("2026-12-31", "теперь выходной")
    assert "✖️ чт, 31 дек." in flat(done)

    hours = await fetch(bot.tenant.dsn, "SELECT weekday, opens, closes FROM working_hours")
    assert sorted((r["weekday"], f"{r['opens']:%H:%M}") for r in hours if r["weekday"] in (2, 6)) == [
        (2, "10:00"), (2, "15:00"), (6, "11:00"),
    ]  # fmt: skip
    assert await fetch(bot.tenant.dsn, "SELECT * FROM breaks WHERE weekday = 2") == []
    days_off = await fetch(bot.tenant.dsn, "SELECT day FROM days_off ORDER BY day")
    assert [f"{r['day']:%d.%m}" for r in days_off] == ["03.12", "31.12"]

    anna = bot.customer(121)
    days, slots = await customer_slots(anna, "2")
    assert slots == ["10:00", "10:30", "11:00", "15:00", "15:30", "16:00"]
    assert "3" not in days and "6" in days  # a day off; Sunday is open now
    _days, sunday_slots = await customer_slots(anna, "6")
    assert sunday_slots[0] == "11:00" and sunday_slots[-1] == "14:00"

    # Removing the day off opens the day again.
    await owner.click(done, "✖️ чт, 3 дек.")
    await owner.wait("Выходной убран")
    days, _slots = await customer_slots(anna, "3")
    assert "3" in days


async def test_booking_rules_change_the_slots(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    rules = await open_settings(owner, "📏 Правила записи", "Правила записи")
    assert "Шаг записи: 30 мин" in rules.plain_text
    assert "Напоминания: за 24 ч, 2 ч до визита" in rules.plain_text

    await owner.press(rules, "Шаг записи", "от 5 до 240")
    await owner.ask("1000", "от 5 до 240")
    await owner.ask("час", "от 5 до 240")
    rules = await owner.ask("60", "Шаг записи: 60 мин")
    await owner.press(rules, "Горизонт", "от 1 до 365")
    rules = await owner.ask("3", "Горизонт: 3 дн.")
    await owner.press(rules, "Запись заранее", "от 0 до 10080")
    rules = await owner.ask("0", "Запись заранее: 0 мин")
    await owner.press(rules, "Отмена до", "от 0 до 10080")
    await owner.ask("240", "Отмена до: 240 мин")
    await calm(bot)
    await owner.press(rules, "Перерыв", "от 0 до 240")
    await owner.ask("15", "Перерыв: 15 мин")
    await owner.press(rules, "Напоминания", "за сколько минут")
    await owner.ask("1440, 2", "от 5 до 10080")
    rules = await owner.ask("60", "Напоминания: за 1 ч до визита")

    row = (await fetch(bot.tenant.dsn, "SELECT * FROM business"))[0]
    assert (row["slot_step"], row["horizon_days"], row["lead_time_min"]) == (60, 3, 0)
    assert (row["cancel_cutoff_min"], row["buffer_min"]) == (240, 15)
    assert row["reminder_offsets_min"] == [60]

    anna = bot.customer(131)
    days, slots = await customer_slots(anna, "1")
    # Lead time 0 at 09:00: 10:00 is open; hourly starts; lunch 13–14; booking only 3 days ahead.
    assert slots == ["10:00", "11:00", "12:00", "14:00", "15:00", "16:00", "17:00", "18:00"]
    assert "1" in days and "10" not in days and "7" not in days


async def test_profile_and_language_switch(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    profile = await open_settings(owner, "🏷 Профиль", "Профиль")
    assert "Название: Салон «Ромашка»" in profile.plain_text

    await owner.press(profile, "Название", "название компании")
    await owner.ask("Барбершоп & Co", "Название: Барбершоп & Co")
    await owner.press(profile, "Приветствие", "приветствие")
    await owner.ask("Рады видеть <вас>!", "Сохранено")
    await owner.press(profile, "Телефон", "телефон для клиентов")
    await owner.ask("позвоните", "не похоже на номер телефона")
    await owner.ask("+7 999 111-22-33", "Телефон: +7 999 111-22-33")
    await owner.press(profile, "Ссылка на карту", "ссылку на карту")
    await owner.ask("yandex.ru/maps", "должна начинаться с https://")
    await owner.ask("https://yandex.ru/maps/-/ABC", "Сохранено")
    await owner.press(profile, "Адрес", "адрес")
    await owner.ask("-", "Адрес: —")
    await calm(bot)
    await owner.press(profile, "Часовой пояс", "часовой пояс")
    await owner.ask("Europe/Nowhere", "это не часовой пояс")
    await owner.ask("../../etc/passwd", "это не часовой пояс")
    await owner.ask("Asia/Yekaterinburg", "Часовой пояс: Asia/Yekaterinburg")

    row = (await fetch(bot.tenant.dsn, "SELECT * FROM business"))[0]
    assert (row["name"], row["welcome_text"], row["address"]) == (
        "Барбершоп & Co", "Рады видеть <вас>!", "",
    )  # fmt: skip
    assert (row["phone"], row["map_url"], row["timezone"]) == (
        "+7 999 111-22-33", "https://yandex.ru/maps/-/ABC", "Asia/Yekaterinburg",
    )  # fmt: skip

    anna = bot.customer(141)
    start = await anna.ask("/start", "Рады видеть <вас>!")
    assert "Барбершоп & Co" in start.plain_text
    contacts = await anna.press(start, "📍 Контакты", "Контакты")
    assert "+7 999 111-22-33" in contacts.plain_text and "Адрес" not in contacts.plain_text
    # The time zone moved the calendar: 11:00 in Yekaterinburg, so 12:00 is the first slot.
    _days, slots = await customer_slots(anna, "1")
    assert slots[0] == "12:00"

    language = await owner.press(profile, "Язык", "На каком языке")
    switched = await owner.press(language, "🇬🇧 English", "The bot speaks English now")
    assert "Language: English" in switched.plain_text
    assert (await fetch(bot.tenant.dsn, "SELECT locale FROM business"))[0]["locale"] == "en"
    start = await anna.ask("/start", "Рады видеть <вас>!")
    assert start.buttons() == [["💇 Services", "📅 Book"], ["🗂 My bookings", "📍 Contacts"]]
    await anna.ask("hello", "I understand the menu buttons best")
    commands = await bot.client.commands(bot.token)
    assert commands == [{"command": "start", "description": "Main menu"}]
    await owner.ask("/admin", "Admin panel")


async def test_bookings_today_by_date_statuses_cancel_with_note_and_csv(bot_factory):
    bot = await bot_factory(admin_ids=(ADMIN, 7003))
    owner = await bot.admin()
    partner = await bot.admin(7003)
    haircut, coloring = await bot.store.services()
    anna, boris = bot.customer(151, "Анна"), bot.customer(152, "Борис")
    await anna.ask("/start", "")
    await boris.ask("/start", "")
    t0 = bot.clock.now()  # 09:00 MSK on Tue 1 Dec

    async def booking(customer, service, start, name):
        return await bot.store.create_booking(
            customer_id=customer.id, service=service, starts_at=start, customer_name=name,
            phone="+79001112233",
        )  # fmt: skip

    first = await booking(anna, haircut, t0 + timedelta(hours=1), "Анна")
    second = await booking(boris, coloring, t0 + timedelta(hours=5), "Борис")
    tomorrow = await booking(anna, coloring, t0 + timedelta(days=1, hours=2), "Анна")
    await booking(boris, haircut, t0 + timedelta(days=40), "Борис")  # January: not in the CSV

    home = await owner.ask("/admin", "Записей сегодня: 2")
    today = await owner.press(home, "📅 Записи", "Записи · вторник, 1 декабря")
    assert "10:00–11:00 · Стрижка · Анна, +79001112233 — 🕒 записан" in today.plain_text
    assert "14:00–16:00 · Окрашивание · Борис" in today.plain_text
    assert flat(today)[:2] == ["10:00 · Анна", "14:00 · Борис"]

    card = await owner.press(today, "10:00 · Анна", f"Запись №{first.id}")
    done = await owner.press(card, "✅ Пришёл", "Статус: ✅ пришёл")
    assert flat(done) == ["↩️ Вернуть в «записан»", "« Записи"]
    card = await owner.press(today, "14:00 · Борис", f"Запись №{second.id}")
    await owner.press(card, "🚫 Не пришёл", "Статус: 🚫 не пришёл")
    statuses = await fetch(bot.tenant.dsn, "SELECT id, status FROM bookings ORDER BY id")
    assert [r["status"] for r in statuses] == ["done", "no_show", "confirmed", "confirmed"]

    next_day = await owner.press(today, "ср, 2 дек. »", "Записи · среда, 2 декабря")
    card = await owner.press(next_day, "11:00 · Анна", f"Запись №{tomorrow.id}")
    await owner.press(card, "✖️ Отменить с комментарием", "Напишите сообщение клиенту")
    seen = await anna.seen()
    cancelled = await owner.ask("Мастер заболел, перезвоним <сегодня>", "Запись отменена")
    assert "Клиент получил ваше сообщение" in cancelled.plain_text
    note = await anna.wait("отменена", after=seen)
    assert (
        f"Ваша запись №{tomorrow.id} (Окрашивание, ср, 2 дек., 11:00) отменена" in note.plain_text
    )
    assert "Мастер заболел, перезвоним <сегодня>" in note.plain_text
    row = (await fetch(bot.tenant.dsn, "SELECT * FROM bookings WHERE id = $1", tomorrow.id))[0]
    assert (row["status"], row["cancelled_by"]) == ("cancelled", "admin")
    assert row["cancel_note"] == "Мастер заболел, перезвоним <сегодня>"
    # The other admin hears about it; the one who cancelled does not get an echo.
    heard = await partner.wait("отменена администратором")
    assert f"Запись №{tomorrow.id}" in heard.plain_text and "Анна, +79001112233" in heard.plain_text
    assert not [
        m
        for m in await owner.client.messages(bot.token, ADMIN)
        if "администратором" in m.plain_text
    ]
    # The slot is free again for customers.
    await calm(bot)
    _days, slots = await customer_slots(bot.customer(153), "2", "Окрашивание · 4\u00a0000 ₽")
    assert "11:00" in slots

    # By date: typed, wrong then right.
    await owner.press(today, "📆 Другая дата", "Пришлите дату")
    await owner.ask("вчера", "это не дата")
    by_date = await owner.ask("2.12.2026", "Записи · среда, 2 декабря")
    assert "— ✖️ отменена" in by_date.plain_text
    empty = await owner.press(today, "« пн, 30 нояб.", "Записи · понедельник, 30 ноября")
    assert "На этот день записей нет" in empty.plain_text

    await calm(bot)
    before = await owner.seen()
    await owner.click(today, "📄 CSV за декабрь 2026")
    document = await owner.wait("Записи за декабрь 2026: 3", after=before)
    assert (
        document.document is not None and document.document["file_name"] == "bookings-2026-12.csv"
    )
    raw = await bot.client.download(bot.token, document.document["file_id"])
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so spreadsheets read UTF-8
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert table[0] == [
        "Номер", "Дата", "Начало", "Конец", "Услуга", "Клиент", "Телефон", "Статус",
        "Комментарий", "Telegram ID",
    ]  # fmt: skip
    assert table[1:] == [
        [str(first.id), "2026-12-01", "10:00", "11:00", "Стрижка", "Анна", "+79001112233",
         "пришёл", "", "151"],
        [str(second.id), "2026-12-01", "14:00", "16:00", "Окрашивание", "Борис", "+79001112233",
         "не пришёл", "", "152"],
        [str(tomorrow.id), "2026-12-02", "11:00", "13:00", "Окрашивание", "Анна", "+79001112233",
         "отменена", "Мастер заболел, перезвоним <сегодня>", "151"],
    ]  # fmt: skip


async def test_customers_and_stats(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    haircut, coloring = await bot.store.services()
    people = [bot.customer(160 + i, name) for i, name in enumerate(["Анна", "Борис", "Вера"])]
    for person in people:
        await person.ask("/start", "")
    await bot.client.send_message(bot.token, 163, "/start", first_name="Гоша", username="gosha")
    await bot.client.wait_for_message(bot.token, 163, contains="Добро пожаловать")
    t0 = bot.clock.now()
    # Anna and the owner came long ago; Boris, Vera and Gosha this week (Mon 30 Nov onwards).
    await fetch(
        bot.tenant.dsn,
        "UPDATE customers SET created_at = CASE WHEN telegram_id IN (160, $1)"
        " THEN $2::timestamptz ELSE $3::timestamptz END",
        ADMIN, t0 - timedelta(days=40), t0 - timedelta(hours=3),
    )  # fmt: skip
    plan = [
        (160, haircut, t0 + timedelta(hours=1), "done"),
        (161, haircut, t0 + timedelta(hours=2), "no_show"),
        (162, coloring, t0 + timedelta(hours=5), "done"),
        (160, haircut, t0 + timedelta(days=2, hours=1), "confirmed"),  # Thursday
        (161, haircut, t0 + timedelta(days=7, hours=1), "confirmed"),  # next week
        (162, haircut, t0 - timedelta(days=3), "done"),  # last week
    ]
    for customer_id, service, start, status in plan:
        b = await bot.store.create_booking(
            customer_id=customer_id, service=service, starts_at=start, customer_name="X",
            phone="+79990000000",
        )  # fmt: skip
        if status != "confirmed":
            await bot.store.set_booking_status(b.id, status)

    home = await owner.ask("/admin", PANEL)
    assert "Клиентов: 5" in home.plain_text
    customers = await owner.press(home, "👥 Клиенты", "Клиенты: 5")
    assert "(заблокировали бота: 0)" in customers.plain_text
    assert "Гоша · @gosha" in customers.plain_text and "Вера" in customers.plain_text
    assert "Анна · +79001234567" not in customers.plain_text  # no phone known yet

    stats = await owner.press(home, "📊 Статистика", "Статистика")
    lines = stats.plain_text.splitlines()
    assert "Записей сегодня: 3" in lines
    assert "Записей на этой неделе: 4" in lines
    assert "пн, 30 нояб.: 0" in lines and "вт, 1 дек.: 3" in lines and "чт, 3 дек.: 1" in lines
    assert "1. Стрижка — 5" in lines and "2. Окрашивание — 1" in lines
    assert "Неявки: 25% (1 из 4 прошедших визитов)" in lines
    assert "Новых клиентов за неделю: 3" in lines
    assert "Всего клиентов: 5" in lines


async def test_admins_add_and_remove(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    helper = bot.customer(7002, "Мария")
    await helper.ask("/start", "")
    refused = await helper.ask("/admin", "Лучше всего я понимаю кнопки меню")
    assert PANEL not in refused.plain_text

    admins = await open_settings(owner, "🔑 Администраторы", "Администраторы")
    assert f"{ADMIN} — владелец" in admins.plain_text
    await owner.press(admins, "➕ Добавить администратора", "Telegram ID")
    await owner.ask("@maria", "Telegram ID — это число")
    added = await owner.ask("7002", "7002 теперь администратор")
    assert "7002 — добавлен в панели" in added.plain_text
    assert flat(added) == ["✖️ Удалить 7002", "➕ Добавить администратора", "« Настройки"]
    rows = await fetch(bot.tenant.dsn, "SELECT telegram_id, added_by FROM admins")
    assert [(r["telegram_id"], r["added_by"]) for r in rows] == [(7002, ADMIN)]
    commands = await bot.client.commands(bot.token, scope={"type": "chat", "chat_id": 7002})
    assert [c["command"] for c in commands] == ["start", "admin"]

    # The new admin works in the panel and hears about new bookings.
    panel = await helper.ask("/admin", PANEL)
    own_list = await helper.press(panel, "⚙️ Настройки", "Что хотите изменить")
    own_list = await helper.press(own_list, "🔑 Администраторы", "Администраторы")
    assert "✖️ Удалить 7002" not in flat(own_list)  # nobody removes themselves by a slip

    # Removed, the old buttons stop working for them.
    removed = await owner.press(added, "✖️ Удалить 7002", "7002 больше не администратор")
    assert "7002 —" not in removed.plain_text
    assert await fetch(bot.tenant.dsn, "SELECT * FROM admins") == []
    before = await helper.seen()
    query = await helper.click(panel, "📅 Записи")
    answer = await bot.client.wait_for_callback_answer(bot.token, query)
    assert answer.text == "Эта кнопка устарела."
    assert "Записи ·" not in (await helper.wait("Выберите", after=before)).plain_text
    await helper.ask("/admin", "Лучше всего я понимаю кнопки меню")


async def test_input_states_cancel_and_non_text(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    services = await open_settings(owner, "💇 Услуги", "Услуги")
    await owner.press(services, "➕ Добавить услугу", "одним сообщением")
    await owner.ask("/cancel", "Отменено")
    # The next text is not taken as a service any more.
    await owner.ask("Маникюр; 1200; 45", "Лучше всего я понимаю кнопки меню")
    await owner.ask("/cancel", "Отменять нечего")
    assert len(await bot.store.services(include_hidden=True)) == 2
    # A sticker-like non-text answer gets a hint; /start leaves the input too.
    await owner.press(services, "➕ Добавить услугу", "одним сообщением")
    await bot.client.send_contact(bot.token, ADMIN, "+79990000000", first_name="Владелец")
    await owner.wait("Пришлите текст или /cancel")
    await owner.ask("/start", "Добро пожаловать")
    await owner.ask("Маникюр; 1200; 45", "Лучше всего я понимаю кнопки меню")
    assert len(await bot.store.services(include_hidden=True)) == 2


async def test_broadcast_throttled_blocked_and_retried(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    people = [bot.customer(301 + i, f"Клиент {i}") for i in range(6)]
    for person in people:
        await person.ask("/start", "")
    await bot.client.block(bot.token, 303)
    await bot.client.inject_fault(
        bot.token, "sendMessage", error_code=429,
        description="Too Many Requests: retry after 1", retry_after=1, chat_id=305,
    )  # fmt: skip

    home = await owner.ask("/admin", PANEL)
    customers = await owner.press(home, "👥 Клиенты", "Клиенты: 7")
    await owner.press(customers, "📣 Рассылка", "Пришлите сообщение для всех клиентов")
    preview = await owner.ask("Скидка <b>20%</b> в пятницу!", "Это сообщение получат клиенты (7)")
    before = await owner.seen()
    await owner.click(preview, "📣 Отправить (7)")
    progress = await owner.wait("Рассылка №1: обработано", after=before)
    final = await owner.wait("Рассылка №1 завершена", after=before)
    assert "Отправлено: 6\nЗаблокировали бота: 1\nОшибки: 0" in final.plain_text
    progress = next(
        m
        for m in await owner.client.messages(bot.token, ADMIN)
        if m.message_id == progress.message_id
    )
    assert progress.edits, "the progress message is updated while the broadcast runs"

    body = "Скидка <b>20%</b> в пятницу!"  # the admin's text exactly, not markup
    for chat in [ADMIN, *[p.id for p in people]]:
        got = [m for m in await bot.client.messages(bot.token, chat) if m.plain_text == body]
        assert len(got) == (0 if chat == 303 else 1), chat
    calls = await bot.client.calls(bot.token, "sendMessage")
    assert any(c.error_code == 429 and c.params.get("chat_id") in (305, "305") for c in calls)
    blocked = await fetch(
        bot.tenant.dsn, "SELECT telegram_id FROM customers WHERE blocked_at IS NOT NULL"
    )
    assert [r["telegram_id"] for r in blocked] == [303]
    status = await fetch(bot.tenant.dsn, "SELECT status FROM broadcasts")
    assert [r["status"] for r in status] == ["done"]
    # The confirm button is gone, and an old one cannot send it twice.
    assert (await owner.client.messages(bot.token, ADMIN))[before - 1].buttons() == []
    customers = await owner.ask("/admin", PANEL)
    listing = await owner.press(customers, "👥 Клиенты", "заблокировали бота: 1")
    assert "Клиент 2 · " in listing.plain_text and " ⛔" in listing.plain_text


async def interrupted_broadcast(bot_factory):
    """A slow broadcast to 9 customers, stopped after 2 got it, finished by a new process."""
    bot = await bot_factory(broadcast_rate=4)
    owner = await bot.admin()
    people = [bot.customer(401 + i, f"Клиент {i}") for i in range(8)]
    for person in people:
        await person.ask("/start", "")
    home = await owner.ask("/admin", PANEL)
    customers = await owner.press(home, "👥 Клиенты", "Клиенты: 9")
    await owner.press(customers, "📣 Рассылка", "Пришлите сообщение")
    preview = await owner.ask("Мы переехали!", "получат клиенты (9)")
    await owner.click(preview, "📣 Отправить (9)")

    async def delivered():
        counts: Counter[int] = Counter()
        for chat in [ADMIN, *[p.id for p in people]]:
            got = await bot.client.messages(bot.token, chat)
            counts[chat] = sum(m.plain_text == "Мы переехали!" for m in got)
        return counts

    for _ in range(100):
        if sum((await delivered()).values()) >= 2:
            break
        await asyncio.sleep(0.05)
    await bot.stop()
    before = await delivered()
    assert 2 <= sum(before.values()) < 9, "stopped mid-broadcast"

    again = await bot_factory(
        tenant=bot.tenant, token=bot.token, seed=False, broadcast_rate=50, clock=bot.clock
    )
    final = await owner.wait("Рассылка №1 завершена", timeout=15)
    rows = await fetch(again.tenant.dsn, "SELECT customer_id, status FROM broadcast_recipients")
    statuses = {r["customer_id"]: r["status"] for r in rows}
    return before, await delivered(), statuses, final, again


async def test_broadcast_survives_a_restart_without_duplicates(bot_factory):
    before, after, statuses, final, again = await interrupted_broadcast(bot_factory)
    assert max(after.values()) == 1, f"someone got it twice: {after}"
    assert len(statuses) == 9 and set(statuses.values()) <= {"sent", "failed"}
    assert all(statuses[chat] == "sent" for chat, n in before.items() if n)
    assert all(after[chat] == 1 for chat, status in statuses.items() if status == "sent")
    sent = sum(s == "sent" for s in statuses.values())
    assert f"Отправлено: {sent}" in final.plain_text
    assert f"Ошибки: {9 - sent}" in final.plain_text
    status = await fetch(again.tenant.dsn, "SELECT status FROM broadcasts")
    assert [r["status"] for r in status] == ["done"]


async def test_broadcast_after_a_restart_reaches_everyone_not_yet_reached(bot_factory):
    _before, after, _statuses, _final, _again = await interrupted_broadcast(bot_factory)
    missed = [chat for chat, n in after.items() if n == 0]
    assert len(missed) <= 1, f"never got it: {missed}"  # at most the one in flight at the stop


def every_admin_callback(
    service_id: int, booking_id: int, intruder: int, lead_id: int = 1
) -> list[str]:
    """One payload of every kind and action the panel's buttons can carry."""
    packed: list[CallbackData] = [AdminCb(screen=s) for s in Screen]
    packed += [ServiceAdminCb(action=a, service_id=service_id) for a in ServiceAction]
    packed += [ScheduleCb(action=a, weekday=2, day=20261231) for a in ScheduleAction]
    packed += [RuleCb(key=k) for k in RuleKey]
    packed += [ProfileCb(key=k) for k in ProfileKey]
    packed += [LocaleCb(locale=loc) for loc in Locale]
    packed += [BookingAdminCb(action=a, day=20261201, booking_id=booking_id) for a in BookingAction]
    packed += [CustomersCb(action=a, page=0) for a in CustomersAction]
    packed += [AdminsCb(action=a, user_id=intruder) for a in AdminsAction]
    packed += [AssistantCb(action=a) for a in AssistantAction]
    packed += [LeadCb(action=a, lead_id=lead_id, status=LeadStatus.won) for a in LeadAction]
    packed += [HandoffCb(action=a, customer_id=intruder) for a in HandoffAction]
    return [p.pack() for p in packed]


async def test_customers_never_reach_the_admin_panel(bot_factory):
    bot = await bot_factory()
    await bot.admin()
    haircut = (await bot.store.services())[0]
    intruders = [bot.customer(501 + i, "Ева") for i in range(6)]
    for intruder in intruders:
        await intruder.ask("/start", "")
    booking = await bot.store.create_booking(
        customer_id=501, service=haircut, starts_at=bot.clock.now() + timedelta(hours=2),
        customer_name="Ева", phone="+79990000000",
    )  # fmt: skip
    lead = await bot.store.assistant.save_lead(
        customer_id=501, name="Ева", phone="+79990000000", interest="", comment="",
        now=bot.clock.now(),
    )  # fmt: skip
    await bot.store.assistant.start_handoff(501, "")
    tables = [
        "business", "services", "working_hours", "breaks", "days_off", "admins", "bookings",
        "broadcasts", "customers", "assistant_settings", "leads", "ai_handoffs",
    ]  # fmt: skip
    snapshot = {t: await fetch(bot.tenant.dsn, f"SELECT * FROM {t} ORDER BY 1") for t in tables}

    payloads = every_admin_callback(haircut.id, booking.id, 501, lead.lead.id)
    assert len(set(payloads)) == len(payloads) > 50
    # Spread over six customers to stay under the per-user flood limit.
    for n, intruder in enumerate(intruders):
        mine = payloads[n::6]
        kb = InlineKeyboardBuilder()
        for i, payload in enumerate(mine):
            kb.button(text=f"b{i}", callback_data=payload)
        kb.adjust(1)
        bait = await bot.app.bot.send_message(intruder.id, "…", reply_markup=kb.as_markup())
        for payload in mine:
            before = await intruder.seen()
            query = await bot.client.click(
                bot.token, intruder.id, bait.message_id, callback_data=payload
            )
            answer = await bot.client.wait_for_callback_answer(bot.token, query)
            assert answer.text == "Эта кнопка устарела.", payload
            reply = await intruder.wait("", after=before)
            assert reply.plain_text == "Выберите, что сделать дальше:", payload
        for command in ("/admin", "/cancel", "Стрижка; 1; 5"):
            await intruder.ask(command, "Лучше всего я понимаю кнопки меню")

    for intruder in intruders:
        texts = [m.plain_text for m in await bot.client.messages(bot.token, intruder.id)]
        assert not any(PANEL in t or "Настройки" in t or "Рассылка" in t for t in texts)
    for t in tables:
        assert await fetch(bot.tenant.dsn, f"SELECT * FROM {t} ORDER BY 1") == snapshot[t], t
    assert not await bot.app.ctx.is_admin(501)


def test_what_admins_type_is_read_or_refused_with_a_reason():
    """The readers behind the prompts, without Telegram (messages in Russian, the default)."""
    i18n = build_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        assert parse.intervals("9-13, 14:00–24:00") == [(time(9), time(13)), (time(14), time(0))]
        assert parse.intervals(" - ") == []
        for bad, reason in [
            ("10:00-09:00", "позже начала"),
            ("10-12, 11-13", "пересекаются"),
            ("25:00-26:00", "это не время"),
            ("10:00", "это не интервал"),
        ]:
            with pytest.raises(parse.InputError, match=reason):
                parse.intervals(bad)
        with pytest.raises(parse.InputError, match="это не время"):
            parse.intervals("13:00-24:00", until_midnight=False)  # a break ends within the day
        assert parse.price("1 500 ₽") == Decimal("1500.00") == parse.price("1500р")
        assert parse.price("990,5") == Decimal("990.50")
        for bad in ("-5", "1e3x", "NaN", "1.005"):
            with pytest.raises(parse.InputError):
                parse.price(bad)
        today = date(2026, 12, 1)
        assert parse.day("31.12", today) == date(2026, 12, 31)
        assert parse.day("15.01", today) == date(2027, 1, 15)  # the next such day
        assert parse.day("2026-11-30", today) == date(2026, 11, 30)  # looking back is fine
        with pytest.raises(parse.InputError, match="уже прошла"):
            parse.future_day("30.11.2026", today)
        with pytest.raises(parse.InputError, match="это не дата"):
            parse.day("31.02.2027", today)
        assert parse.offsets("120, 1440 120") == (1440, 120)
        assert parse.timezone(" Europe/Samara ") == "Europe/Samara"
        for bad in ("Europe/Nowhere", "/etc/passwd", ""):
            with pytest.raises(parse.InputError, match="часовой пояс"):
                parse.timezone(bad)
        assert parse.service_line("Стрижка; 1500; 60") == ("Стрижка", Decimal("1500.00"), 60, "")
        with pytest.raises(parse.InputError, match="не больше 100"):
            parse.service_line("Я" * 101 + "; 1; 60")
