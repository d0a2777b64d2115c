"""Staff: whose schedule applies, who is free when, and whom "any available" gets.

Pure domain logic (stdlib only). A staff member works the business's hours unless they have
their own; the business's days off apply to everyone, a staff member's own days off on top.
"Any available" offers a time when at least one staff member is free then, and at confirmation
picks the least loaded of those free (fewest bookings that day), then the first in the
business's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from client_bot.booking.slots import (
    Break,
    BusyInput,
    Schedule,
    SlotProblem,
    WeeklyHours,
    _busy_bounds,
    _Planner,
    free_slots,
    validate_slot,
)

__all__ = [
    "OwnHours",
    "StaffOption",
    "days_free_for_anyone",
    "free_staff_at",
    "load_on",
    "slots_free_for_anyone",
    "staff_schedule",
]


@dataclass(frozen=True, slots=True)
class OwnHours:
    """A staff member's own week as stored: {weekday: [(opens, closes)]}, [(weekday, s, e)]."""

    hours: Mapping[int, Sequence[tuple[time, time]]]
    breaks: Sequence[tuple[int, time, time]] = ()


def staff_schedule(
    business: Schedule, own: OwnHours | None = None, days_off: Iterable[date] = ()
) -> Schedule:
    """The schedule of one staff member: the business's, or `own` hours and breaks (rules, zone
    and the business's days off stay), with the staff member's own `days_off` added."""
    schedule = business
    if own is not None:
        schedule = replace(
            schedule,
            hours=WeeklyHours.from_mapping(own.hours),
            breaks=tuple(Break(s, e, frozenset({wd})) for wd, s, e in own.breaks),
        )
    extra = frozenset(days_off)
    if extra:
        schedule = replace(schedule, days_off=schedule.days_off | extra)
    return schedule


@dataclass(frozen=True, slots=True)
class StaffOption:
    """One staff member able to do the service: their schedule, how long it takes them (their
    duration may differ from the service's), their bookings, and their place in the list."""

    staff_id: int
    schedule: Schedule
    duration_min: int
    busy: Sequence[BusyInput] = ()
    position: int = 0


def slots_free_for_anyone(
    options: Iterable[StaffOption], day: date, now: datetime
) -> dict[datetime, list[int]]:
    """Free starts on `day` (ascending) → the staff members free then, in the given order."""
    found: dict[datetime, list[int]] = {}
    for option in options:
        for start in free_slots(option.schedule, option.duration_min, day, option.busy, now):
            found.setdefault(start, []).append(option.staff_id)
    return dict(sorted(found.items()))


def days_free_for_anyone(options: Iterable[StaffOption], now: datetime) -> list[date]:
    """Days within the horizon where at least one of the staff members has a free slot. A day
    stops being checked at the first staff member free on it (with 10 staff members and
    mostly free days, about a tenth of the work of asking each one for every day)."""
    planners = [_Planner(o.schedule, o.duration_min, o.busy, now) for o in options]
    if not planners:
        return []
    days: list[date] = []
    day = min(p.first_day for p in planners)
    last = max(p.last_day for p in planners)
    while day <= last:
        if any(
            p.first_day <= day <= p.last_day and p.slots(day, first_only=True) for p in planners
        ):
            days.append(day)
        day += timedelta(days=1)
    return days


def load_on(day: date, option: StaffOption) -> int:
    """How many bookings the staff member has starting on local `day`."""
    zone = option.schedule.zone
    return sum(1 for item in option.busy if _busy_bounds(item)[0].astimezone(zone).date() == day)


def free_staff_at(
    options: Sequence[StaffOption], start: datetime, now: datetime
) -> tuple[list[int], SlotProblem | None]:
    """The staff members free at `start`, least loaded that day first (then list order), and,
    when none is, why not: the problem of the first staff member (TAKEN when any of them would
    have been free but for bookings)."""
    ranked: list[tuple[int, int, int]] = []
    problems: list[SlotProblem] = []
    for index, option in enumerate(options):
        problem = validate_slot(option.schedule, option.duration_min, start, option.busy, now)
        if problem is None:
            day = start.astimezone(option.schedule.zone).date()
            ranked.append((load_on(day, option), index, option.staff_id))
        else:
            problems.append(problem)
    if ranked:
        return [staff_id for _load, _index, staff_id in sorted(ranked)], None
    if SlotProblem.TAKEN in problems:
        return [], SlotProblem.TAKEN
    return [], problems[0] if problems else SlotProblem.OUTSIDE_HOURS
