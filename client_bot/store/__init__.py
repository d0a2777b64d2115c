"""The client bot's data layer: all SQL of the tenant schema lives in this package.

It runs as the tenant's own role (search_path pinned to its schema), so table names are
unqualified. Values always go as $n parameters. No connection is held across a Telegram call:
every method acquires, does its SQL and releases.
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
from client_bot.store.store import SeatRefused, SlotTakenError, Store

__all__ = [
    "LEAD_STATUSES",
    "NOTE_MAX",
    "AssistantSettings",
    "AssistantStore",
    "Booking",
    "Business",
    "ChatMessage",
    "ClassSession",
    "Customer",
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
    "Store",
    "TurnState",
    "WaitlistOffer",
]
