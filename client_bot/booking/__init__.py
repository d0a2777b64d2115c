"""Booking domain logic for client bots: free slots, slot validation, cancellation, reminders.

Pure stdlib (``datetime``/``zoneinfo``); no Telegram, database or cache imports.
"""

from client_bot.booking.classes import (
    WAITLIST_HOLD,
    TimetableEntry,
    offer_until,
    timetable_sessions,
)
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
from client_bot.booking.staff import (
    OwnHours,
    StaffOption,
    days_free_for_anyone,
    free_staff_at,
    load_on,
    slots_free_for_anyone,
    staff_schedule,
)

__all__ = [
    "ALL_WEEKDAYS",
    "DEFAULT_REMINDER_OFFSETS",
    "WAITLIST_HOLD",
    "BookingRules",
    "Break",
    "Busy",
    "BusyInput",
    "BusyLike",
    "Closure",
    "Duration",
    "OwnHours",
    "Schedule",
    "SlotProblem",
    "StaffOption",
    "TimeRange",
    "TimetableEntry",
    "WeeklyHours",
    "can_cancel",
    "cancel_deadline",
    "days_free_for_anyone",
    "days_with_free_slots",
    "free_slots",
    "free_staff_at",
    "is_slot_free",
    "load_on",
    "offer_until",
    "reminder_times",
    "slots_free_for_anyone",
    "staff_schedule",
    "timetable_sessions",
    "validate_slot",
]
