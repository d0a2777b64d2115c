"""Staff: customers pick a staff member or "any available"; PostgreSQL refuses one staff
member's overlapping bookings, never two staff members' — through the emulator, as people do."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from decimal import Decimal

import pytest

from client_bot.store import SlotTakenError
from database.migrator import load_migrations, migrate_tenant
from database.redis_tenants import create_tenant_redis_user
from tests.client.conftest import ADMIN, T0, TenantCreds, fetch

WED_10 = T0 + timedelta(days=1, hours=1)  # Wednesday 2 December, 10:00 in Moscow
PRICE = "1\u00a0500 ₽"


async def two_masters(bot):
    """The default staff member becomes Мария; Ольга joins, same hours, every service."""
    [default] = await bot.store.staff()
    await bot.store.update_staff(default.id, "name", "Мария")
    olga = await bot.store.add_staff("Ольга", "Колорист")
    return default, olga


async def to_summary(customer, staff, *, time_="10:00", day="2", phone="+7 900 123-45-67"):
    menu = await customer.ask("/start", "Добро пожаловать")
    services = await customer.press(menu, "📅 Записаться", "Выберите услугу")
    masters = await customer.press(services, f"Стрижка · {PRICE}", "Выберите специалиста")
    calendar = await customer.press(masters, staff, "Выберите день")
    slots = await customer.press(calendar, day, "Выберите время")
    await customer.press(slots, time_, "Поделитесь номером телефона")
    return await customer.ask(phone, "Проверьте запись")


async def test_two_staff_members_at_one_time_are_fine_one_twice_is_refused(bot_factory):
    bot = await bot_factory()
    maria, olga = await two_masters(bot)
    anna, boris = bot.customer(201, "Анна"), bot.customer(202, "Борис")

    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    masters = await anna.press(services, f"Стрижка · {PRICE}", "Выберите специалиста")
    assert masters.buttons() == [
        [f"Мария · {PRICE}"], [f"Ольга · {PRICE}"], ["Любой свободный"], ["« Услуги"],
    ]  # fmt: skip
    summary = await to_summary(anna, f"Мария · {PRICE}")
    assert "Специалист: Мария" in summary.plain_text
    done = await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    assert "специалист: Мария" in done.plain_text and "ср, 2 дек., 10:00" in done.plain_text

    # Мария's 10:00 is gone from her times, Ольга's is still there and Борис takes it.
    calendar = await boris.press(
        await boris.press(
            await boris.press(
                await boris.ask("/start", "Добро пожаловать"), "📅 Записаться", "Выберите услугу"
            ),
            f"Стрижка · {PRICE}",
            "Выберите специалиста",
        ),
        f"Мария · {PRICE}",
        "Выберите день",
    )
    marias = await boris.press(calendar, "2", "Выберите время")
    assert "10:00" not in [b for row in marias.buttons() for b in row]
    summary = await to_summary(boris, f"Ольга · {PRICE}")
    done = await boris.press(summary, "✅ Подтвердить", "Вы записаны")
    assert "специалист: Ольга" in done.plain_text

    rows = await fetch(
        bot.tenant.dsn, "SELECT customer_id, staff_id, starts_at FROM bookings ORDER BY id"
    )
    assert [(r["customer_id"], r["staff_id"], r["starts_at"]) for r in rows] == [
        (201, maria.id, WED_10), (202, olga.id, WED_10),
    ]  # fmt: skip
    # The database itself refuses Мария twice at an overlapping time (10:30–11:30).
    haircut = (await bot.store.services())[0]
    with pytest.raises(SlotTakenError):
        await bot.store.create_booking(
            customer_id=201, service=haircut, starts_at=WED_10 + timedelta(minutes=30),
            customer_name="X", phone="+70000000000", staff_id=maria.id,
        )  # fmt: skip
    assert len(await fetch(bot.tenant.dsn, "SELECT 1 FROM bookings")) == 2
    # The admin's day shows who works with whom.
    owner = await bot.admin()
    home = await owner.ask("/admin", "Панель управления")
    bot.clock.advance(timedelta(days=1))  # the panel opens on today: make it Wednesday
    day = await owner.press(home, "📅 Записи", "Записи")
    assert "10:00–11:00 · Стрижка · Мария · Анна" in day.plain_text
    assert "10:00–11:00 · Стрижка · Ольга · Борис" in day.plain_text


async def test_racing_for_the_last_free_staff_member_one_booking_one_fresh_choice(bot_factory):
    bot = await bot_factory()
    maria, olga = await two_masters(bot)
    haircut = (await bot.store.services())[0]
    await bot.store.touch_customer(299, "Вера", None, None)
    at_15 = WED_10 + timedelta(hours=5)
    await bot.store.create_booking(
        customer_id=299, service=haircut, starts_at=at_15, customer_name="Вера",
        phone="+70000000000", staff_id=olga.id,
    )  # fmt: skip
    anna, boris = bot.customer(203, "Анна"), bot.customer(204, "Борис")
    summaries = await asyncio.gather(
        to_summary(anna, "Любой свободный", time_="15:00"),
        to_summary(boris, "Любой свободный", time_="15:00"),
    )
    assert all("Специалист: Любой свободный" in s.plain_text for s in summaries)
    before = [await anna.seen(), await boris.seen()]
    await asyncio.gather(
        anna.click(summaries[0], "✅ Подтвердить"), boris.click(summaries[1], "✅ Подтвердить")
    )
    results = [
        await customer.wait("", after=seen)
        for customer, seen in zip((anna, boris), before, strict=True)
    ]
    winners = [r for r in results if "Вы записаны" in r.plain_text]
    assert len(winners) == 1 and "специалист: Мария" in winners[0].plain_text
    loser = next(r for r in results if "Вы записаны" not in r.plain_text)
    assert "только что заняли" in loser.plain_text
    times = [b for row in loser.buttons() for b in row]
    assert "15:00" not in times and "16:00" in times
    rows = await fetch(
        bot.tenant.dsn, "SELECT staff_id FROM bookings WHERE starts_at = $1 ORDER BY id", at_15
    )
    assert [r["staff_id"] for r in rows] == [olga.id, maria.id]


async def test_any_available_goes_to_the_least_loaded_and_a_removed_one_gets_a_fresh_choice(
    bot_factory,
):
    bot = await bot_factory()
    maria, olga = await two_masters(bot)
    haircut = (await bot.store.services())[0]
    await bot.store.touch_customer(298, "Вера", None, None)
    for hours in (0, 1):  # Мария has two bookings on Wednesday, Ольга none
        await bot.store.create_booking(
            customer_id=298, service=haircut, starts_at=WED_10 + timedelta(hours=hours),
            customer_name="Вера", phone="+70000000000", staff_id=maria.id,
        )  # fmt: skip
    anna = bot.customer(205, "Анна")
    done = await anna.press(
        await to_summary(anna, "Любой свободный", time_="16:00"), "✅ Подтвердить", "Вы записаны"
    )
    assert "специалист: Ольга" in done.plain_text

    # Ольга leaves while Борис looks at her calendar: his old button gets a fresh choice.
    boris = bot.customer(206, "Борис")
    menu = await boris.ask("/start", "Добро пожаловать")
    services = await boris.press(menu, "📅 Записаться", "Выберите услугу")
    masters = await boris.press(services, f"Стрижка · {PRICE}", "Выберите специалиста")
    calendar = await boris.press(masters, f"Ольга · {PRICE}", "Выберите день")
    await bot.store.update_staff(olga.id, "active", False)
    fresh = await boris.press(calendar, "3", "больше не выполняет эту услугу")
    assert "Выберите день" in fresh.plain_text  # one left: straight to the calendar
    assert await fetch(bot.tenant.dsn, "SELECT 1 FROM bookings WHERE customer_id = 206") == []


async def test_a_business_from_before_staff_still_books_as_before(
    bot_factory, make_tenant, redis_admin, redis_url, pg_dsn
):
    import asyncpg

    db = await make_tenant(migrate=False)
    old = [m for m in load_migrations("tenant") if m.version <= 6]
    admin = await asyncpg.connect(pg_dsn)
    try:
        await migrate_tenant(admin, db.tenant_id, migrations=old)
    finally:
        await admin.close()
    # A populated business of the old schema: hours, a service, a customer, a booking.
    conn = await asyncpg.connect(db.dsn)
    try:
        await conn.execute("UPDATE business SET name = 'Салон', welcome_text = 'Добро пожаловать'")
        await conn.executemany(
            "INSERT INTO working_hours (weekday, opens, closes) VALUES ($1, $2, $3)",
            [(wd, time(10), time(19)) for wd in range(6)],
        )
        service_id = await conn.fetchval(
            "INSERT INTO services (name, price, duration_min) VALUES ('Стрижка', 1500, 60)"
            " RETURNING id"
        )
        await conn.execute("INSERT INTO customers (telegram_id, first_name) VALUES (290, 'Вера')")
        old_id = await conn.fetchval(
            "INSERT INTO bookings (customer_id, service_id, starts_at, ends_at, phone)"
            " VALUES (290, $1, $2, $3, '+70000000000') RETURNING id",
            service_id,
            WED_10,
            WED_10 + timedelta(hours=1),
        )
    finally:
        await conn.close()
    admin = await asyncpg.connect(pg_dsn)
    try:
        report = await migrate_tenant(admin, db.tenant_id)
    finally:
        await admin.close()
    assert [label.split("_")[0] for label in report.applied][:2] == ["0007", "0008"]
    staff = await fetch(db.dsn, "SELECT id, name FROM staff")
    assert [r["name"] for r in staff] == ["Специалист"]
    held = await fetch(db.dsn, "SELECT staff_id FROM bookings WHERE id = $1", old_id)
    assert [r["staff_id"] for r in held] == [staff[0]["id"]]
    # A business set up before categories is never seeded from one (migration 0011).
    assert [r["category"] for r in await fetch(db.dsn, "SELECT category FROM business")] == [""]

    redis_user = await create_tenant_redis_user(redis_admin, db.tenant_id, server_url=redis_url)
    bot = await bot_factory(tenant=TenantCreds(db.tenant_id, db.dsn, redis_user.url), seed=False)
    anna = bot.customer(207, "Анна")
    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    calendar = await anna.press(services, f"Стрижка · {PRICE}", "Выберите день")  # no staff step
    slots = await anna.press(calendar, "2", "Выберите время")
    times = [b for row in slots.buttons() for b in row]
    assert "10:00" not in times and "11:00" in times  # the old booking still holds 10:00
    await anna.press(slots, "11:00", "Поделитесь номером")
    summary = await anna.ask("+7 900 123-45-67", "Проверьте запись")
    assert "Специалист" not in summary.plain_text
    done = await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    assert "специалист" not in done.plain_text
    rows = await fetch(db.dsn, "SELECT customer_id, staff_id FROM bookings ORDER BY id")
    assert [(r["customer_id"], r["staff_id"]) for r in rows] == [
        (290, staff[0]["id"]), (207, staff[0]["id"]),
    ]  # fmt: skip


def flat(message):
    return [b for row in message.buttons() for b in row]


async def calm(bot, user_id=ADMIN):
    """Reset the flood counter: these tests click faster than the 20-per-10-s limit allows."""
    await bot.app.redis.delete(f"{bot.settings.redis_key_prefix}throttle:{user_id}")


async def test_the_owner_adds_a_staff_member_with_own_hours_services_and_price(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    home = await owner.ask("/admin", "Панель управления")
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    staff = await owner.press(settings, "👤 Специалисты", "Специалисты")
    assert "1. Специалист — график салона · все услуги" in staff.plain_text
    await owner.press(staff, "➕ Добавить специалиста", "одним сообщением")
    await owner.ask(";", "Пустой текст")
    card = await owner.ask("Ольга; колорист", "Специалист добавлен")
    assert "колорист" in card.plain_text

    week = await owner.press(card, "🕒 График", "выберите день недели")
    await owner.press(week, "ср", "через косую черту")
    await owner.ask("15:00-12:00", "позже начала")
    card = await owner.ask("15:00-19:00 / 17:00-17:30", "Сохранено")
    assert "ср: 15:00–19:00 (перерывы: 17:00–17:30)" in card.plain_text
    assert "пн: 10:00–19:00" in card.plain_text  # copied from the business's week
    assert "вс: выходной" in card.plain_text

    services = await owner.press(card, "💇 Услуги", "услуги, которые он выполняет")
    assert flat(services)[:4] == [
        "✅ Стрижка",
        "💰 Цена, время",
        "✅ Окрашивание",
        "💰 Цена, время",
    ]
    services = await owner.press(services, "✅ Окрашивание", "Сохранено")
    assert flat(services)[2] == "▫️ Окрашивание"
    await owner.press(services, "💰 Цена, время", "цену и минуты")  # the first: Стрижка
    await owner.ask("дорого; 90", "Цена — это число")
    await owner.ask("1800; 90", "Сохранено")
    rows = await fetch(
        bot.tenant.dsn,
        "SELECT s.name, ss.price, ss.duration_min FROM staff_services ss"
        " JOIN services s ON s.id = ss.service_id JOIN staff st ON st.id = ss.staff_id"
        " WHERE st.name = 'Ольга'",
    )
    assert [(r["name"], r["price"], r["duration_min"]) for r in rows] == [("Стрижка", 1800, 90)]

    # The customer sees Ольга at her price, on her hours, for her duration (90 min, break).
    anna = bot.customer(208, "Анна")
    menu = await anna.ask("/start", "Добро пожаловать")
    choice = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    masters = await anna.press(choice, f"Стрижка · {PRICE}", "Выберите специалиста")
    assert flat(masters)[:2] == [f"Специалист · {PRICE}", "Ольга · 1\u00a0800 ₽"]
    calendar = await anna.press(masters, "Ольга · 1\u00a0800 ₽", "Выберите день")
    slots = await anna.press(calendar, "2", "Выберите время")
    assert [t for t in flat(slots) if ":" in t] == ["15:00", "15:30", "17:30"]
    await anna.press(slots, "15:30", "Поделитесь номером")
    summary = await anna.ask("+7 900 123-45-67", "Проверьте запись")
    assert "Стоимость: 1\u00a0800 ₽" in summary.plain_text  # her price
    assert "Специалист: Ольга" in summary.plain_text
    await anna.press(summary, "✖️ Отмена", "Запись отменена")
    # Окрашивание: only the first staff member performs it, so no staff step.
    choice = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    await anna.press(choice, "Окрашивание · 4\u00a0000 ₽", "Выберите день")

    # Deactivated, Ольга is gone for customers; the last one cannot be deactivated.
    await calm(bot)
    card = await owner.press(
        await owner.press(
            await owner.press(settings, "👤 Специалисты", "Специалисты"), "Ольга", "колорист"
        ),
        "🚫 Отключить",
        "клиенты его больше не видят",
    )
    choice = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    await anna.press(choice, f"Стрижка · {PRICE}", "Выберите день")
    first = await owner.press(
        await owner.press(settings, "👤 Специалисты", "Специалисты"), "Специалист", "Услуги"
    )
    await owner.press(first, "🚫 Отключить", "Последний активный специалист")


class Told:
    """The assistant's notifier: what the admins would have heard."""

    def __init__(self) -> None:
        self.bookings: list[int] = []

    async def booking_created(self, booking, *, by_assistant=False):
        self.bookings.append(booking.id)

    async def booking_cancelled(self, booking):
        pass

    async def lead_saved(self, saved):
        pass

    async def handoff_requested(self, customer_id, name, reason):
        pass


async def test_the_assistants_tools_know_staff_any_available_and_classes(bot_factory):
    import json

    from client_bot.assistant.tools import Toolbox
    from client_bot.booking_service import Booker

    bot = await bot_factory()
    maria, olga = await two_masters(bot)
    haircut = (await bot.store.services())[0]
    await bot.store.touch_customer(297, "Вера", None, None)
    await bot.store.create_booking(
        customer_id=297, service=haircut, starts_at=WED_10, customer_name="Вера",
        phone="+70000000000", staff_id=maria.id,
    )  # fmt: skip
    told = Told()
    tools = Toolbox(bot.app.ctx, Booker(209, "Анна"), told)

    async def call(tool, **args):
        return json.loads(await tools.run(tool, json.dumps(args)))

    listed = await call("list_services")
    assert [s["name"] for s in listed["services"][0]["specialists"]] == ["Мария", "Ольга"]
    anyone = await call("find_free_slots", service=haircut.id, date="2026-12-02")
    assert anyone["free_times"][0] == "10:00"  # Ольга is free then
    marias = await call("find_free_slots", service=haircut.id, date="2026-12-02", staff="Мария")
    assert "10:00" not in marias["free_times"] and "11:00" in marias["free_times"]
    refused = await call(
        "create_booking", service=haircut.id, slot="2026-12-02T10:00", name="Анна",
        phone="+79001234567", staff="Мария",
    )  # fmt: skip
    assert refused["ok"] is False and "taken" in refused["error"]
    booked = await call(
        "create_booking", service=haircut.id, slot="2026-12-02T10:00", name="Анна",
        phone="+79001234567",
    )  # fmt: skip
    assert booked["ok"] is True and booked["specialist"] == "Ольга"
    nobody = await call("find_free_slots", service=haircut.id, date="2026-12-02", staff="Пётр")
    assert nobody["ok"] is False and "Мария" in nobody["error"]

    yoga = await bot.store.add_service("Йога", Decimal("800"), 60)
    await bot.store.update_service(yoga.id, "capacity", 1)
    await bot.store.add_timetable_entry(yoga.id, 2, time(18))
    seats = await call("find_free_slots", service="Йога", date="2026-12-02")
    assert seats["free_times"] == ["18:00"]
    seat = await call(
        "create_booking", service="Йога", slot="2026-12-02T18:00", name="Анна",
        phone="+79001234567",
    )  # fmt: skip
    assert seat["ok"] is True
    full = await call("find_free_slots", service="Йога", date="2026-12-02")
    assert full["free_times"] == []
    rows = await fetch(
        bot.tenant.dsn,
        "SELECT staff_id, session_id IS NOT NULL AS seat, source FROM bookings"
        " WHERE customer_id = 209 ORDER BY id",
    )
    assert [tuple(r.values()) for r in rows] == [
        (olga.id, False, "assistant"),
        (None, True, "assistant"),
    ]
    assert told.bookings == [booked["booking_id"], seat["booking_id"]]


async def test_a_staff_member_leaving_with_bookings_the_admin_moves_or_cancels_them(bot_factory):
    bot = await bot_factory()
    maria, olga = await two_masters(bot)
    haircut = (await bot.store.services())[0]
    anna, boris = bot.customer(210, "Анна"), bot.customer(211, "Борис")
    ids = {}
    for customer, staff, start in (
        (anna, olga, WED_10), (boris, olga, WED_10 + timedelta(hours=5)),
        (bot.customer(212, "Вера"), maria, WED_10 + timedelta(hours=5)),
    ):  # fmt: skip
        await customer.ask("/start", "Добро пожаловать")
        booking = await bot.store.create_booking(
            customer_id=customer.id, service=haircut, starts_at=start, customer_name=customer.name,
            phone="+70000000000", staff_id=staff.id,
        )  # fmt: skip
        ids[customer.id] = booking.id
    owner = await bot.admin()
    home = await owner.ask("/admin", "Панель управления")
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    card = await owner.press(
        await owner.press(settings, "👤 Специалисты", "Специалисты"), "Ольга", "Колорист"
    )
    before = await owner.seen()
    await owner.click(card, "🚫 Отключить")
    choice = await owner.wait("ещё есть предстоящие записи: 2", after=before)
    # Мария is free at 10:00 but not at 15:00 (Вера): one moves, one stays for a decision.
    before = await owner.seen()
    await owner.click(choice, "🔀 Передать другим специалистам")
    report = await owner.wait("Передано: 1", after=before)
    assert f"Не нашлось свободного специалиста для: #{ids[211]}" in report.plain_text
    again = await owner.wait("ещё есть предстоящие записи: 1", after=before)
    moved = await anna.wait("передана специалисту Мария")
    assert "ср, 2 дек., 10:00" in moved.plain_text and "Ольга не сможет" in moved.plain_text
    await owner.press(again, "✖️ Отменить с уведомлением", "Отменено: 1")
    await boris.wait(f"Ваша запись №{ids[211]}")
    rows = await fetch(
        bot.tenant.dsn,
        "SELECT customer_id, staff_id, status, cancelled_by FROM bookings ORDER BY id",
    )
    assert [tuple(r.values()) for r in rows] == [
        (210, maria.id, "confirmed", None), (211, olga.id, "cancelled", "admin"),
        (212, maria.id, "confirmed", None),
    ]  # fmt: skip


async def test_a_customer_sees_a_staff_members_photo_and_books_from_it(bot_factory):
    """📷 beside a staff member with a photo: the photo with their name and description, and
    "Записаться к …" under it leads to their calendar; a photo removed meanwhile is an alert."""
    from aiogram.types import BufferedInputFile

    from tests.client.test_onboarding import png

    bot = await bot_factory()
    _maria, olga = await two_masters(bot)
    await bot.admin()  # the owner's chat, where the photo is uploaded as they would send it
    uploaded = await bot.app.bot.send_photo(ADMIN, BufferedInputFile(png(), "olga.png"))
    assert uploaded.photo is not None
    await bot.store.update_staff(olga.id, "photo_file_id", uploaded.photo[-1].file_id)
    bot.app.ctx.refresh()

    anna = bot.customer(211, "Анна")
    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    masters = await anna.press(services, f"Стрижка · {PRICE}", "Выберите специалиста")
    assert masters.buttons() == [
        [f"Мария · {PRICE}"], [f"Ольга · {PRICE}", "📷"], ["Любой свободный"], ["« Услуги"],
    ]  # fmt: skip
    photo = await anna.press(masters, "📷", "Ольга")
    assert photo.photo is not None and photo.photo[-1]["file_id"] == uploaded.photo[-1].file_id
    assert "Колорист" in photo.plain_text
    calendar = await anna.press(photo, "Записаться к Ольга", "Выберите день")
    slots = await anna.press(calendar, "2", "Выберите время")
    await anna.press(slots, "10:00", "Поделитесь номером телефона")
    summary = await anna.ask("+7 900 123-45-67", "Проверьте запись")
    assert "Специалист: Ольга" in summary.plain_text

    # The owner removes the photo; the old 📷 answers with an alert and sends nothing.
    await bot.store.update_staff(olga.id, "photo_file_id", None)
    bot.app.ctx.refresh()
    before = await anna.seen()
    query_id = await anna.click(masters, "📷")
    answer = await anna.client.wait_for_callback_answer(bot.token, query_id, timeout=5)
    assert answer.show_alert and "нет фото" in (answer.text or "")
    await asyncio.sleep(0.3)
    assert await anna.seen() == before
