"""Group classes: customers book seats in sessions of a weekly timetable or one-off sessions;
PostgreSQL never sells more seats than a session has — through the emulator, as people do."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from decimal import Decimal

from tests.client.conftest import ADMIN, T0, fetch

WED_18 = T0 + timedelta(days=1, hours=9)  # Wednesday 2 December, 18:00 in Moscow
SEATS = 2


async def yoga(bot, capacity: int = SEATS):
    service = await bot.store.add_service("Йога", Decimal("800"), 60, "Хатха")
    await bot.store.update_service(service.id, "capacity", capacity)
    await bot.store.add_timetable_entry(service.id, 2, time(18))  # Wednesdays 18:00
    return service


async def to_summary(customer, session: str, phone: str = "+7 900 123-45-67"):
    menu = await customer.ask("/start", "Добро пожаловать")
    services = await customer.press(menu, "📅 Записаться", "Выберите услугу")
    classes = await customer.press(services, "Йога · 800 ₽", "Выберите занятие")
    await customer.press(classes, session, "Поделитесь номером телефона")
    return await customer.ask(phone, "Проверьте запись")


async def test_capacity_plus_one_simultaneous_confirmations_get_exactly_capacity_seats(bot_factory):
    bot = await bot_factory()
    service = await yoga(bot)
    people = [bot.customer(301 + i, name) for i, name in enumerate(("Анна", "Борис", "Вера"))]
    menu = await people[0].ask("/start", "Добро пожаловать")
    services = await people[0].press(menu, "📅 Записаться", "Выберите услугу")
    classes = await people[0].press(services, "Йога · 800 ₽", "Выберите занятие")
    assert classes.buttons()[:2] == [
        ["ср, 2 дек., 18:00 · мест: 2"],
        ["ср, 9 дек., 18:00 · мест: 2"],
    ]

    summaries = await asyncio.gather(
        *(to_summary(p, "ср, 2 дек., 18:00 · мест: 2") for p in people)
    )
    assert all("ср, 2 дек., 18:00" in s.plain_text for s in summaries)
    before = [await p.seen() for p in people]
    await asyncio.gather(
        *(p.click(s, "✅ Подтвердить") for p, s in zip(people, summaries, strict=True))
    )
    results = [await p.wait("", after=n) for p, n in zip(people, before, strict=True)]
    booked = [r for r in results if "Вы записаны" in r.plain_text]
    assert len(booked) == SEATS
    [refused] = [r for r in results if "Вы записаны" not in r.plain_text]
    assert "последнее место только что заняли" in refused.plain_text
    offered = [b for row in refused.buttons() for b in row]
    # Fresh choices: the full one now leads to its waitlist.
    assert offered[:2] == [
        "ср, 2 дек., 18:00 · мест нет, лист ожидания",
        "ср, 9 дек., 18:00 · мест: 2",
    ]

    rows = await fetch(
        bot.tenant.dsn,
        "SELECT b.customer_id, s.booked, s.capacity, b.starts_at FROM bookings b"
        " JOIN class_sessions s ON s.id = b.session_id WHERE b.status = 'confirmed'",
    )
    assert len(rows) == SEATS and {(r["booked"], r["capacity"]) for r in rows} == {(SEATS, SEATS)}
    assert {r["starts_at"] for r in rows} == {WED_18}
    assert (await fetch(bot.tenant.dsn, "SELECT count(*) AS n FROM reminders"))[0]["n"] == 2 * SEATS
    sessions = await bot.store.sessions(service.id, WED_18, WED_18 + timedelta(minutes=1))
    assert not await bot.store.set_session_capacity(sessions[0].id, 1)  # below the booked seats

    # The business cancels the session: each booked customer is told once, seats and
    # reminders are gone; a second tap on the old button tells nobody again.
    owner = await bot.admin()
    home = await owner.ask("/admin", "Панель управления")
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    card = await owner.press(
        await owner.press(settings, "💇 Услуги", "Услуги"), "Йога", "Групповое занятие"
    )
    timetable = await owner.press(card, "🗓 Расписание занятий", "Ближайшие занятия")
    assert "ср, 2 дек., 18:00 — 2/2" in timetable.plain_text
    ask = await owner.press(timetable, "🚫 Отменить ср, 2 дек., 18:00", "Записавшимся клиентам (2)")
    done = await owner.press(ask, "🚫 Да, отменить", "Занятие отменено")
    assert "Клиентов уведомлено: 2 из 2" in done.plain_text
    await owner.press(ask, "🚫 Да, отменить", "уже отменено")
    winners = [p for p, r in zip(people, results, strict=True) if "Вы записаны" in r.plain_text]
    for person in winners:
        await person.wait("отменено: ваша запись", timeout=10)
        told = [
            m
            for m in await person.client.messages(bot.token, person.id)
            if "отменено:" in m.plain_text
        ]
        assert len(told) == 1
    rows = await fetch(bot.tenant.dsn, "SELECT status, cancelled_by FROM bookings")
    assert {(r["status"], r["cancelled_by"]) for r in rows} == {("cancelled", "admin")}
    assert await fetch(bot.tenant.dsn, "SELECT 1 FROM reminders") == []
    assert "ср, 2 дек., 18:00" not in done.plain_text  # gone from the next sessions


async def test_a_cancelled_seat_goes_back_and_one_customer_gets_one_seat(bot_factory):
    bot = await bot_factory()
    await yoga(bot, capacity=1)
    anna, boris = bot.customer(311, "Анна"), bot.customer(312, "Борис")
    await anna.press(
        await to_summary(anna, "ср, 2 дек., 18:00 · мест: 1"), "✅ Подтвердить", "Вы записаны"
    )
    # Full now: Борис sees 2 Dec only as a waitlist.
    menu = await boris.ask("/start", "Добро пожаловать")
    services = await boris.press(menu, "📅 Записаться", "Выберите услугу")
    classes = await boris.press(services, "Йога · 800 ₽", "Выберите занятие")
    assert classes.buttons()[:2] == [
        ["ср, 2 дек., 18:00 · мест нет, лист ожидания"], ["ср, 9 дек., 18:00 · мест: 1"],
    ]  # fmt: skip

    # Анна books 9 Dec too.
    await anna.press(
        await to_summary(anna, "ср, 9 дек., 18:00 · мест: 1"), "✅ Подтвердить", "Вы записаны"
    )
    # Анна cancels 2 Dec: the seat is back and Борис takes it.
    menu = await anna.ask("/start", "Добро пожаловать")
    mine = await anna.press(menu, "🗂 Мои записи", "Ваши записи")
    first_id = min(
        r["id"]
        for r in await fetch(bot.tenant.dsn, "SELECT id FROM bookings WHERE customer_id = 311")
    )
    await anna.press(mine, f"✖️ Отменить №{first_id}", "Ваши записи")
    booked = await fetch(bot.tenant.dsn, "SELECT booked FROM class_sessions ORDER BY starts_at")
    assert [r["booked"] for r in booked][:2] == [0, 1]
    done = await boris.press(
        await to_summary(boris, "ср, 2 дек., 18:00 · мест: 1"), "✅ Подтвердить", "Вы записаны"
    )
    assert "ср, 2 дек., 18:00" in done.plain_text


async def test_one_seat_per_customer_and_a_cancelled_one_off_session(bot_factory):
    bot = await bot_factory()
    service = await yoga(bot)
    thu_19 = WED_18 + timedelta(days=1, hours=1)
    await bot.store.add_session(service.id, thu_19, thu_19 + timedelta(hours=1), 5)
    anna, boris = bot.customer(321, "Анна"), bot.customer(322, "Борис")
    done = await anna.press(
        await to_summary(anna, "чт, 3 дек., 19:00 · мест: 5"), "✅ Подтвердить", "Вы записаны"
    )
    assert "чт, 3 дек., 19:00" in done.plain_text
    again = await anna.press(
        await to_summary(anna, "чт, 3 дек., 19:00 · мест: 4"), "✅ Подтвердить", "уже есть место"
    )
    assert "чт, 3 дек., 19:00 · мест: 4" in [b for row in again.buttons() for b in row]

    # The business cancels the session while Борис is at the summary.
    summary = await to_summary(boris, "чт, 3 дек., 19:00 · мест: 4")
    await fetch(bot.tenant.dsn, "UPDATE class_sessions SET cancelled_at = now() WHERE capacity = 5")
    gone = await boris.press(summary, "✅ Подтвердить", "занятие больше недоступно")
    offered = [b for row in gone.buttons() for b in row]
    assert "ср, 2 дек., 18:00 · мест: 2" in offered
    assert not any(b.startswith("чт, 3 дек.") for b in offered)
    rows = await fetch(
        bot.tenant.dsn, "SELECT customer_id FROM bookings WHERE status = 'confirmed'"
    )
    assert [r["customer_id"] for r in rows] == [321]


async def test_the_owner_makes_a_class_with_a_weekly_timetable_and_a_one_off_session(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    home = await owner.ask("/admin", "Панель управления")
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    services = await owner.press(settings, "💇 Услуги", "Услуги")
    await owner.press(services, "➕ Добавить услугу", "одним сообщением")
    card = await owner.ask("Йога; 800; 60; Хатха", "Услуга добавлена")
    await owner.press(card, "👥 Групповое занятие", "число мест")
    await owner.ask("много", "целое число от 1 до 1000")
    timetable = await owner.ask("12", "Теперь это групповое занятие")
    await owner.press(timetable, "➕ Каждую неделю", "день недели и время")
    await owner.ask("ср", "две части")
    await owner.ask("среду 18:00", "не день недели")
    timetable = await owner.ask("Ср 18:00", "Добавлено")
    assert "среда 18:00" in timetable.plain_text
    assert "ср, 2 дек., 18:00 — 0/12" in timetable.plain_text
    await owner.press(timetable, "➕ Разовое занятие", "дату и время")
    await owner.ask("01.12.2026 08:00", "уже прошло")
    timetable = await owner.ask("03.12.2026 19:00", "Добавлено")
    assert "чт, 3 дек., 19:00 — 0/12" in timetable.plain_text

    await calm(bot)
    anna = bot.customer(331, "Анна")
    menu = await anna.ask("/start", "Добро пожаловать")
    choice = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    classes = await anna.press(choice, "Йога · 800 ₽", "Выберите занятие")
    assert flat(classes)[:3] == [
        "ср, 2 дек., 18:00 · мест: 12", "чт, 3 дек., 19:00 · мест: 12",
        "ср, 9 дек., 18:00 · мест: 12",
    ]  # fmt: skip

    # The weekly entry goes: its unbooked sessions with it, the one-off stays.
    timetable = await owner.press(timetable, "✖️ ср 18:00", "Удалено")
    assert "ср, 2 дек." not in timetable.plain_text and "чт, 3 дек., 19:00" in timetable.plain_text
    classes = await anna.press(choice, "Йога · 800 ₽", "Выберите занятие")
    assert flat(classes) == ["чт, 3 дек., 19:00 · мест: 12", "« Услуги"]
    rows = await fetch(bot.tenant.dsn, "SELECT capacity FROM services WHERE name = 'Йога'")
    assert rows[0]["capacity"] == 12


def flat(message):
    return [b for row in message.buttons() for b in row]


async def calm(bot, user_id=ADMIN):
    """Reset the flood counter: these tests click faster than the 20-per-10-s limit allows."""
    await bot.app.redis.delete(f"{bot.settings.redis_key_prefix}throttle:{user_id}")


async def test_a_freed_seat_goes_to_the_first_in_line_for_a_while_then_to_the_next(
    bot_factory, monkeypatch
):
    from client_bot.booking import WAITLIST_HOLD
    from client_bot.handlers import waitlist

    monkeypatch.setattr(waitlist, "POLL_SECONDS", 0.2)
    bot = await bot_factory()
    await yoga(bot, capacity=1)
    anna, boris, vera = (bot.customer(341 + i, n) for i, n in enumerate(("Анна", "Борис", "Вера")))
    await anna.press(
        await to_summary(anna, "ср, 2 дек., 18:00 · мест: 1"), "✅ Подтвердить", "Вы записаны"
    )
    full = "ср, 2 дек., 18:00 · мест нет, лист ожидания"
    for customer, place in ((boris, "1"), (vera, "2")):  # Борис first, then Вера
        menu = await customer.ask("/start", "Добро пожаловать")
        services = await customer.press(menu, "📅 Записаться", "Выберите услугу")
        classes = await customer.press(services, "Йога · 800 ₽", "Выберите занятие")
        offer = await customer.press(classes, full, "Все места на «Йога»")
        await customer.press(offer, "📝 Встать в лист ожидания", "Поделитесь номером")
        joined = await customer.ask("+7 900 000-00-0" + place, "в листе ожидания")
        assert f": {place}." in joined.plain_text
    # A full session sells nothing: not even a seat nobody holds yet.
    rows = await fetch(bot.tenant.dsn, "SELECT booked, held FROM class_sessions WHERE booked > 0")
    assert [(r["booked"], r["held"]) for r in rows] == [(1, 0)]

    # Анна cancels: the seat is held for Борис (not for a newcomer) and he is told.
    menu = await anna.ask("/start", "Добро пожаловать")
    mine = await anna.press(menu, "🗂 Мои записи", "Ваши записи")
    await anna.press(mine, next(b for b in flat(mine) if b.startswith("✖️")), "нет предстоящих")
    to_boris = await boris.wait("Освободилось место", timeout=15)
    assert "закреплено за вами до вт, 1 дек., 09:30" in to_boris.plain_text
    newcomer = bot.customer(349, "Глеб")
    menu = await newcomer.ask("/start", "Добро пожаловать")
    services = await newcomer.press(menu, "📅 Записаться", "Выберите услугу")
    classes = await newcomer.press(services, "Йога · 800 ₽", "Выберите занятие")
    assert flat(classes)[0] == full

    # Борис does not answer in time: Вера is offered it; Борис's late tap gets a clear answer.
    bot.clock.advance(WAITLIST_HOLD)
    to_vera = await vera.wait("Освободилось место", timeout=15)
    await boris.press(to_boris, "✅ Занять место", "предложение уже не действует")
    done = await vera.press(to_vera, "✅ Занять место", "Вы записаны")
    assert "ср, 2 дек., 18:00" in done.plain_text
    rows = await fetch(
        bot.tenant.dsn,
        "SELECT b.customer_id, b.phone, b.source, s.booked, s.held FROM bookings b"
        " JOIN class_sessions s ON s.id = b.session_id WHERE b.status = 'confirmed'",
    )
    assert [tuple(r.values()) for r in rows] == [(343, "+79000000002", "waitlist", 1, 0)]
    statuses = await fetch(
        bot.tenant.dsn, "SELECT customer_id, status FROM class_waitlist ORDER BY id"
    )
    assert [tuple(r.values()) for r in statuses] == [(342, "expired"), (343, "booked")]
