"""`days_free_for_anyone` stops at the first staff member free on a day: it must still find
exactly the days on which some staff member has a free slot (the union of each one's days)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from client_bot.booking import (
    BookingRules,
    Break,
    Busy,
    OwnHours,
    Schedule,
    StaffOption,
    WeeklyHours,
    days_free_for_anyone,
    days_with_free_slots,
    staff_schedule,
)

TZ = "Europe/Moscow"


def test_the_days_of_anyone_are_the_union_of_each_staff_members_days():
    zone = ZoneInfo(TZ)
    business = Schedule(
        hours=WeeklyHours.uniform(range(6), (time(10), time(14))),
        tz=TZ,
        rules=BookingRules(slot_step=30, buffer=0, lead_time=60, horizon_days=21),
        breaks=(Break(time(12), time(13)),),
    )
    now = datetime(2026, 12, 1, 9, 0, tzinfo=zone)
    for seed in range(30):
        rng = random.Random(seed)
        options = []
        for staff_id in range(1, rng.randint(1, 5) + 1):
            own = None
            if rng.random() < 0.4:
                own = OwnHours({rng.randrange(7): [(time(15), time(18))]})
            days_off = {now.date() + timedelta(days=rng.randrange(21)) for _ in range(3)}
            busy = []
            for _ in range(rng.randrange(0, 60)):
                day = now.date() + timedelta(days=rng.randrange(22))
                start = datetime.combine(day, time(rng.randrange(9, 18)), tzinfo=zone)
                busy.append(
                    Busy(start.astimezone(UTC), (start + timedelta(hours=2)).astimezone(UTC))
                )
            schedule = staff_schedule(business, own, days_off)
            options.append(StaffOption(staff_id, schedule, rng.choice([30, 60, 90]), busy))
        union = sorted(
            {
                d
                for o in options
                for d in days_with_free_slots(o.schedule, o.duration_min, o.busy, now)
            }
        )
        assert days_free_for_anyone(options, now) == union, seed
    assert days_free_for_anyone([], now) == []
