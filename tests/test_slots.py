"""Slot computation and booking rules (client_bot.booking): pure domain logic, no services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_bot.booking import (
    WAITLIST_HOLD,
    BookingRules,
    Break,
    Busy,
    BusyInput,
    Closure,
    OwnHours,
    Schedule,
    SlotProblem,
    StaffOption,
    TimetableEntry,
    WeeklyHours,
    can_cancel,
    days_free_for_anyone,
    days_with_free_slots,
    free_slots,
    free_staff_at,
    is_slot_free,
    offer_until,
    reminder_times,
    slots_free_for_anyone,
    staff_schedule,
    timetable_sessions,
    validate_slot,
)

MSK = ZoneInfo("Europe/Moscow")
ALMATY = ZoneInfo("Asia/Almaty")
BERLIN = ZoneInfo("Europe/Berlin")

MON = date(2025, 6, 2)  # a Monday
TUE = date(2025, 6, 3)
SAT = date(2025, 6, 7)
WEEKDAYS = range(5)


def t(hhmm: str) -> time:
    return time.fromisoformat(hhmm)


def msk(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, t(hhmm), tzinfo=MSK)


def utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


def hhmm(slots: list[datetime]) -> list[str]:
    return [s.strftime("%H:%M") for s in slots]


def make(
    tz: str = "Europe/Moscow",
    hours: WeeklyHours | None = None,
    *,
    step: int = 30,
    buffer: int = 0,
    lead: int = 60,
    horizon: int = 30,
    breaks: tuple[Break, ...] = (),
    days_off: frozenset[date] = frozenset(),
    closures: tuple[Closure, ...] = (),
) -> Schedule:
    return Schedule(
        hours=hours or WeeklyHours.uniform(WEEKDAYS, (t("10:00"), t("19:00"))),
        tz=tz,
        rules=BookingRules(slot_step=step, buffer=buffer, lead_time=lead, horizon_days=horizon),
        breaks=breaks,
        days_off=days_off,
        closures=closures,
    )


NOW = msk(date(2025, 6, 1), "12:00")  # Sunday noon in Moscow, well before MON


# --------------------------------------------------------------------------- time zones


def test_moscow_slots_are_aware_local_times_with_correct_utc_instants() -> None:
    slots = free_slots(make(), 60, MON, [], NOW)
    assert slots[0] == utc("2025-06-02T07:00")  # 10:00 MSK (+03:00)
    assert slots[-1] == utc("2025-06-02T15:00")  # 18:00 MSK: last 60-min slot before 19:00
    assert len(slots) == 17  # 10:00..18:00 every 30 min
    assert all(s.tzinfo == MSK and s.utcoffset() == timedelta(hours=3) for s in slots)
    assert hhmm(slots[:3]) == ["10:00", "10:30", "11:00"]


def test_almaty_slots_utc_instants() -> None:
    # Kazakhstan moved from UTC+6 to UTC+5 on 2024-03-01 (tzdata 2024a); older zone data on a
    # machine says +6, so the expected instants follow the offset the zone data gives.
    offset = datetime(2025, 6, 2, tzinfo=ALMATY).utcoffset()
    assert offset in (timedelta(hours=5), timedelta(hours=6))
    now = datetime(2025, 6, 1, 12, tzinfo=ALMATY)
    slots = free_slots(make("Asia/Almaty"), timedelta(minutes=90), MON, [], now)
    assert slots[0] == utc("2025-06-02T10:00") - offset  # 10:00 Almaty (05:00 UTC at +05:00)
    assert slots[-1] == utc("2025-06-02T17:30") - offset  # 17:30 local, ends 19:00
    assert all(s.tzinfo == ALMATY for s in slots)


# --------------------------------------------------------------------------- hours and breaks


def test_two_working_intervals_per_day() -> None:
    hours = WeeklyHours.from_mapping({0: [(t("14:00"), t("18:00")), (t("10:00"), t("13:00"))]})
    slots = free_slots(make(hours=hours), 60, MON, [], NOW)
    assert hhmm(slots) == [
        "10:00", "10:30", "11:00", "11:30", "12:00",
        "14:00", "14:30", "15:00", "15:30", "16:00", "16:30", "17:00",
    ]  # fmt: skip
    assert free_slots(make(hours=hours), 60, TUE, [], NOW) == []  # Tuesday closed


def test_slot_cannot_span_two_adjacent_intervals() -> None:
    hours = WeeklyHours.uniform([0], (t("10:00"), t("12:00")), (t("12:00"), t("14:00")))
    assert hhmm(free_slots(make(hours=hours), 120, MON, [], NOW)) == ["10:00", "12:00"]


def test_lunch_break_blocks_overlapping_slots() -> None:
    lunch = Break(t("13:00"), t("14:00"))
    slots = hhmm(free_slots(make(breaks=(lunch,)), 60, MON, [], NOW))
    assert "12:00" in slots  # ends exactly at 13:00
    assert "12:30" not in slots and "13:00" not in slots and "13:30" not in slots
    assert "14:00" in slots
    assert len(slots) == 17 - 3


def test_break_limited_to_some_weekdays() -> None:
    friday_meeting = Break(t("10:00"), t("12:00"), weekdays=frozenset({4}))
    schedule = make(breaks=(friday_meeting,))
    assert hhmm(free_slots(schedule, 60, MON, [], NOW))[0] == "10:00"
    assert hhmm(free_slots(schedule, 60, date(2025, 6, 6), [], NOW))[0] == "12:00"


def test_days_off_and_closed_weekdays_have_no_slots() -> None:
    schedule = make(days_off=frozenset({MON}))
    assert free_slots(schedule, 30, MON, [], NOW) == []
    assert free_slots(schedule, 30, SAT, [], NOW) == []  # weekend: no hours
    assert len(free_slots(schedule, 30, TUE, [], NOW)) == 18


def test_date_specific_closure() -> None:
    schedule = make(closures=(Closure(MON, t("15:00"), t("00:00")),))  # closes early that day
    assert hhmm(free_slots(schedule, 60, MON, [], NOW))[-1] == "14:00"
    assert hhmm(free_slots(schedule, 60, TUE, [], NOW))[-1] == "18:00"


def test_service_longer_than_rest_of_working_interval() -> None:
    assert hhmm(free_slots(make(), 120, MON, [], NOW))[-1] == "17:00"
    assert free_slots(make(), timedelta(hours=9, minutes=1), MON, [], NOW) == []
    assert hhmm(free_slots(make(), timedelta(hours=9), MON, [], NOW)) == ["10:00"]
    hours = WeeklyHours.uniform([0], (t("10:00"), t("13:00")), (t("14:00"), t("18:00")))
    # 3.5 h never fits the 3 h morning interval
    assert hhmm(free_slots(make(hours=hours), 210, MON, [], NOW)) == ["14:00", "14:30"]


def test_working_interval_until_midnight() -> None:
    hours = WeeklyHours.uniform([0], (t("20:00"), t("00:00")))
    slots = free_slots(make(hours=hours), 60, MON, [], NOW)
    assert hhmm(slots) == ["20:00", "20:30", "21:00", "21:30", "22:00", "22:30", "23:00"]


# --------------------------------------------------------------------------- busy, buffer, lead


def test_busy_given_in_utc_blocks_right_local_slots() -> None:
    busy = [Busy(utc("2025-06-02T08:00"), utc("2025-06-02T09:00"))]  # 11:00-12:00 MSK
    slots = hhmm(free_slots(make(), 60, MON, busy, NOW))
    assert "10:00" in slots and "12:00" in slots
    assert "10:30" not in slots and "11:00" not in slots and "11:30" not in slots
    assert len(slots) == 17 - 3


def test_busy_accepts_tuples_and_objects_in_any_zone() -> None:
    @dataclass
    class Row:
        start: datetime
        end: datetime

    almaty_2pm = datetime(2025, 6, 2, 14, tzinfo=ALMATY)  # 09:00 UTC = 12:00 MSK (tzdata 2024a+)
    busy: list[BusyInput] = [
        (almaty_2pm, almaty_2pm + timedelta(minutes=30)),
        Row(msk(MON, "16:00"), msk(MON, "16:30")),
    ]
    slots = hhmm(free_slots(make(), 30, MON, busy, NOW))
    assert len(slots) == 18 - 2
    assert almaty_2pm.astimezone(MSK).strftime("%H:%M") not in slots
    assert "16:00" not in slots and "15:30" in slots and "16:30" in slots


def test_buffer_extends_busy_on_both_sides() -> None:
    busy = [Busy(msk(MON, "12:00"), msk(MON, "13:00"))]
    slots = hhmm(free_slots(make(step=15, buffer=15), 30, MON, busy, NOW))
    assert "11:15" in slots  # 11:15-11:45 ends exactly at 12:00 - 15 min
    assert "11:30" not in slots  # ends 12:00, inside the buffer
    assert "13:00" not in slots  # starts inside the 13:00-13:15 buffer
    assert "13:15" in slots
    no_buffer = hhmm(free_slots(make(step=15), 30, MON, busy, NOW))
    assert "11:30" in no_buffer and "13:00" in no_buffer


def test_lead_time_relative_to_now() -> None:
    now = msk(MON, "10:10")
    assert hhmm(free_slots(make(lead=60), 30, MON, [], now))[0] == "11:30"  # 11:00 < 11:10
    assert hhmm(free_slots(make(lead=60), 30, MON, [], msk(MON, "10:00")))[0] == "11:00"
    assert hhmm(free_slots(make(lead=0), 30, MON, [], now))[0] == "10:30"
    assert free_slots(make(), 30, MON, [], msk(MON, "18:01")) == []


def test_horizon_end_in_tenant_timezone() -> None:
    schedule = make(horizon=30)
    # 22:30 UTC on May 31 is already June 1 (01:30) in Moscow: horizon = June 1 .. June 30.
    now = utc("2025-05-31T22:30")
    assert free_slots(schedule, 60, date(2025, 6, 30), [], now) != []  # Monday, last day
    assert free_slots(schedule, 60, date(2025, 7, 1), [], now) == []  # Tuesday, beyond
    assert free_slots(schedule, 60, date(2025, 5, 30), [], now) == []  # past Friday
    days = days_with_free_slots(schedule, 60, [], now)
    assert days[0] == MON and days[-1] == date(2025, 6, 30)


# --------------------------------------------------------------------------- DST


def test_dst_spring_forward_skips_nonexistent_times() -> None:
    hours = WeeklyHours.uniform([6], (t("00:00"), t("06:00")))
    schedule = make("Europe/Berlin", hours, lead=0)
    day = date(2025, 3, 30)  # 02:00 -> 03:00 in Berlin
    now = datetime(2025, 3, 29, 12, tzinfo=BERLIN)
    slots = free_slots(schedule, 30, day, [], now)
    labels = hhmm(slots)
    assert "02:00" not in labels and "02:30" not in labels
    assert labels == [
        "00:00", "00:30", "01:00", "01:30", "03:00", "03:30", "04:00", "04:30", "05:00", "05:30",
    ]  # fmt: skip
    assert slots[3] == utc("2025-03-30T00:30")  # 01:30 CET
    assert slots[4] == utc("2025-03-30T01:00")  # 03:00 CEST, right after
    # "02:30" built naively resolves (fold=0, +01:00) to 01:30 UTC, i.e. the real 03:30 CEST slot
    naive_0230 = datetime(2025, 3, 30, 2, 30, tzinfo=BERLIN)
    assert naive_0230.astimezone(UTC) == utc("2025-03-30T01:30")
    assert validate_slot(schedule, 30, naive_0230, [], now) is None
    assert utc("2025-03-30T01:30") in slots


def test_dst_duration_is_real_elapsed_time() -> None:
    # 01:00-04:00 wall clock on spring-forward day is only 2 real hours.
    hours = WeeklyHours.uniform([6], (t("01:00"), t("04:00")))
    schedule = make("Europe/Berlin", hours, lead=0)
    now = datetime(2025, 3, 29, 12, tzinfo=BERLIN)
    assert free_slots(schedule, 120, date(2025, 3, 30), [], now) == [utc("2025-03-30T00:00")]
    assert free_slots(schedule, 121, date(2025, 3, 30), [], now) == []


def test_dst_nonexistent_end_bound_shifts_forward() -> None:
    # "open until 02:30" on the 02:00->03:00 night ends at 03:30 CEST: still 2.5 real hours.
    hours = WeeklyHours.uniform([6], (t("00:00"), t("02:30")))
    schedule = make("Europe/Berlin", hours, lead=0)
    now = datetime(2025, 3, 29, 12, tzinfo=BERLIN)
    slots = free_slots(schedule, 30, date(2025, 3, 30), [], now)
    assert hhmm(slots) == ["00:00", "00:30", "01:00", "01:30", "03:00"]
    assert slots[-1] + timedelta(minutes=30) == utc("2025-03-30T01:30")
    assert validate_slot(schedule, 30, slots[-1], [], now) is None
    assert validate_slot(schedule, 30, utc("2025-03-30T01:30"), [], now) is (
        SlotProblem.OUTSIDE_HOURS
    )


def test_dst_fall_back_ambiguous_times_once() -> None:
    hours = WeeklyHours.uniform([6], (t("01:00"), t("04:00")))
    schedule = make("Europe/Berlin", hours, lead=0, step=60)
    now = datetime(2025, 10, 25, 12, tzinfo=BERLIN)
    slots = free_slots(schedule, 60, date(2025, 10, 26), [], now)
    # 01:00 CEST, 02:00 CEST (first occurrence), 03:00 CET; 4 real hours of work in total
    # (ambiguous aware datetimes never compare == across zones, PEP 495: compare in UTC)
    assert [s.astimezone(UTC) for s in slots] == [
        utc("2025-10-25T23:00"), utc("2025-10-26T00:00"), utc("2025-10-26T02:00"),
    ]  # fmt: skip
    assert hhmm(slots) == ["01:00", "02:00", "03:00"] and slots[1].fold == 0
    second_two_am = utc("2025-10-26T01:00")  # 02:00 CET, the repeated hour
    assert validate_slot(schedule, 60, second_two_am, [], now) is SlotProblem.OFF_GRID


# --------------------------------------------------------------------------- calendar


def test_days_with_free_slots_skips_full_and_closed_days() -> None:
    holiday = date(2025, 6, 12)  # Thursday
    schedule = make(horizon=14, days_off=frozenset({holiday}))
    busy: list[Busy] = [Busy(msk(TUE, "10:00"), msk(TUE, "19:00"))]  # Tuesday fully booked
    # Wednesday: bookings leave only 45-minute gaps, too short for a 60-minute service
    wed = date(2025, 6, 4)
    start = msk(wed, "10:00")
    while start < msk(wed, "19:00"):
        busy.append(Busy(start + timedelta(minutes=45), start + timedelta(minutes=90)))
        start += timedelta(minutes=90)
    busy.append(Busy(msk(wed, "18:30"), msk(wed, "19:00")))
    days = days_with_free_slots(schedule, 60, busy, NOW)
    expected = [MON, date(2025, 6, 5), date(2025, 6, 6), date(2025, 6, 9), date(2025, 6, 10)]
    expected += [date(2025, 6, 11), date(2025, 6, 13)]
    assert days == expected
    assert free_slots(schedule, 30, wed, busy, NOW) != []  # 30-minute service still fits there
    assert wed in days_with_free_slots(schedule, 30, busy, NOW)


def test_days_with_free_slots_respects_lead_time_today() -> None:
    schedule = make(horizon=3, lead=120)
    wed = date(2025, 6, 4)
    assert days_with_free_slots(schedule, 60, [], msk(MON, "17:30")) == [TUE, wed]
    assert days_with_free_slots(schedule, 60, [], msk(MON, "16:00")) == [MON, TUE, wed]


# --------------------------------------------------------------------------- cancel, validation


def test_can_cancel_around_cutoff() -> None:
    schedule = make()  # cancel_cutoff = 120 min
    start = msk(TUE, "15:00")
    assert can_cancel(schedule, start, msk(TUE, "12:59")) is True
    assert can_cancel(schedule, start, utc("2025-06-03T10:00")) is True  # 13:00 MSK: deadline
    assert can_cancel(schedule, start, msk(TUE, "13:00") + timedelta(seconds=1)) is False
    assert can_cancel(BookingRules(cancel_cutoff=0), start, msk(TUE, "14:59")) is True
    assert can_cancel(BookingRules(cancel_cutoff=0), start, msk(TUE, "15:01")) is False


def test_validate_slot_reasons() -> None:
    lunch = Break(t("13:00"), t("14:00"))
    schedule = make(breaks=(lunch,), horizon=14, days_off=frozenset({date(2025, 6, 12)}))
    busy = [Busy(msk(TUE, "15:00"), msk(TUE, "16:00"))]
    now = msk(MON, "10:10")

    def check(start: datetime) -> SlotProblem | None:
        return validate_slot(schedule, 60, start, busy, now)

    assert check(msk(MON, "10:00")) is SlotProblem.PAST
    assert check(msk(MON, "11:00")) is SlotProblem.TOO_SOON
    assert check(msk(MON, "11:30")) is None
    assert check(msk(date(2025, 6, 16), "11:00")) is SlotProblem.BEYOND_HORIZON
    assert check(msk(date(2025, 6, 12), "11:00")) is SlotProblem.DAY_OFF
    assert check(msk(SAT, "11:00")) is SlotProblem.DAY_OFF
    assert check(msk(TUE, "09:30")) is SlotProblem.OUTSIDE_HOURS
    assert check(msk(TUE, "18:30")) is SlotProblem.OUTSIDE_HOURS  # would end 19:30
    assert check(msk(TUE, "10:10")) is SlotProblem.OFF_GRID
    assert check(msk(TUE, "12:30")) is SlotProblem.IN_BREAK
    assert check(msk(TUE, "14:30")) is SlotProblem.TAKEN
    assert check(msk(TUE, "16:00")) is None
    assert check(utc("2025-06-03T13:00")) is None  # 16:00 MSK given in UTC
    assert is_slot_free(schedule, 60, msk(TUE, "16:00"), busy, now) is True
    assert is_slot_free(schedule, 60, msk(TUE, "15:30"), busy, now) is False


def test_stale_button_becomes_taken() -> None:
    schedule = make()
    slot = free_slots(schedule, 60, MON, [], NOW)[0]
    assert validate_slot(schedule, 60, slot, [], NOW) is None
    someone_else = [Busy(slot, slot + timedelta(minutes=60))]
    assert validate_slot(schedule, 60, slot, someone_else, NOW) is SlotProblem.TAKEN


def test_reminder_times_only_future_in_real_time() -> None:
    start = msk(TUE, "15:00")
    assert reminder_times(start, now=msk(MON, "12:00")) == [msk(MON, "15:00"), msk(TUE, "13:00")]
    assert reminder_times(start, now=msk(MON, "16:00")) == [msk(TUE, "13:00")]
    assert reminder_times(start, now=msk(TUE, "13:00")) == []
    assert reminder_times(start, [timedelta(minutes=30)], now=msk(TUE, "13:00")) == [
        msk(TUE, "14:30")
    ]
    # 24 real hours before 12:00 CEST on DST day is 11:00 CET the previous day
    berlin_start = datetime(2025, 3, 30, 12, tzinfo=BERLIN)
    (reminder,) = reminder_times(berlin_start, [timedelta(hours=24)], now=utc("2025-03-28T00:00"))
    assert reminder == utc("2025-03-29T10:00")
    assert reminder.strftime("%H:%M") == "11:00"


def test_invalid_inputs_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        free_slots(make(), 60, MON, [], datetime(2025, 6, 1, 12))
    with pytest.raises(ValueError, match="positive"):
        free_slots(make(), 0, MON, [], NOW)
    with pytest.raises(ValueError, match="overlap"):
        WeeklyHours.uniform([0], (t("10:00"), t("13:00")), (t("12:00"), t("18:00")))
    with pytest.raises(ValueError, match="after start"):
        Break(t("14:00"), t("13:00"))
    with pytest.raises(ZoneInfoNotFoundError):
        make("Mars/Olympus_Mons")
    with pytest.raises(ValueError):
        BookingRules(slot_step=0)


# --------------------------------------------------------------------------- property test

BERLIN_DAYS = [date(2025, 3, 30), date(2025, 3, 31), date(2025, 10, 26), date(2025, 6, 2)]


@st.composite
def intervals(draw: st.DrawFn, max_count: int) -> list[tuple[time, time]]:
    """Up to ``max_count`` sorted, non-overlapping quarter-hour ranges; end 00:00 = midnight."""
    marks = sorted(draw(st.sets(st.integers(0, 96), max_size=2 * max_count)))
    pairs = list(zip(marks[::2], marks[1::2], strict=False))
    return [(time(s // 4, s % 4 * 15), time(e // 4 % 24, e % 4 * 15)) for s, e in pairs]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Schedule, int, date, list[Busy], datetime]:
    day = draw(st.sampled_from(BERLIN_DAYS))
    hours = WeeklyHours.from_mapping({day.weekday(): draw(intervals(3))})
    breaks = tuple(
        Break(s, e, frozenset(draw(st.sets(st.integers(0, 6), min_size=1))))
        for s, e in draw(intervals(2))
    )
    closures = tuple(Closure(day, s, e) for s, e in draw(intervals(1)))
    rules = BookingRules(
        slot_step=draw(st.sampled_from([10, 15, 20, 30, 60])),
        buffer=draw(st.integers(0, 12)) * 5,
        lead_time=draw(st.integers(0, 180)),
        horizon_days=draw(st.integers(1, 5)),
    )
    schedule = Schedule(hours, "Europe/Berlin", rules, breaks, frozenset(), closures)
    day_start = datetime.combine(day, time(0), tzinfo=BERLIN).astimezone(UTC)
    busy = []
    for start_min, length in draw(
        st.lists(st.tuples(st.integers(-120, 26 * 60), st.integers(1, 180)), max_size=12)
    ):
        start = day_start + timedelta(minutes=start_min)
        busy.append(Busy(start, start + timedelta(minutes=length)))
    now = day_start - timedelta(minutes=draw(st.integers(-12 * 60, 3 * 24 * 60)))
    return schedule, draw(st.integers(5, 300)), day, busy, now


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_slots_fit_hours_and_avoid_breaks_and_busy(
    scenario: tuple[Schedule, int, date, list[Busy], datetime],
) -> None:
    schedule, minutes, day, busy, now = scenario
    duration = timedelta(minutes=minutes)
    buffer = schedule.rules.buffer_delta

    def instant(t_: time, *, end: bool = False) -> datetime:  # compare in UTC, never same-tz
        d = day + timedelta(days=1) if end and t_ == time(0) else day
        return datetime.combine(d, t_, tzinfo=BERLIN).astimezone(UTC)

    def overlaps(a: datetime, b: datetime, s: datetime, e: datetime) -> bool:
        return s < b and a < e

    slots = free_slots(schedule, duration, day, busy, now)
    assert slots == sorted(set(slots))
    first_day, last_day = schedule.horizon(now)
    for local_slot in slots:
        assert local_slot.tzinfo == BERLIN and local_slot.date() == day
        assert first_day <= day <= last_day
        slot = local_slot.astimezone(UTC)
        end = slot + duration  # real elapsed time (UTC arithmetic)
        assert slot >= now + schedule.rules.lead_delta
        assert any(
            instant(s) <= slot and end <= instant(e, end=True)
            for s, e in schedule.hours.intervals(day.weekday())
        )
        for br in schedule.breaks:
            if day.weekday() in br.weekdays:
                assert not overlaps(slot, end, instant(br.start), instant(br.end, end=True))
        for cl in schedule.closures:
            assert not overlaps(slot, end, instant(cl.start), instant(cl.end, end=True))
        for b in busy:
            assert not overlaps(slot, end, b.start - buffer, b.end + buffer)
        assert validate_slot(schedule, duration, local_slot, busy, now) is None

    # Completeness: every existing grid time that validate_slot accepts is offered. Walk past
    # the wall end: an end bound inside a DST gap shifts forward by the gap.
    accepted = set()
    for s, e in schedule.hours.intervals(day.weekday()):
        wall = datetime.combine(day, s)
        wall_end = datetime.combine(day + timedelta(days=1) if e == time(0) else day, e)
        while wall < wall_end + timedelta(hours=2):
            cand = wall.replace(tzinfo=BERLIN)
            exists = cand.astimezone(UTC).astimezone(BERLIN).replace(tzinfo=None) == wall
            if exists and validate_slot(schedule, duration, cand, busy, now) is None:
                accepted.add(cand)
            wall += schedule.rules.step_delta
    assert accepted == set(slots)

    calendar = days_with_free_slots(schedule, duration, busy, now)
    assert (day in calendar) == bool(slots)


# --------------------------------------------------------------------------- staff and classes
SALON = Schedule(
    hours=WeeklyHours.uniform(WEEKDAYS, (t("10:00"), t("14:00"))),
    tz="Europe/Moscow",
    rules=BookingRules(slot_step=60, lead_time=0),
    breaks=(Break(t("12:00"), t("13:00")),),
    days_off=frozenset({date(2025, 6, 4)}),
)
EARLY = datetime(2025, 6, 1, 0, 0, tzinfo=MSK)  # the Sunday before MON


def test_a_staff_member_on_the_business_hours_keeps_them_and_adds_own_days_off():
    mine = staff_schedule(SALON, None, {TUE})
    assert mine.hours == SALON.hours and mine.breaks == SALON.breaks
    assert mine.days_off == {date(2025, 6, 4), TUE}
    assert free_slots(mine, 60, TUE, [], EARLY) == []
    assert hhmm(free_slots(mine, 60, MON, [], EARLY)) == ["10:00", "11:00", "13:00"]


def test_own_hours_replace_the_business_hours_and_breaks_but_not_its_days_off():
    own = OwnHours({0: [(t("16:00"), t("18:00"))], 2: [(t("10:00"), t("12:00"))]})
    mine = staff_schedule(SALON, own)
    assert hhmm(free_slots(mine, 60, MON, [], EARLY)) == ["16:00", "17:00"]
    assert free_slots(mine, 60, TUE, [], EARLY) == []  # not their day
    assert free_slots(mine, 60, date(2025, 6, 4), [], EARLY) == []  # the business is closed


def option(
    staff_id: int, *busy: tuple[str, str], day: date = MON, duration: int = 60
) -> StaffOption:
    spans = [(msk(day, a), msk(day, b)) for a, b in busy]
    return StaffOption(staff_id, SALON, duration, spans)


def test_any_available_offers_a_time_when_someone_is_free_and_says_who():
    maria = option(1, ("10:00", "11:00"), ("13:00", "14:00"))
    olga = option(2, ("10:00", "11:00"), ("11:00", "12:00"))
    free = slots_free_for_anyone([maria, olga], MON, EARLY)
    assert {k.strftime("%H:%M"): v for k, v in free.items()} == {
        "11:00": [1],
        "13:00": [2],
    }  # 10:00 both busy; 12:00 lunch
    assert MON in days_free_for_anyone([maria, olga], EARLY)


def test_any_available_picks_the_least_loaded_free_staff_member_then_the_first_listed():
    busy_day = option(1, ("10:00", "11:00"), ("11:00", "12:00"))
    quiet_day = option(2, ("10:00", "11:00"))
    idle = option(3)
    assert free_staff_at([busy_day, quiet_day, idle], msk(MON, "13:00"), EARLY) == ([3, 2, 1], None)
    assert free_staff_at([quiet_day, option(4)], msk(MON, "11:00"), EARLY) == ([4, 2], None)
    assert free_staff_at([option(5), option(6)], msk(MON, "13:00"), EARLY) == ([5, 6], None)


def test_nobody_free_says_taken_or_why_not():
    both = [option(1, ("10:00", "11:00")), option(2, ("10:00", "11:00"))]
    assert free_staff_at(both, msk(MON, "10:00"), EARLY) == ([], SlotProblem.TAKEN)
    assert free_staff_at(both, msk(MON, "12:00"), EARLY) == ([], SlotProblem.IN_BREAK)
    assert free_staff_at([], msk(MON, "10:00"), EARLY)[1] is SlotProblem.OUTSIDE_HOURS


def test_a_longer_duration_of_one_staff_member_is_their_own():
    slow = option(1, duration=120)
    fast = option(2, duration=60)
    # 11:00 + 2 h runs into lunch for the slow one; the fast one fits.
    assert free_staff_at([slow, fast], msk(MON, "11:00"), EARLY) == ([2], None)


def test_timetable_sessions_cover_the_days_given_and_skip_a_time_lost_to_dst():
    yoga = TimetableEntry(1, 2, t("18:00"))  # Wednesdays
    pilates = TimetableEntry(2, 0, t("09:00"))  # Mondays
    found = timetable_sessions([yoga, pilates], "Europe/Moscow", MON, MON + timedelta(days=13))
    assert [(e.id, s.strftime("%a %d %H:%M")) for e, s in found] == [
        (2, "Mon 02 09:00"), (1, "Wed 04 18:00"), (2, "Mon 09 09:00"), (1, "Wed 11 18:00"),
    ]  # fmt: skip
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(hours=3) for _e, s in found)
    night = TimetableEntry(3, 6, t("02:30"))  # Sundays, 02:30 does not exist on 30 March 2025
    berlin = timetable_sessions([night], "Europe/Berlin", date(2025, 3, 23), date(2025, 4, 6))
    assert [s.date() for _e, s in berlin] == [date(2025, 3, 23), date(2025, 4, 6)]


def test_a_waitlist_offer_lasts_the_hold_but_never_past_the_booking_cut_off():
    now = msk(MON, "09:00")
    lead = timedelta(hours=1)
    assert offer_until(now, msk(TUE, "18:00"), lead) == now + WAITLIST_HOLD
    assert offer_until(now, msk(MON, "10:10"), lead) == msk(MON, "09:10")  # cut-off first
    assert offer_until(now, msk(MON, "10:00"), lead) is None  # nobody can book it any more
