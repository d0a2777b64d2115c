"""`ReminderRepository`: reminders of bookings, each handed out once when due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from client_bot.store.base import Repository
from client_bot.store.bookings import BOOKING_SELECT
from client_bot.store.models import Booking


@dataclass(frozen=True, slots=True)
class DueReminder:
    booking: Booking
    offset_min: int


class ReminderRepository(Repository):
    """Table `reminders` (rows are written with their booking, `BookingRepository`)."""

    # --- reminders ----------------------------------------------------------------------------
    async def claim_due_reminders(self, now: datetime, limit: int = 50) -> list[DueReminder]:
        """Mark due reminders as sent and return them: each is handed out exactly once."""
        async with self.pool.acquire() as conn, conn.transaction():
            # The rows are picked first (a materialized CTE runs once), then updated: a LIMIT
            # subquery joined to the UPDATE may be re-run per row and claim more than asked.
            rows = await conn.fetch(
                "WITH due AS MATERIALIZED ("
                "  SELECT booking_id, offset_min FROM reminders"
                "  WHERE sent_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $2"
                "  FOR UPDATE SKIP LOCKED)"
                " UPDATE reminders r SET sent_at = $1 FROM due"
                " WHERE r.booking_id = due.booking_id AND r.offset_min = due.offset_min"
                " RETURNING r.booking_id, r.offset_min",
                now,
                limit,
            )
            result = []
            for r in rows:
                b = await conn.fetchrow(BOOKING_SELECT + " WHERE b.id = $1", r["booking_id"])
                if b is not None and b["status"] == "confirmed" and b["starts_at"] > now:
                    result.append(DueReminder(Booking.from_row(b), r["offset_min"]))
        return result

    async def release_reminder(self, booking_id: int, offset_min: int) -> None:
        """Give a reminder back after a temporary failure so the next pass retries it."""
        await self.pool.execute(
            "UPDATE reminders SET sent_at = NULL WHERE booking_id = $1 AND offset_min = $2",
            booking_id,
            offset_min,
        )
