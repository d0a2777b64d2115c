"""Benchmark slot computation: ``python -m bench.bench_slots``.

Schedule: Mon–Sat 09:00–21:00, lunch 13:00–14:00, 15-minute grid, 10-minute buffer, 60-minute
service, 30-day horizon, 2,000 existing bookings spread over those 30 days (given in UTC, in
random order). Prints median and p95 wall time per operation in milliseconds.

Staff (issue 14): 10 staff members, three of them on their own hours (Tue–Sun 12:00–22:00),
5,000 bookings spread among them over the same 30 days: free days and free times of one staff
member, and for "any available" (every staff member), and the pick at confirmation.

Seats (issue 14): one class session with 12 seats and 50 customers confirming at once, through
the bot's own seat booking (`booking_service.place_seat`: the customer row, the seat and its
reminders in PostgreSQL, as the tenant's role, over the bot's own pool of 5 connections), on a
scratch tenant of DATABASE_URL's server; the refused ones join the waitlist. Per-confirmation
latency median/p95 over several sessions, and that exactly the capacity was sold each time.
`--seats` runs only this case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bench.scratch import ScratchTenant, scratch_tenant, summary
from client_bot.app import ClientBot
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
    free_slots,
    free_staff_at,
    slots_free_for_anyone,
    staff_schedule,
)
from client_bot.booking_service import (
    Booker,
    SeatProblem,
    class_sessions,
    join_waitlist,
    place_seat,
)
from client_bot.clock import ManualClock
from core.settings import ClientBotSettings

TZ = "Europe/Moscow"
BOOKINGS = 2_000
HORIZON_DAYS = 30
DURATION = timedelta(minutes=60)
WARMUP = 5
RUNS = 200
STAFF = 10
STAFF_BOOKINGS = 5_000
STAFF_RUNS = 50
SEATS = 12
CONFIRMATIONS = 50
SEAT_ROUNDS = 4  # sessions, each with a fresh crowd of CONFIRMATIONS customers
SEATS_TENANT = "client_70000000014"
TOKEN = "7000014:bench-slots-token-abcdefgh"


def build() -> tuple[Schedule, list[Busy], datetime]:
    """A realistic busy salon: more bookings than one chair could take, so many days fill up."""
    schedule = Schedule(
        hours=WeeklyHours.uniform(range(6), (time(9), time(21))),
        tz=TZ,
        rules=BookingRules(slot_step=15, buffer=10, lead_time=60, horizon_days=HORIZON_DAYS),
        breaks=(Break(time(13), time(14)),),
    )
    zone = ZoneInfo(TZ)
    now = datetime(2025, 6, 2, 8, 5, tzinfo=zone)
    rng = random.Random(20250602)
    open_days = [
        now.date() + timedelta(days=i)
        for i in range(HORIZON_DAYS)
        if (now.date() + timedelta(days=i)).weekday() < 6
    ]
    busy: list[Busy] = []
    for _ in range(BOOKINGS):
        day = rng.choice(open_days)
        start_min = rng.randrange(9 * 60, 20 * 60, 15)
        length = rng.choice([30, 45, 60, 90, 120])
        start = datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=start_min)
        busy.append(
            Busy(start.astimezone(UTC), (start + timedelta(minutes=length)).astimezone(UTC))
        )
    return schedule, busy, now


def build_staff(schedule: Schedule, now: datetime) -> list[StaffOption]:
    """STAFF staff members sharing STAFF_BOOKINGS bookings; every fourth on own hours."""
    zone = ZoneInfo(TZ)
    rng = random.Random(20251203)
    own = OwnHours({wd: [(time(12), time(22))] for wd in range(1, 7)}, [(3, time(16), time(17))])
    busy: dict[int, list[Busy]] = {staff_id: [] for staff_id in range(1, STAFF + 1)}
    days = [now.date() + timedelta(days=i) for i in range(HORIZON_DAYS)]
    for _ in range(STAFF_BOOKINGS):
        staff_id = rng.randrange(1, STAFF + 1)
        start_min = rng.randrange(9 * 60, 21 * 60, 15)
        length = rng.choice([30, 45, 60, 90])
        start = datetime.combine(rng.choice(days), time(0), tzinfo=zone)
        start += timedelta(minutes=start_min)
        busy[staff_id].append(
            Busy(start.astimezone(UTC), (start + timedelta(minutes=length)).astimezone(UTC))
        )
    return [
        StaffOption(
            staff_id,
            staff_schedule(schedule, own if staff_id % 4 == 0 else None, ()),
            60,
            busy[staff_id],
            staff_id,
        )
        for staff_id in busy
    ]


def measure(fn: Callable[[], object], runs: int = RUNS) -> tuple[float, float, float]:
    """Median, p95 and max in milliseconds over `runs` calls after WARMUP calls."""
    for _ in range(WARMUP):
        fn()
    samples = []
    for _ in range(runs):
        started = clock.perf_counter()
        fn()
        samples.append((clock.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * len(samples)) - 1)]
    return statistics.median(samples), p95, samples[-1]


def main() -> None:
    """Run the benchmark and print a small table."""
    schedule, busy, now = build()
    days = days_with_free_slots(schedule, DURATION, busy, now)
    probe: date = days[len(days) // 2] if days else now.date() + timedelta(days=1)
    slots = free_slots(schedule, DURATION, probe, busy, now)

    print(
        f"schedule: Mon–Sat 09:00–21:00 {TZ}, lunch 13–14, step 15, buffer 10, "
        f"service {DURATION.seconds // 60} min"
    )
    print(
        f"bookings: {len(busy)} over {HORIZON_DAYS} days; days with free slots: {len(days)}; "
        f"free slots on {probe}: {len(slots)}"
    )
    print(f"runs: {RUNS} (after {WARMUP} warm-up)\n")
    print(f"{'operation':<40}{'median ms':>12}{'p95 ms':>12}{'max ms':>12}")
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            f"days_with_free_slots ({HORIZON_DAYS} days)",
            lambda: days_with_free_slots(schedule, DURATION, busy, now),
        ),
        (
            f"free_slots (one day, {probe})",
            lambda: free_slots(schedule, DURATION, probe, busy, now),
        ),
    ]
    for name, fn in cases:
        median, p95, worst = measure(fn)
        print(f"{name:<40}{median:>12.3f}{p95:>12.3f}{worst:>12.3f}")

    options = build_staff(schedule, now)
    one = options[0]
    anyone_days = days_free_for_anyone(options, now)
    day = anyone_days[len(anyone_days) // 2]
    starts = slots_free_for_anyone(options, day, now)
    pick_at = next(iter(starts)) if starts else now
    print(
        f"\nstaff: {len(options)} ({sum(1 for o in options if o.staff_id % 4 == 0)} on own "
        f"hours), {sum(len(o.busy) for o in options)} bookings over {HORIZON_DAYS} days; "
        f"days free for anyone: {len(anyone_days)}; free times on {day}: {len(starts)}"
    )
    print(f"runs: {STAFF_RUNS} (after {WARMUP} warm-up)\n")
    print(f"{'operation':<40}{'median ms':>12}{'p95 ms':>12}{'max ms':>12}")
    staff_cases: list[tuple[str, Callable[[], object]]] = [
        (
            "one staff member: free days",
            lambda: days_with_free_slots(one.schedule, one.duration_min, one.busy, now),
        ),
        (
            "one staff member: free times (a day)",
            lambda: free_slots(one.schedule, one.duration_min, day, one.busy, now),
        ),
        ("any available: free days", lambda: days_free_for_anyone(options, now)),
        (
            "  (reference: each one, every day)",
            lambda: {
                d
                for o in options
                for d in days_with_free_slots(o.schedule, o.duration_min, o.busy, now)
            },
        ),
        ("any available: free times (a day)", lambda: slots_free_for_anyone(options, day, now)),
        ("any available: pick at confirmation", lambda: free_staff_at(options, pick_at, now)),
    ]
    for name, fn in staff_cases:
        median, p95, worst = measure(fn, STAFF_RUNS)
        print(f"{name:<40}{median:>12.3f}{p95:>12.3f}{worst:>12.3f}")


async def seat_rush(tenant: ScratchTenant) -> None:
    """CONFIRMATIONS customers confirm a seat in one session of SEATS at once, SEAT_ROUNDS times."""
    settings = ClientBotSettings(
        tenant_id=SEATS_TENANT, bot_token=TOKEN,
        database_url=tenant.dsn, redis_url=tenant.redis_url,
        telegram_api_url="http://127.0.0.1:9", admin_ids=[], _env_file=None,
    )  # fmt: skip
    app = await ClientBot.create(settings, clock=ManualClock(datetime(2026, 12, 1, 6, tzinfo=UTC)))
    ctx = app.ctx
    try:
        yoga = await ctx.store.add_service("Йога", Decimal("800"), 60)
        await ctx.store.update_service(yoga.id, "capacity", SEATS)
        await ctx.store.add_timetable_entry(yoga.id, 2, time(18))  # Wednesdays 18:00
        ctx.refresh()
        service = next(s for s in await ctx.store.services() if s.id == yoga.id)
        sessions = (await class_sessions(ctx, service))[: SEAT_ROUNDS + 1]  # one to warm up
        latencies: list[float] = []
        bursts: list[float] = []
        waitlisted = 0
        cold = 0.0

        async def confirm(session_id: int, customer: int) -> tuple[object, float]:
            began = clock.perf_counter()
            result = await place_seat(
                ctx, Booker(customer, f"Клиент {customer}"), session_id,
                name=f"Клиент {customer}", phone="+79000000000",
            )  # fmt: skip
            return result, clock.perf_counter() - began

        for n, session in enumerate(sessions):
            crowd = range(100_000 + n * 1000, 100_000 + n * 1000 + CONFIRMATIONS)
            began = clock.perf_counter()
            results = await asyncio.gather(*(confirm(session.id, c) for c in crowd))
            if n == 0:  # the pool's first connections and statements: reported apart
                cold = clock.perf_counter() - began
            else:
                bursts.append(clock.perf_counter() - began)
                latencies += [seconds for _, seconds in results]
            refused = [c for c, (r, _) in zip(crowd, results, strict=True) if r is SeatProblem.FULL]
            booked = CONFIRMATIONS - len(refused)
            for customer in refused:  # what the bot offers them: the line
                place = await join_waitlist(
                    ctx, Booker(customer, "x"), session.id, name="x", phone="+79000000000"
                )
                waitlisted += isinstance(place, int) and not isinstance(place, SeatProblem)
            sold = await ctx.store.pool.fetchval(
                "SELECT count(*) FROM bookings WHERE session_id = $1 AND status = 'confirmed'",
                session.id,
            )
            counter = await ctx.store.pool.fetchval(
                "SELECT booked FROM class_sessions WHERE id = $1", session.id
            )
            if not booked == sold == counter == SEATS:
                raise SystemExit(f"oversold or undersold: {booked} ok, {sold} rows, {counter}")
        print(
            f"\nseats: {len(sessions)} sessions of {SEATS} seats, {CONFIRMATIONS} customers"
            f" confirming at once each; booked exactly {SEATS} every time, the other"
            f" {CONFIRMATIONS - SEATS} refused (full) and waitlisted ({waitlisted} in all)"
        )
        print(summary("seat confirmation (place_seat), per customer", latencies))
        print(summary(f"{CONFIRMATIONS} confirmations, whole burst", bursts))
        print(f"{'the first burst, cold pool (not counted above)':<46} {cold * 1000:6.2f} ms")
    finally:
        await app.close()


async def seats() -> None:
    async with scratch_tenant(SEATS_TENANT, "slots") as tenant:
        await seat_rush(tenant)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seats", action="store_true", help="only the seat booking case")
    if not parser.parse_args().seats:
        main()
    if os.environ.get("DATABASE_URL"):
        asyncio.run(seats())
    else:
        print("\nseats: skipped (DATABASE_URL and REDIS_URL are not set)")
