"""`Store`: every query of the client bot, against the tenant's own schema.

The facade the rest of the code uses (`store.method(...)`): one class combining the
repositories of this package, one per aggregate, over one pool and one cache-invalidation
hook (`Repository`). The SQL lives in the repositories; the package docstring lists them.
"""

from __future__ import annotations

import asyncpg

from client_bot.store.assistant import AssistantStore
from client_bot.store.bookings import BookingRepository, SlotTakenError
from client_bot.store.broadcasts import BroadcastRepository, BroadcastState
from client_bot.store.business import BusinessRepository
from client_bot.store.classes import ClassRepository, SeatRefused
from client_bot.store.customers import CustomerRepository
from client_bot.store.reminders import DueReminder, ReminderRepository
from client_bot.store.staff import StaffRepository
from client_bot.store.stats import Stats, StatsRepository

__all__ = [
    "BroadcastState",
    "DueReminder",
    "SeatRefused",
    "SlotTakenError",
    "Stats",
    "Store",
]


class Store(
    BusinessRepository,
    StaffRepository,
    CustomerRepository,
    BookingRepository,
    ClassRepository,
    ReminderRepository,
    BroadcastRepository,
    StatsRepository,
):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.assistant = AssistantStore(pool, self._changed)
