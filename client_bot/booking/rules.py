"""Booking policy: lead time, horizon, cancellation cutoff and reminder offsets.

Pure domain logic: no I/O, no framework imports. All arithmetic on instants is done in UTC, so
"2 hours before" means 2 real hours even across a DST change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

__all__ = [
    "DEFAULT_REMINDER_OFFSETS",
    "BookingRules",
    "HasRules",
    "can_cancel",
    "cancel_deadline",
    "reminder_times",
]

DEFAULT_REMINDER_OFFSETS: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=2))


@dataclass(frozen=True, slots=True)
class BookingRules:
    """Tenant booking policy. All values are in minutes except ``horizon_days``."""

    slot_step: int = 30
    buffer: int = 0
    lead_time: int = 60
    horizon_days: int = 30
    cancel_cutoff: int = 120

    def __post_init__(self) -> None:
        if self.slot_step <= 0:
            raise ValueError("slot_step must be positive")
        if self.buffer < 0 or self.lead_time < 0 or self.cancel_cutoff < 0:
            raise ValueError("buffer, lead_time and cancel_cutoff must not be negative")
        if self.horizon_days <= 0:
            raise ValueError("horizon_days must be positive")

    @property
    def step_delta(self) -> timedelta:
        """``slot_step`` as a timedelta."""
        return timedelta(minutes=self.slot_step)

    @property
    def buffer_delta(self) -> timedelta:
        """``buffer`` as a timedelta."""
        return timedelta(minutes=self.buffer)

    @property
    def lead_delta(self) -> timedelta:
        """``lead_time`` as a timedelta."""
        return timedelta(minutes=self.lead_time)

    @property
    def cancel_delta(self) -> timedelta:
        """``cancel_cutoff`` as a timedelta."""
        return timedelta(minutes=self.cancel_cutoff)


class HasRules(Protocol):
    """Anything carrying a ``rules`` attribute (e.g. ``Schedule``)."""

    @property
    def rules(self) -> BookingRules: ...


def require_aware(value: datetime, name: str) -> tzinfo:
    """Return ``value``'s tzinfo, or raise ``ValueError`` if the datetime is naive."""
    tz = value.tzinfo
    if tz is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return tz


def _rules_of(source: BookingRules | HasRules) -> BookingRules:
    return source if isinstance(source, BookingRules) else source.rules


def cancel_deadline(source: BookingRules | HasRules, booking_start: datetime) -> datetime:
    """Last instant (in ``booking_start``'s tz) at which the customer may still cancel."""
    tz = require_aware(booking_start, "booking_start")
    deadline = booking_start.astimezone(UTC) - _rules_of(source).cancel_delta
    return deadline.astimezone(tz)


def can_cancel(source: BookingRules | HasRules, booking_start: datetime, now: datetime) -> bool:
    """True while ``now`` is at or before ``booking_start - cancel_cutoff`` (deadline inclusive)."""
    require_aware(now, "now")
    return now.astimezone(UTC) <= cancel_deadline(source, booking_start).astimezone(UTC)


def reminder_times(
    start: datetime,
    offsets: Sequence[timedelta] = DEFAULT_REMINDER_OFFSETS,
    *,
    now: datetime,
) -> list[datetime]:
    """Reminder instants ``start - offset`` strictly after ``now``, ascending, deduplicated.

    Offsets are real elapsed time; results carry ``start``'s tzinfo.
    """
    tz = require_aware(start, "start")
    require_aware(now, "now")
    start_utc = start.astimezone(UTC)
    now_utc = now.astimezone(UTC)
    moments = {start_utc - offset for offset in offsets if offset > timedelta(0)}
    return [moment.astimezone(tz) for moment in sorted(moments) if moment > now_utc]
