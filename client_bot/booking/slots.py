"""Free-slot computation and slot validation for the client bot's booking flow.

Pure domain logic (stdlib only). Conventions:

* Working hours, breaks and closures are *wall-clock* times in the tenant's IANA zone; an end of
  ``00:00`` means midnight at the end of the day (24:00).
* Slot candidates lie on a wall-clock grid of ``slot_step`` minutes starting at each working
  interval's start. Wall times that do not exist (DST spring-forward gap) are skipped; ambiguous
  wall times (fall-back) resolve to their first occurrence (``fold=0``). A nonexistent bound of
  hours/breaks/closures shifts forward by the gap (``fold=0``, as ``java.time`` does): hours
  00:00–02:30 on a 02:00→03:00 night end at 03:30 summer time, still 2.5 real hours.
* Durations, buffers and lead time are real elapsed time: all overlap arithmetic is done on UTC
  instants (integer microseconds), never on same-tz aware datetimes.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate, pairwise
from typing import Protocol, TypeAlias, cast
from zoneinfo import ZoneInfo

from client_bot.booking.rules import BookingRules, require_aware

__all__ = [
    "ALL_WEEKDAYS",
    "Break",
    "Busy",
    "BusyInput",
    "BusyLike",
    "Closure",
    "Duration",
    "Schedule",
    "SlotProblem",
    "TimeRange",
    "WeeklyHours",
    "days_with_free_slots",
    "free_slots",
    "is_slot_free",
    "validate_slot",
]

TimeRange: TypeAlias = tuple[time, time]
Duration: TypeAlias = timedelta | int  # int = minutes

ALL_WEEKDAYS: frozenset[int] = frozenset(range(7))
MIDNIGHT = time(0)
_ONE_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


# --------------------------------------------------------------------------- model


def _since_midnight(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _end_since_midnight(t: time) -> timedelta:
    return _ONE_DAY if t == MIDNIGHT else _since_midnight(t)


def _check_range(start: time, end: time, what: str) -> TimeRange:
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ValueError(f"{what}: use naive wall-clock times; the zone comes from Schedule.tz")
    if _end_since_midnight(end) <= _since_midnight(start):
        raise ValueError(f"{what}: end {end} must be after start {start} (00:00 end = midnight)")
    return (start, end)


def _check_weekdays(weekdays: Iterable[int]) -> frozenset[int]:
    result = frozenset(weekdays)
    if not result <= ALL_WEEKDAYS:
        raise ValueError(f"weekdays must be within 0..6 (Mon..Sun), got {sorted(result)}")
    return result


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Working intervals for each weekday 0..6 (Mon..Sun); a weekday with none is closed."""

    days: Sequence[Sequence[TimeRange]] = ((),) * 7

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("WeeklyHours.days needs exactly 7 entries (Mon..Sun)")
        normalized: list[tuple[TimeRange, ...]] = []
        for weekday, intervals in enumerate(self.days):
            checked = sorted(_check_range(s, e, f"hours[{weekday}]") for s, e in intervals)
            for (_, prev_end), (cur_start, _) in pairwise(checked):
                if _since_midnight(cur_start) < _end_since_midnight(prev_end):
                    raise ValueError(f"hours[{weekday}]: working intervals overlap")
            normalized.append(tuple(checked))
        object.__setattr__(self, "days", tuple(normalized))

    @classmethod
    def from_mapping(cls, mapping: Mapping[int, Sequence[TimeRange]]) -> WeeklyHours:
        """Build from ``{weekday: [(start, end), ...]}``; missing weekdays are closed."""
        _check_weekdays(mapping)
        return cls(tuple(tuple(mapping.get(weekday, ())) for weekday in range(7)))

    @classmethod
    def uniform(cls, weekdays: Iterable[int], *intervals: TimeRange) -> WeeklyHours:
        """Same ``intervals`` on every weekday in ``weekdays``; other weekdays closed."""
        chosen = _check_weekdays(weekdays)
        return cls(tuple(intervals if weekday in chosen else () for weekday in range(7)))

    def intervals(self, weekday: int) -> Sequence[TimeRange]:
        """Working intervals of ``weekday`` (0 = Monday), sorted by start."""
        return self.days[weekday]


@dataclass(frozen=True, slots=True)
class Break:
    """A recurring closed interval (e.g. lunch 13:00–14:00) on the given weekdays."""

    start: time
    end: time
    weekdays: frozenset[int] = ALL_WEEKDAYS

    def __post_init__(self) -> None:
        _check_range(self.start, self.end, "Break")
        object.__setattr__(self, "weekdays", _check_weekdays(self.weekdays))


@dataclass(frozen=True, slots=True)
class Closure:
    """An extra closed interval on one specific date (e.g. closing early on 31 Dec)."""

    day: date
    start: time
    end: time

    def __post_init__(self) -> None:
        _check_range(self.start, self.end, "Closure")


class BusyLike(Protocol):
    """Anything with aware ``start``/``end`` datetimes (an existing booking)."""

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...


BusyInput: TypeAlias = BusyLike | tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Busy:
    """An existing booking ``[start, end)``; aware datetimes in any zone."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware(self.start, "Busy.start")
        require_aware(self.end, "Busy.end")
        if self.end <= self.start:
            raise ValueError("Busy.end must be after Busy.start")


@dataclass(frozen=True, slots=True)
class Schedule:
    """Everything needed to compute slots for one tenant."""

    hours: WeeklyHours
    tz: str
    rules: BookingRules = field(default_factory=BookingRules)
    breaks: Sequence[Break] = ()
    days_off: frozenset[date] = frozenset()
    closures: Sequence[Closure] = ()

    def __post_init__(self) -> None:
        ZoneInfo(self.tz)  # raises ZoneInfoNotFoundError (a KeyError) for an unknown zone
        object.__setattr__(self, "breaks", tuple(self.breaks))
        object.__setattr__(self, "days_off", frozenset(self.days_off))
        object.__setattr__(self, "closures", tuple(self.closures))

    @property
    def zone(self) -> ZoneInfo:
        """The tenant's zone (``ZoneInfo`` caches instances, so this is cheap)."""
        return ZoneInfo(self.tz)

    def is_closed(self, day: date) -> bool:
        """True if ``day`` is a listed day off or its weekday has no working hours."""
        return day in self.days_off or not self.hours.intervals(day.weekday())

    def horizon(self, now: datetime) -> tuple[date, date]:
        """First and last bookable local dates: today .. today + horizon_days - 1."""
        require_aware(now, "now")
        today = now.astimezone(self.zone).date()
        return today, today + timedelta(days=self.rules.horizon_days - 1)


class SlotProblem(enum.StrEnum):
    """Why a requested slot start cannot be booked."""

    PAST = "past"
    TOO_SOON = "too_soon"
    BEYOND_HORIZON = "beyond_horizon"
    DAY_OFF = "day_off"
    OUTSIDE_HOURS = "outside_hours"
    OFF_GRID = "off_grid"  # inside hours but not on the slot_step grid
    IN_BREAK = "in_break"
    TAKEN = "taken"
    # Not from validate_slot: the chosen staff member no longer performs the service (removed,
    # or the service taken off their list), or nobody does.
    NO_STAFF = "no_staff"


# --------------------------------------------------------------------------- internals


def _us(moment: datetime) -> int:
    """Aware datetime -> integer microseconds since the Unix epoch (UTC)."""
    return (moment - _EPOCH) // _US


def _duration_us(duration: Duration) -> int:
    if isinstance(duration, bool):
        raise TypeError("duration must be a timedelta or int minutes")
    delta = timedelta(minutes=duration) if isinstance(duration, int) else duration
    if delta <= timedelta(0):
        raise ValueError("service duration must be positive")
    return delta // _US


def _wall(day: date, t: time, *, is_end: bool = False) -> datetime:
    if is_end and t == MIDNIGHT:
        return datetime.combine(day + _ONE_DAY, MIDNIGHT)
    return datetime.combine(day, t)


def _instant_us(day: date, t: time, zone: ZoneInfo, *, is_end: bool = False) -> int:
    return _us(_wall(day, t, is_end=is_end).replace(tzinfo=zone))


def _is_regular(wall: datetime, zone: ZoneInfo) -> bool:
    """True if naive ``wall`` exists exactly once in ``zone`` (not in a DST gap or fold)."""
    return wall.replace(tzinfo=zone).utcoffset() == wall.replace(tzinfo=zone, fold=1).utcoffset()


def _busy_bounds(item: BusyInput) -> tuple[datetime, datetime]:
    if isinstance(item, Busy):
        return item.start, item.end
    if isinstance(item, tuple) and not hasattr(item, "start"):
        start, end = item
        return start, end
    obj = cast(BusyLike, item)
    return obj.start, obj.end


class _BusyIndex:
    """Busy intervals widened by the buffer, sorted by start, with prefix max of ends.

    ``[a, b)`` overlaps some interval iff among those starting before ``b`` (a sorted prefix)
    the largest end exceeds ``a`` -- one bisect per query, overlapping bookings allowed.
    """

    __slots__ = ("max_ends", "starts")

    def __init__(self, busy: Iterable[BusyInput], buffer_us: int) -> None:
        spans: list[tuple[int, int]] = []
        append = spans.append
        for item in busy:
            if type(item) is Busy:  # validated on construction: skip the checks (hot path)
                start, end = item.start, item.end
            else:
                start, end = _busy_bounds(item)
                require_aware(start, "busy start")
                require_aware(end, "busy end")
            s = (start - _EPOCH) // _US
            e = (end - _EPOCH) // _US
            if e > s:
                append((s - buffer_us, e + buffer_us))
        spans.sort()
        self.starts = [s for s, _ in spans]
        self.max_ends = list(accumulate((e for _, e in spans), max))

    def overlaps(self, a: int, b: int) -> bool:
        """Does ``[a, b)`` overlap any widened busy interval?"""
        i = bisect_left(self.starts, b)
        return i > 0 and self.max_ends[i - 1] > a


class _Planner:
    """Per-request precomputation shared by all days of one query."""

    __slots__ = (
        "busy",
        "closures",
        "duration_us",
        "earliest_us",
        "first_day",
        "last_day",
        "schedule",
        "step",
        "step_us",
        "zone",
    )

    def __init__(
        self,
        schedule: Schedule,
        duration: Duration,
        busy: Iterable[BusyInput],
        now: datetime,
    ) -> None:
        require_aware(now, "now")
        rules = schedule.rules
        self.schedule = schedule
        self.zone = schedule.zone
        self.duration_us = _duration_us(duration)
        self.step = rules.step_delta
        self.step_us = rules.step_delta // _US
        self.earliest_us = _us(now) + rules.lead_delta // _US
        self.first_day, self.last_day = schedule.horizon(now)
        self.busy = _BusyIndex(busy, rules.buffer_delta // _US)
        self.closures: dict[date, list[TimeRange]] = {}
        for closure in schedule.closures:
            self.closures.setdefault(closure.day, []).append((closure.start, closure.end))

    def _blocked(self, day: date) -> list[tuple[int, int]]:
        weekday = day.weekday()
        ranges = [(b.start, b.end) for b in self.schedule.breaks if weekday in b.weekdays]
        ranges.extend(self.closures.get(day, ()))
        zone = self.zone
        return [
            (_instant_us(day, s, zone), _instant_us(day, e, zone, is_end=True)) for s, e in ranges
        ]

    def _candidates(self, wall: datetime, wall_end: datetime) -> Sequence[int]:
        """Grid starts (UTC us) of one working interval whose service would end inside it."""
        zone = self.zone
        interval_start = _us(wall.replace(tzinfo=zone))
        interval_end = _us(wall_end.replace(tzinfo=zone))
        last_start = interval_end - self.duration_us
        if (
            interval_end - interval_start == (wall_end - wall) // _US
            and _is_regular(wall, zone)
            and _is_regular(wall_end, zone)
        ):
            # Both ends unambiguous with the same UTC offset, so no DST change inside: the
            # wall-clock grid is a plain progression of instants. Start at the first >= earliest.
            first = interval_start
            if self.earliest_us > first:
                first += -(-(self.earliest_us - first) // self.step_us) * self.step_us
            return range(first, last_start + 1, self.step_us)
        # DST change inside the interval: walk wall-clock times, skipping nonexistent ones.
        # Stop on the instant, not the wall time: an end bound in a gap shifts forward.
        found: list[int] = []
        step = self.step
        while True:
            utc = wall.replace(tzinfo=zone).astimezone(UTC)
            if utc.astimezone(zone).replace(tzinfo=None) == wall:  # else: in a DST gap
                a = _us(utc)
                if a > last_start:
                    return found  # instants grow with wall time (fold=0): later ones end later
                if a >= interval_start:
                    found.append(a)
            wall += step

    def slots(self, day: date, *, first_only: bool = False) -> list[int]:
        """Free slot starts (UTC microseconds) on local ``day``, ascending."""
        schedule = self.schedule
        if day < self.first_day or day > self.last_day or schedule.is_closed(day):
            return []
        duration, earliest = self.duration_us, self.earliest_us
        starts, max_ends = self.busy.starts, self.busy.max_ends
        blocked = self._blocked(day)
        found: list[int] = []
        for start_t, end_t in schedule.hours.intervals(day.weekday()):
            wall_start, wall_end = _wall(day, start_t), _wall(day, end_t, is_end=True)
            for a in self._candidates(wall_start, wall_end):
                if a < earliest:
                    continue
                b = a + duration
                if blocked and any(bs < b and be > a for bs, be in blocked):
                    continue
                i = bisect_left(starts, b)  # inlined _BusyIndex.overlaps (hot loop)
                if i and max_ends[i - 1] > a:
                    continue
                found.append(a)
                if first_only:
                    return found
        return found


def _to_local(us: int, zone: ZoneInfo) -> datetime:
    return (_EPOCH + timedelta(microseconds=us)).astimezone(zone)


# --------------------------------------------------------------------------- public API


def free_slots(
    schedule: Schedule,
    service_duration: Duration,
    day: date,
    busy: Iterable[BusyInput],
    now: datetime,
) -> list[datetime]:
    """Bookable slot starts on local ``day`` as aware datetimes in the tenant's zone, ascending.

    ``service_duration`` is a timedelta or int minutes; ``busy`` are existing bookings.
    """
    planner = _Planner(schedule, service_duration, busy, now)
    return [_to_local(us, planner.zone) for us in planner.slots(day)]


def days_with_free_slots(
    schedule: Schedule,
    service_duration: Duration,
    busy: Iterable[BusyInput],
    now: datetime,
) -> list[date]:
    """Local dates within the booking horizon that have at least one free slot (for a calendar)."""
    planner = _Planner(schedule, service_duration, busy, now)
    result: list[date] = []
    day = planner.first_day
    while day <= planner.last_day:
        if planner.slots(day, first_only=True):
            result.append(day)
        day += _ONE_DAY
    return result


def validate_slot(
    schedule: Schedule,
    service_duration: Duration,
    start: datetime,
    busy: Iterable[BusyInput],
    now: datetime,
) -> SlotProblem | None:
    """Why ``start`` can't be booked now, or None if it is exactly a slot ``free_slots`` offers.

    Checks in order: PAST, TOO_SOON, BEYOND_HORIZON, DAY_OFF, OUTSIDE_HOURS, OFF_GRID, IN_BREAK,
    TAKEN. Use it to re-check a possibly stale button press or an AI-proposed time.
    """
    require_aware(start, "start")
    require_aware(now, "now")
    rules, zone = schedule.rules, schedule.zone
    duration_us = _duration_us(service_duration)
    a = _us(start)
    b = a + duration_us
    now_us = _us(now)
    if a < now_us:
        return SlotProblem.PAST
    if a < now_us + rules.lead_delta // _US:
        return SlotProblem.TOO_SOON
    local = start.astimezone(zone)
    day = local.date()
    if day > schedule.horizon(now)[1]:
        return SlotProblem.BEYOND_HORIZON
    if schedule.is_closed(day):
        return SlotProblem.DAY_OFF

    containing: time | None = None
    for start_t, end_t in schedule.hours.intervals(day.weekday()):
        if _instant_us(day, start_t, zone) <= a and b <= _instant_us(day, end_t, zone, is_end=True):
            containing = start_t
            break
    if containing is None:
        return SlotProblem.OUTSIDE_HOURS
    wall = local.replace(tzinfo=None, fold=0)
    on_grid = (wall - _wall(day, containing)) % rules.step_delta == timedelta(0)
    if not on_grid or _us(wall.replace(tzinfo=zone)) != a:  # 2nd occurrence of an ambiguous time
        return SlotProblem.OFF_GRID

    weekday = day.weekday()
    closed = [(br.start, br.end) for br in schedule.breaks if weekday in br.weekdays]
    closed += [(c.start, c.end) for c in schedule.closures if c.day == day]
    for s, e in closed:
        if _instant_us(day, s, zone) < b and _instant_us(day, e, zone, is_end=True) > a:
            return SlotProblem.IN_BREAK

    buffer_us = rules.buffer_delta // _US
    for item in busy:
        bs, be = _busy_bounds(item)
        s_us, e_us = _us(bs), _us(be)
        if e_us > s_us and s_us - buffer_us < b and e_us + buffer_us > a:
            return SlotProblem.TAKEN
    return None


def is_slot_free(
    schedule: Schedule,
    service_duration: Duration,
    start: datetime,
    busy: Iterable[BusyInput],
    now: datetime,
) -> bool:
    """True if ``validate_slot`` finds no problem with ``start``."""
    return validate_slot(schedule, service_duration, start, busy, now) is None
