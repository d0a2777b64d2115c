"""Rescheduling (issue 14.4), through the emulator as people do: a customer moves their booking
(same number, reminders re-armed, the old time freed), not within the cut-off; an admin moves a
booking to another staff member and the customer is told; two moves into one slot: one wins,
the other gets fresh times."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from client_bot import booking_service
from client_bot.booking import SlotProblem
from client_bot.store import SlotTakenError
from tests.client.conftest import T0, fetch

WED_10 = T0 + timedelta(days=1, hours=1)  # Wednesday 2 December, 10:00 in Moscow
THU_15 = WED_10 + timedelta(days=1, hours=5)  # Thursday 3 December, 15:00


async def _salon(bot):
    """Мария (the first staff member) and Ольга; Анна (301) and Борис (302) booked with Мария on
    Wednesday at 10:00 and 11:00, with their reminders 24 h and 2 h before."""
    [maria] = await bot.store.staff()
    await bot.store.update_staff(maria.id, "name", "Мария")
    olga = await bot.store.add_staff("Ольга", "Колорист")
    haircut = (await bot.store.services())[0]
    booked = {}
    for customer_id, name, start in (
        (301, "Анна", WED_10),
        (302, "Борис", WED_10 + timedelta(hours=1)),
    ):
        customer = bot.customer(customer_id, name)
        await customer.ask("/start", "Добро пожаловать")
        booking = await bot.store.create_booking(
            customer_id=customer_id, service=haircut, starts_at=start, customer_name=name,
            phone=f"+7900000{customer_id}", staff_id=maria.id,
            reminders=[(offset, start - timedelta(minutes=offset)) for offset in (1440, 120)],
        )  # fmt: skip
        booked[name] = booking.id
    return maria, olga, haircut, booked


async def _times_of(customer, booking_id: int, day: str):
    menu = await customer.ask("/start", "Добро пожаловать")
    mine = await customer.press(menu, "🗂 Мои записи", "Ваши записи")
    calendar = await customer.press(mine, f"🔁 Перенести №{booking_id}", "Выберите новый день")
    assert f"Перенос записи №{booking_id}" in calendar.plain_text
    return await customer.press(calendar, day, "выберите новое время")


async def test_a_customer_moves_their_booking_same_number_reminders_rearmed_old_time_freed(
    bot_factory,
):
    bot = await bot_factory()
    maria, _olga, haircut, booked = await _salon(bot)
    await bot.store.pool.execute(  # the 24 h reminder of the old time went out already
        "UPDATE reminders SET sent_at = $2 WHERE booking_id = $1 AND offset_min = 1440",
        booked["Анна"],
        T0,
    )
    owner = await bot.admin()
    anna = bot.customer(301, "Анна")
    times = await _times_of(anna, booked["Анна"], "3")
    moved = await anna.press(times, "15:00", "перенесена")
    assert moved.plain_text.startswith(f"✅ Ваша запись №{booked['Анна']} перенесена: Стрижка")
    assert "чт, 3 дек., 15:00 (было ср, 2 дек., 10:00)" in moved.plain_text
    notice = await owner.wait(f"Запись №{booked['Анна']} перенесена клиентом")
    assert "чт, 3 дек., 15:00" in notice.plain_text and "Анна, +7900000301" in notice.plain_text

    rows = await fetch(
        bot.tenant.dsn,
        "SELECT id, starts_at, ends_at, staff_id, status, moves FROM bookings WHERE customer_id = 301",
    )
    assert [tuple(r.values()) for r in rows] == [
        (booked["Анна"], THU_15, THU_15 + timedelta(hours=1), maria.id, "confirmed", 1)
    ]
    reminders = await fetch(
        bot.tenant.dsn,
        "SELECT offset_min, due_at, sent_at FROM reminders WHERE booking_id = $1 ORDER BY offset_min",
        booked["Анна"],
    )
    assert [tuple(r.values()) for r in reminders] == [
        (120, THU_15 - timedelta(hours=2), None),
        (1440, THU_15 - timedelta(days=1), None),
    ]
    # The old time is Мария's to give again.
    wednesday = await booking_service.free_times(bot.app.ctx, haircut, maria.id, date(2026, 12, 2))
    assert WED_10 in wednesday and WED_10 + timedelta(hours=1) not in wednesday


async def test_within_the_cut_off_a_move_is_refused_with_a_clear_message(bot_factory):
    bot = await bot_factory()
    *_rest, booked = await _salon(bot)
    anna = bot.customer(301, "Анна")
    menu = await anna.ask("/start", "Добро пожаловать")
    mine = await anna.press(menu, "🗂 Мои записи", "Ваши записи")
    bot.clock.set(WED_10 - timedelta(minutes=90))  # within the 2 h cut-off
    query = await anna.click(mine, f"🔁 Перенести №{booked['Анна']}")
    answer = await bot.client.wait_for_callback_answer(bot.token, query)
    assert answer.text == "Перенести эту запись онлайн уже поздно. Позвоните нам: +7 495 000-00-00"
    late = await anna.press(menu, "🗂 Мои записи", "Ваши записи")
    assert f"🔁 Перенести №{booked['Анна']}" not in str(late.buttons())
    rows = await fetch(
        bot.tenant.dsn, "SELECT starts_at, moves FROM bookings WHERE id = $1", booked["Анна"]
    )
    assert [tuple(r.values()) for r in rows] == [(WED_10, 0)]


async def test_an_admin_moves_a_booking_to_another_staff_member_and_the_customer_is_told(
    bot_factory,
):
    bot = await bot_factory()
    bot.clock.advance(timedelta(days=1))  # Wednesday 09:00: the panel opens on this day
    maria, olga, _haircut, booked = await _salon(bot)
    # Мария is linked in Telegram and has Анна's card open.
    owner = await bot.admin()
    code = await booking_service.create_invite(bot.app.ctx, maria.id, owner.id)
    maria_tg = bot.customer(8102, "Мария")
    day = await maria_tg.ask(f"/start staff_{code}", "Мария · среда")
    maria_card = await maria_tg.press(day, "10:00 · Анна", f"Запись №{booked['Анна']}")

    home = await owner.ask("/admin", "Панель управления")
    bookings = await owner.press(home, "📅 Записи", "Записи")
    card = await owner.press(bookings, "10:00 · Анна", f"Запись №{booked['Анна']}")
    who = await owner.press(card, "🔁 Перенести", "Выберите специалиста")
    assert who.buttons() == [["Мария"], ["Ольга"], ["Любой свободный"]]
    calendar = await owner.press(who, "Ольга", "Выберите новый день")
    times = await owner.press(calendar, "2", "выберите новое время")
    assert "10:00" in str(times.buttons())  # Ольга is free at Анна's own time
    anna = bot.customer(301, "Анна")
    seen = await anna.seen()
    done = await owner.press(
        times, "10:00", f"Запись №{booked['Анна']} перенесена на ср, 2 дек., 10:00"
    )
    assert (
        "Клиент получил ваше сообщение" in done.plain_text
        and "Специалист: Ольга" in done.plain_text
    )
    told = await anna.wait("перенесена", after=seen)
    assert f"Ваша запись №{booked['Анна']} перенесена" in told.plain_text
    assert "Специалист: Ольга" in told.plain_text
    rows = await fetch(
        bot.tenant.dsn, "SELECT staff_id, starts_at FROM bookings WHERE id = $1", booked["Анна"]
    )
    assert [tuple(r.values()) for r in rows] == [(olga.id, WED_10)]
    # Мария hears it went away; her stale button for it is refused and changes nothing.
    await maria_tg.wait("перенесена администратором")
    query = await maria_tg.click(maria_card, "✅ Пришёл")
    answer = await bot.client.wait_for_callback_answer(bot.token, query)
    assert "Это не ваша запись" in answer.text
    rows = await fetch(bot.tenant.dsn, "SELECT status FROM bookings WHERE id = $1", booked["Анна"])
    assert rows[0]["status"] == "confirmed"


async def test_two_moves_into_one_slot_one_wins_the_other_gets_fresh_times(bot_factory):
    bot = await bot_factory()
    maria, _olga, _haircut, booked = await _salon(bot)
    anna, boris = bot.customer(301, "Анна"), bot.customer(302, "Борис")
    screens = await asyncio.gather(
        _times_of(anna, booked["Анна"], "3"), _times_of(boris, booked["Борис"], "3")
    )
    before = [await anna.seen(), await boris.seen()]
    await asyncio.gather(anna.click(screens[0], "15:00"), boris.click(screens[1], "15:00"))
    results = [
        await customer.wait("", after=seen)
        for customer, seen in zip((anna, boris), before, strict=True)
    ]
    winners = [r for r in results if "перенесена" in r.plain_text]
    losers = [r for r in results if "только что заняли" in r.plain_text]
    assert len(winners) == 1 and len(losers) == 1, [r.plain_text for r in results]
    times = [b for row in losers[0].buttons() for b in row]
    assert "15:00" not in times and "16:00" in times  # fresh choices of that day
    rows = await fetch(
        bot.tenant.dsn,
        "SELECT customer_id, starts_at FROM bookings WHERE staff_id = $1 ORDER BY customer_id",
        maria.id,
    )
    at_15 = [r["customer_id"] for r in rows if r["starts_at"] == THU_15]
    assert len(at_15) == 1 and len(rows) == 2  # nothing lost, nothing doubled
    loser_id = 302 if at_15 == [301] else 301
    kept = next(r["starts_at"] for r in rows if r["customer_id"] == loser_id)
    assert kept == (WED_10 if loser_id == 301 else WED_10 + timedelta(hours=1))
    # Below the bot's own checks, PostgreSQL's per-staff exclusion constraint decides: the
    # loser's booking forced into an overlapping time is refused by the database itself ...
    loser_booking = booked["Анна"] if loser_id == 301 else booked["Борис"]
    with pytest.raises(SlotTakenError):
        await bot.store.reschedule_booking(
            loser_booking, was=kept, staff_id=maria.id, starts_at=THU_15 + timedelta(minutes=30),
            ends_at=THU_15 + timedelta(minutes=90),
        )  # fmt: skip
    # ... and two concurrent moves of the service into one free slot: one moved, one TAKEN.
    thu_17 = THU_15 + timedelta(hours=2)
    outcomes = await asyncio.gather(
        *(
            booking_service.reschedule(
                bot.app.ctx, booked[name], thu_17, customer_id=customer_id, staff_id=maria.id
            )
            for name, customer_id in (("Анна", 301), ("Борис", 302))
        )
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Moved", "SlotProblem"]
    assert SlotProblem.TAKEN in outcomes
    rows = await fetch(
        bot.tenant.dsn, "SELECT count(*) AS n FROM bookings WHERE starts_at = $1", thu_17
    )
    assert rows[0]["n"] == 1
