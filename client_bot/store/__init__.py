"""The client bot's data layer: all SQL of the tenant schema lives in this package.

It runs as the tenant's own role (search_path pinned to its schema), so table names are
unqualified. Values always go as $n parameters. No connection is held across a Telegram call:
every method acquires, does its SQL and releases.

One repository class per aggregate, each holding its own SQL over the shared pool and
cache-invalidation hook (`base.Repository`); `Store` (`store.py`) combines them and is what the
rest of the code uses (`store.method(...)`):

- `business.py`: the profile and rules, services, hours, breaks, days off; seeding a new
  business from the contract and its category
- `staff.py`: staff members, their own hours, breaks, days off and services, who offers a
  service, Telegram invites and links
- `customers.py`: customers and admins
- `bookings.py`: bookings, busy times for slots, a staff member's bookings, moving and
  rescheduling
- `classes.py`: the timetable, sessions, seats and the waitlist
- `reminders.py`: due reminders, each claimed once
- `broadcasts.py`: broadcasts and their recipients' claims
- `stats.py`: the owner's statistics
- `models.py`: the rows as dataclasses

`assistant.py` (`AssistantStore`, as `store.assistant`), `notices.py` (`NoticeStore`) and
`lead_notes.py` (notes on leads, written from /admin and the web) are stores of their own.
"""

from client_bot.store.assistant import (
    LEAD_STATUSES,
    AssistantSettings,
    AssistantStore,
    ChatMessage,
    Lead,
    SavedLead,
    TurnState,
)
from client_bot.store.lead_notes import NOTE_MAX, LeadNote, LeadNotes
from client_bot.store.models import (
    Booking,
    Business,
    ClassSession,
    Customer,
    Service,
    Staff,
    StaffOffer,
    StaffWeek,
    WaitlistOffer,
)
from client_bot.store.store import (
    BroadcastState,
    DueReminder,
    SeatRefused,
    SlotTakenError,
    Stats,
    Store,
)

__all__ = [
    "LEAD_STATUSES",
    "NOTE_MAX",
    "AssistantSettings",
    "AssistantStore",
    "Booking",
    "BroadcastState",
    "Business",
    "ChatMessage",
    "ClassSession",
    "Customer",
    "DueReminder",
    "Lead",
    "LeadNote",
    "LeadNotes",
    "SavedLead",
    "SeatRefused",
    "Service",
    "SlotTakenError",
    "Staff",
    "StaffOffer",
    "StaffWeek",
    "Stats",
    "Store",
    "TurnState",
    "WaitlistOffer",
]
