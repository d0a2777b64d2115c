"""Booking domain logic for client bots: free slots, slot validation, cancellation, reminders.

Pure stdlib (``datetime``/``zoneinfo``); no Telegram, database or cache imports.
"""

from client_bot.booking.rules import (
    DEFAULT_REMINDER_OFFSETS,
    BookingRules,
    can_cancel,
    cancel_deadline,
    reminder_times,
)
from client_bot.booking.slots import (
    ALL_WEEKDAYS,
    Break,
    Busy,
    BusyInput,
    BusyLike,
    Closure,
    Duration,
    Schedule,
    SlotProblem,
    TimeRange,
    WeeklyHours,
    days_with_free_slots,
    free_slots,
    is_slot_free,
    validate_slot,
)

__all__ = [
    "ALL_WEEKDAYS",
    "DEFAULT_REMINDER_OFFSETS",
    "BookingRules",
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
    "can_cancel",
    "cancel_deadline",
    "days_with_free_slots",
    "free_slots",
    "is_slot_free",
    "reminder_times",
    "validate_slot",
]
