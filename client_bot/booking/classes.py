"""Group classes: sessions of a weekly timetable within the booking horizon.

Pure domain logic (stdlib only). A timetable entry is a weekday and a wall-clock start in the
business's zone; a start that does not exist that day (a DST gap) is skipped, an ambiguous one
is its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["WAITLIST_HOLD", "TimetableEntry", "offer_until", "timetable_sessions"]

# How long a freed seat is kept for the first customer of the waitlist before the next one gets it.
WAITLIST_HOLD = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class TimetableEntry:
    id: int
    weekday: int
    starts: time


def timetable_sessions(
    entries: Iterable[TimetableEntry], tz: str, first_day: date, last_day: date
) -> list[tuple[TimetableEntry, datetime]]:
    """(entry, start) of every session the timetable has from `first_day` to `last_day`
    (local dates, inclusive), by start."""
    zone = ZoneInfo(tz)
    by_weekday: dict[int, list[TimetableEntry]] = {}
    for entry in entries:
        if not 0 <= entry.weekday <= 6:
            raise ValueError(f"weekday must be within 0..6, got {entry.weekday}")
        by_weekday.setdefault(entry.weekday, []).append(entry)
    found: list[tuple[TimetableEntry, datetime]] = []
    day = first_day
    while day <= last_day:
        for entry in by_weekday.get(day.weekday(), ()):
            wall = datetime.combine(day, entry.starts)
            start = wall.replace(tzinfo=zone)
            if start.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
                continue  # in a DST gap: that time does not exist that day
            found.append((entry, start))
        day += timedelta(days=1)
    return sorted(found, key=lambda pair: (pair[1], pair[0].id))


def offer_until(
    now: datetime, session_start: datetime, lead: timedelta, hold: timedelta = WAITLIST_HOLD
) -> datetime | None:
    """Until when a freed seat is kept for a waiting customer: `hold` from now, but no later
    than the last moment the session can be booked (`lead` before its start); None when that
    moment has passed (nobody is offered the seat any more)."""
    last = session_start - lead
    if last <= now:
        return None
    return min(now + hold, last)
