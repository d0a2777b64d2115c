"""A bookable bot within minutes of payment (issue 14, item 5): the category picked in the sales
bot seeds services, hours and a class from the first start; hours for several days in one
message; and what a new owner sees after that: staff photos and stats per staff member."""

from __future__ import annotations

import struct
import zlib
from datetime import time, timedelta

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from client_bot.booking.templates import split_week
from client_bot.handlers.admin.staff import StaffPhotoCb
from tests.client.conftest import ADMIN, T0, Customer, fetch

PANEL = "Панель управления"
WED_10 = T0 + timedelta(days=1, hours=1)  # Wednesday 2 December, 10:00 in Moscow


def flat(message):
    return [b for row in message.buttons() for b in row]


async def calm(bot, user_id=ADMIN):
    """Reset the flood counter: these tests click faster than the 20-per-10-s limit allows."""
    await bot.app.redis.delete(f"{bot.settings.redis_key_prefix}throttle:{user_id}")


async def first_start(bot, *, locale="ru"):
    """What a bot's start does with its contract (ClientBot.run -> Store.seed_business)."""
    s = bot.settings
    await bot.store.seed_business(
        name="Студия", locale=locale, timezone=s.timezone, category=s.business_category
    )


class Counted:
    """The owner, counting what they send and press."""

    def __init__(self, owner):
        self.owner, self.actions = owner, 0

    async def ask(self, text, expect):
        self.actions += 1
        return await self.owner.ask(text, expect)

    async def press(self, message, button, expect):
        self.actions += 1
        return await self.owner.press(message, button, expect)


async def bookable_times(customer, service, day="2"):
    menu = await customer.ask("/start", "")
    services = await customer.press(menu, "📅 Записаться", "Выберите услугу")
    calendar = await customer.press(services, service, "Выберите день")
    return flat(await customer.press(calendar, day, "Выберите время"))


async def test_a_category_makes_the_bot_bookable_with_no_owner_message(bot_factory):
    # The bot's own start (ClientBot.run) seeded it from BUSINESS_CATEGORY: no call here.
    bot = await bot_factory(seed=False, settings={"business_category": "beauty"})

    # The owner has sent nothing since "your bot is live"; a customer books at once.
    anna = bot.customer(301, "Анна")
    menu = await anna.ask("/start", "")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    assert flat(services)[:3] == [
        "Стрижка · 1\u00a0500 ₽", "Окрашивание · 3\u00a0500 ₽", "Маникюр · 1\u00a0500 ₽",
    ]  # fmt: skip
    calendar = await anna.press(services, "Стрижка · 1\u00a0500 ₽", "Выберите день")
    slots = await anna.press(calendar, "2", "Выберите время")
    assert "10:00" in flat(slots) and "19:00" in flat(slots) and "20:00" not in flat(slots)
    await anna.press(slots, "10:00", "Поделитесь номером")
    summary = await anna.ask("+7 900 123-45-67", "Проверьте запись")
    await anna.press(summary, "✅ Подтвердить", "Вы записаны")
    [booked] = await fetch(bot.tenant.dsn, "SELECT starts_at, staff_id FROM bookings")
    assert booked["starts_at"] == WED_10

    hours = await fetch(bot.tenant.dsn, "SELECT weekday, opens, closes FROM working_hours")
    assert sorted((r["weekday"], r["opens"], r["closes"]) for r in hours) == [
        (wd, time(10), time(20)) for wd in range(7)
    ]
    [staff] = await fetch(bot.tenant.dsn, "SELECT id, name FROM staff")
    assert (staff["id"], staff["name"]) == (booked["staff_id"], "Мастер")

    # Every later start: nothing added twice, and what the owner removed stays removed.
    manicure = next(s for s in await bot.store.services() if s.name == "Маникюр")
    await bot.store.set_service_hidden(manicure.id, True)
    await bot.store.set_hours(6, [])
    await first_start(bot)
    names = await fetch(bot.tenant.dsn, "SELECT name, hidden FROM services ORDER BY id")
    assert [(r["name"], r["hidden"]) for r in names] == [
        ("Стрижка", False), ("Окрашивание", False), ("Маникюр", True),
    ]  # fmt: skip
    assert len(await fetch(bot.tenant.dsn, "SELECT 1 FROM working_hours")) == 6
    [row] = await fetch(bot.tenant.dsn, "SELECT category FROM business")
    assert row["category"] == "beauty"


async def test_without_a_category_the_owner_needs_nine_actions(bot_factory):
    """The measure of item 5: from "your bot is live" to a first bookable slot. With the
    category: none (above). Without one: hours for the week in one message, one service."""
    bot = await bot_factory(seed=False)
    await first_start(bot)
    assert await bot.store.services() == []
    owner = Counted(await bot.admin())
    home = await owner.ask("/admin", PANEL)
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    schedule = await owner.press(settings, "🕒 График", "График работы")
    await owner.press(schedule, "🗓 Часы сразу нескольких дней", "одним сообщением")
    schedule = await owner.ask("Пн–Пт 10:00–20:00, Сб 11:00–17:00", "Сохранено: пн, вт")
    settings = await owner.press(schedule, "« Настройки", "Что хотите изменить")
    services = await owner.press(settings, "💇 Услуги", "Услуги")
    await owner.press(services, "➕ Добавить услугу", "одним сообщением")
    await owner.ask("Стрижка; 1500; 60", "Услуга добавлена")
    assert owner.actions == 9

    times = await bookable_times(bot.customer(302), "Стрижка · 1\u00a0500 ₽", day="5")
    assert times[0] == "11:00" and "16:00" in times and "17:00" not in times  # Saturday


async def test_fitness_in_english_seeds_a_coach_and_a_class_with_seats(bot_factory):
    bot = await bot_factory(seed=False, settings={"business_category": "fitness", "locale": "en"})
    await first_start(bot, locale="en")
    services = await fetch(
        bot.tenant.dsn, "SELECT id, name, price, capacity FROM services ORDER BY position"
    )
    assert [(r["name"], r["capacity"]) for r in services] == [
        ("Group yoga", 12), ("Personal training", None),
    ]  # fmt: skip
    timetable = await fetch(
        bot.tenant.dsn, "SELECT weekday, starts FROM class_timetable ORDER BY weekday"
    )
    assert [(r["weekday"], r["starts"]) for r in timetable] == [
        (0, time(19)), (2, time(19)), (4, time(19)), (5, time(11)),
    ]  # fmt: skip
    assert [r["name"] for r in await fetch(bot.tenant.dsn, "SELECT name FROM staff")] == ["Coach"]
    [told] = await fetch(bot.tenant.dsn, "SELECT text FROM admin_notices")  # in English too
    assert "Your bot is ready for bookings" in told["text"]
    assert "• Group yoga — 600 ₽, 60 min, a class of 12 seats: Mon 19:00, Wed 19:00" in told["text"]

    # A customer sees the class's sessions, in English, each with its twelve seats.
    vera = bot.customer(303, "Vera")
    menu = await vera.ask("/start", "")
    listing = await vera.press(menu, "📅 Book", "Choose a service")
    classes = await vera.press(listing, "Group yoga · 600 ₽", "Choose a class")
    assert flat(classes)[0] == "Wed, 2 Dec, 19:00 · seats: 12"


async def test_a_business_with_its_own_services_or_hours_is_never_seeded(bot_factory):
    bot = await bot_factory(settings={"business_category": "beauty"})  # the salon of conftest
    before = await fetch(bot.tenant.dsn, "SELECT name FROM services ORDER BY id")
    await first_start(bot)
    after = await fetch(bot.tenant.dsn, "SELECT name FROM services ORDER BY id")
    assert [r["name"] for r in after] == [r["name"] for r in before] == ["Стрижка", "Окрашивание"]
    hours = await fetch(bot.tenant.dsn, "SELECT weekday, closes FROM working_hours")
    assert {(r["weekday"], r["closes"]) for r in hours} == {(wd, time(19)) for wd in range(6)}
    assert [r["name"] for r in await fetch(bot.tenant.dsn, "SELECT name FROM staff")] == [
        "Специалист"
    ]
    [row] = await fetch(bot.tenant.dsn, "SELECT category FROM business")
    assert row["category"] == ""  # recorded: no later start seeds it either

    # Hours but no services yet (an owner who started by hand): not seeded either.
    other = await bot_factory(seed=False)  # started without a category: nothing seeded
    await other.store.set_hours(0, [(time(8), time(12))])
    await other.store.seed_business(  # a later start that has one
        name="Студия", locale="ru", timezone=other.settings.timezone, category="auto"
    )
    assert await fetch(other.tenant.dsn, "SELECT 1 FROM services") == []
    # An unknown category (a newer sales bot) seeds nothing and says so in the row.
    empty = await bot_factory(seed=False, settings={"business_category": "bakery"})
    await first_start(empty)
    assert await fetch(empty.tenant.dsn, "SELECT 1 FROM services") == []
    [row] = await fetch(empty.tenant.dsn, "SELECT category FROM business")
    assert row["category"] == ""


async def test_hours_for_several_days_at_once_and_bad_input(bot_factory):
    bot = await bot_factory()
    owner = await bot.admin()
    home = await owner.ask("/admin", PANEL)
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    schedule = await owner.press(settings, "🕒 График", "График работы")
    await owner.press(schedule, "🗓 Часы сразу нескольких дней", "одним сообщением")
    await owner.ask("10:00-19:00", "Начните с дней")
    await owner.ask("Пн-Пт", "нет часов")
    await owner.ask("Пн-Чт 10-19, Птн 10-18", "Не знаю день «Птн»")
    await owner.ask("Пн-Пт 19:00-10:00", "конец должен быть позже начала")
    unchanged = await fetch(bot.tenant.dsn, "SELECT weekday, opens, closes FROM working_hours")
    assert {(r["weekday"], r["opens"], r["closes"]) for r in unchanged} == {
        (wd, time(10), time(19)) for wd in range(6)
    }
    schedule = await owner.ask(
        "Пн–Пт 09:00–13:00, 14:00–20:00; Сб 11:00–17:00, Вс выходной", "Сохранено"
    )
    assert "пн: 09:00–13:00, 14:00–20:00" in schedule.plain_text
    assert "сб: 11:00–17:00" in schedule.plain_text and "вс: выходной" in schedule.plain_text
    rows = await fetch(
        bot.tenant.dsn, "SELECT weekday, opens, closes FROM working_hours ORDER BY 1, 2"
    )
    assert [(r["weekday"], r["opens"], r["closes"]) for r in rows] == [
        *((wd, time(h1), time(h2)) for wd in range(5) for h1, h2 in ((9, 13), (14, 20))),
        (5, time(11), time(17)),
    ]
    # The customer's calendar follows: Saturday from 11:00, the Friday lunch hour closed.
    assert (await bookable_times(bot.customer(304), "Стрижка · 1\u00a0500 ₽", "5"))[0] == "11:00"
    friday = await bookable_times(bot.customer(305), "Стрижка · 1\u00a0500 ₽", "4")
    assert "09:00" in friday and "13:00" not in friday and "14:00" in friday


def test_week_text_reads_ranges_lists_and_english():
    assert split_week("Mon-Fri 9-18\nSat, Sun: closed") == [
        ([0, 1, 2, 3, 4], "9-18"), ([5, 6], "closed"),
    ]  # fmt: skip
    assert split_week("Сб–Пн 10:00–12:00") == [([5, 6, 0], "10:00–12:00")]  # wraps the week


def png(width=2, height=2):
    """A small valid PNG."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def card_cb(staff_id):
    return StaffPhotoCb(staff_id=staff_id).pack()


async def staff_card(owner, name, expect):
    home = await owner.ask("/admin", PANEL)
    settings = await owner.press(home, "⚙️ Настройки", "Что хотите изменить")
    listing = await owner.press(settings, "👤 Специалисты", "Специалисты")
    return await owner.press(listing, name, expect)


async def test_a_staff_photo_sent_as_a_photo_or_a_file_then_removed(bot_factory):
    bot = await bot_factory()
    olga = await bot.store.add_staff("Ольга", "Колорист")
    owner = await bot.admin()
    card = await staff_card(owner, "Ольга", "Фото: нет")
    await owner.press(card, "🖼 Фото", "Пришлите фото «Ольга»")
    await owner.ask("привет", "Пришлите фото, или -")
    before = await owner.seen()
    await bot.client.send_document(
        bot.token, ADMIN, png(), "olga.png", mime_type="image/png", first_name="Владелец"
    )
    shown = await owner.wait("Это фото увидят клиенты", after=before)
    assert shown.photo is not None
    card = await owner.wait("Фото сохранено", after=before)
    assert "Фото: есть" in card.plain_text
    [row] = await fetch(bot.tenant.dsn, "SELECT photo_file_id FROM staff WHERE id = $1", olga.id)
    assert row["photo_file_id"] == shown.photo[-1]["file_id"]  # the photo's id, not the file's

    # Someone who is not an admin, with the button planted on a message of theirs, gets no
    # prompt, and their picture changes nothing.
    stranger = bot.customer(306, "Чужой")
    await stranger.ask("/start", "")
    planted = await bot.app.bot.send_message(
        stranger.id,
        "planted",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="photo", callback_data=card_cb(olga.id))]]
        ),
    )
    before = await stranger.seen()
    await stranger.client.click(bot.token, stranger.id, planted.message_id, text="photo")
    await bot.client.send_document(
        bot.token, stranger.id, png(), "me.png", mime_type="image/png", first_name="Чужой"
    )
    await stranger.wait("", after=before + 1)  # the bot answered the stranger's document
    assert not [
        m for m in (await bot.client.messages(bot.token, stranger.id))[before:]
        if "фото" in m.plain_text.lower()
    ]  # fmt: skip
    [same] = await fetch(bot.tenant.dsn, "SELECT photo_file_id FROM staff WHERE id = $1", olga.id)
    assert same["photo_file_id"] == row["photo_file_id"]

    # A text file is not a photo: refused, the photo stays.
    await owner.press(card, "🖼 Фото", "Пришлите фото «Ольга»")
    before = await owner.seen()
    await bot.client.send_document(
        bot.token, ADMIN, b"hello", "notes.txt", mime_type="text/plain", first_name="Владелец"
    )
    await owner.wait("Пришлите фото, или -", after=before)
    card = await owner.ask("-", "Фото удалено")
    assert "Фото: нет" in card.plain_text
    [row] = await fetch(bot.tenant.dsn, "SELECT photo_file_id FROM staff WHERE id = $1", olga.id)
    assert row["photo_file_id"] is None


async def test_stats_per_staff_member(bot_factory):
    bot = await bot_factory()
    [maria] = await bot.store.staff()
    await bot.store.update_staff(maria.id, "name", "Мария")
    olga = await bot.store.add_staff("Ольга")
    haircut = (await bot.store.services())[0]
    for n, (staff_id, hour, status) in enumerate(
        [(maria.id, 10, "done"), (maria.id, 12, "no_show"), (olga.id, 10, "confirmed")]
    ):
        await bot.store.touch_customer(400 + n, f"Клиент {n}", None, "ru")
        booking = await bot.store.create_booking(
            customer_id=400 + n,
            service=haircut,
            starts_at=WED_10 + timedelta(hours=hour - 10),
            customer_name=f"Клиент {n}",
            phone="+70000000000",
            staff_id=staff_id,
        )
        if status != "confirmed":
            await bot.store.set_booking_status(booking.id, status)
    owner = await bot.admin()
    home = await owner.ask("/admin", PANEL)
    stats = await owner.press(home, "📊 Статистика", "Статистика")
    assert "По специалистам" in stats.plain_text
    assert "Мария: 2 · 1 · 1" in stats.plain_text and "Ольга: 1 · 0 · 0" in stats.plain_text


SETUP = "Ваш бот готов к записи"
SETUP_BUTTONS = ["✅ Всё верно", "✏️ Услуги", "✏️ Часы работы", "✏️ Сотрудники"]


async def setup_notices(bot):
    return await fetch(
        bot.tenant.dsn, "SELECT admin_id, text FROM admin_notices WHERE text LIKE $1", f"%{SETUP}%"
    )


async def test_the_owner_gets_the_setup_once_and_confirms_it_in_one_tap(bot_factory):
    """The setup the category made is listed to the owner in one message, kept until they open
    the bot; customers book meanwhile (0 owner actions), "All correct" is the one tap (1)."""
    settings = {"business_category": "beauty"}
    bot = await bot_factory(seed=False, settings=settings)
    [kept] = await setup_notices(bot)  # the owner has not opened the bot: kept for them
    assert kept["admin_id"] == ADMIN

    # A customer books before the owner has done anything.
    times = await bookable_times(bot.customer(310, "Анна"), "Стрижка · 1\u00a0500 ₽")
    assert "10:00" in times

    owner = Counted(Customer(bot.client, bot.token, ADMIN, "Владелец"))
    await owner.owner.send("/start")  # their first visit: the kept message follows
    setup = await owner.owner.wait(SETUP)
    body = setup.plain_text
    assert "• Стрижка — 1\u00a0500 ₽, 60 мин" in body and "• Маникюр" in body
    assert "пн–вс: 10:00–20:00" in body and "Мастер" in body
    assert flat(setup) == SETUP_BUTTONS
    done = await owner.press(setup, "✅ Всё верно", "клиенты уже могут записываться")
    assert owner.actions == 1 and done.buttons() == []
    assert (await owner.owner.wait(SETUP)).buttons() == []  # nothing left to press twice

    # A restart (the same tenant, a new process) does not send it again.
    await bot.stop()
    again = await bot_factory(tenant=bot.tenant, token=bot.token, seed=False, settings=settings)
    await owner.owner.ask("/start", "")
    assert len(await setup_notices(again)) == 1
    got = [m for m in await bot.client.messages(bot.token, ADMIN) if SETUP in m.plain_text]
    assert len(got) == 1


async def test_setup_buttons_open_the_screens_and_refuse_strangers_and_stale_presses(
    bot_factory,
):
    bot = await bot_factory(seed=False, settings={"business_category": "beauty"})
    owner = await bot.admin()
    setup = await owner.wait(SETUP)
    await owner.press(setup, "✏️ Услуги", "Услуги")
    await owner.press(setup, "✏️ Часы работы", "График работы")
    await owner.press(setup, "✏️ Сотрудники", "Специалисты")

    # Someone who is not an admin, with the button planted on a message of theirs: refused.
    stranger = bot.customer(311, "Чужой")
    await stranger.ask("/start", "")
    planted = await bot.app.bot.send_message(
        stranger.id,
        "planted",
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text="ok", callback_data=setup.button_data("✅ Всё верно"))]
            ]
        ),
    )
    query = await stranger.client.click(bot.token, stranger.id, planted.message_id, text="ok")
    answer = await bot.client.wait_for_callback_answer(bot.token, query)
    assert answer.text == "Менять настройку бота могут только его администраторы."

    # Sunday closed meanwhile: "All correct" shows the setup as it is now, to confirm that.
    await bot.store.set_hours(6, [])
    before = await owner.seen()
    await owner.click(setup, "✅ Всё верно")
    fresh = await owner.wait("Настройка изменилась", after=before)
    assert "пн–сб: 10:00–20:00" in fresh.plain_text and "вс: выходной" in fresh.plain_text
    assert flat(fresh) == SETUP_BUTTONS
    await owner.press(fresh, "✅ Всё верно", "клиенты уже могут записываться")
    assert not [
        m for m in (await bot.client.messages(bot.token, stranger.id))
        if "клиенты уже могут" in m.plain_text
    ]  # fmt: skip
