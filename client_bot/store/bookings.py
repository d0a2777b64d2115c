"""`BookingRepository`: bookings, the busy times slots are computed from, a staff member's
bookings, moving a booking to another staff member and rescheduling it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import asyncpg

from client_bot.store.base import Repository
from client_bot.store.models import Booking, Service

BOOKING_SELECT = """
    SELECT b.id, b.customer_id, b.service_id, s.name AS service_name, b.starts_at, b.ends_at,
           b.status, b.customer_name, b.phone, b.cancel_note, b.staff_id, st.name AS staff_name,
           b.session_id
    FROM bookings b JOIN services s ON s.id = b.service_id LEFT JOIN staff st ON st.id = b.staff_id
"""


class SlotTakenError(Exception):
    """Someone else booked an overlapping time first (the database said so)."""


async def booking_by_id(pool: asyncpg.Pool, booking_id: int) -> Booking | None:
    """One booking by its number (`BookingRepository.booking`; also read by the class seats)."""
    row = await pool.fetchrow(BOOKING_SELECT + " WHERE b.id = $1", booking_id)
    return Booking.from_row(row) if row else None


class BookingRepository(Repository):
    """Tables `bookings` and, written with each booking, `reminders`."""

    # --- bookings -----------------------------------------------------------------------------
    async def busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Active bookings overlapping [start, end), for slot computation."""
        rows = await self.pool.fetch(
            "SELECT starts_at, ends_at FROM bookings"
            " WHERE status <> 'cancelled' AND starts_at < $2 AND ends_at > $1",
            start,
            end,
        )
        return [(r["starts_at"], r["ends_at"]) for r in rows]

    async def busy_by_staff(
        self, start: datetime, end: datetime, *, except_booking: int = 0
    ) -> dict[int, list[tuple[datetime, datetime]]]:
        """Each staff member's appointments and classes they lead overlapping [start, end),
        leaving out `except_booking` (a booking being moved does not block its own new time)."""
        rows = await self.pool.fetch(
            "SELECT staff_id, starts_at, ends_at FROM bookings"
            " WHERE status <> 'cancelled' AND session_id IS NULL AND starts_at < $2 AND ends_at > $1"
            " AND id <> $3"
            " UNION ALL SELECT staff_id, starts_at, ends_at FROM class_sessions"
            " WHERE staff_id IS NOT NULL AND cancelled_at IS NULL"
            " AND starts_at < $2 AND ends_at > $1",
            start,
            end,
            except_booking,
        )
        found: dict[int, list[tuple[datetime, datetime]]] = {}
        for r in rows:
            found.setdefault(r["staff_id"], []).append((r["starts_at"], r["ends_at"]))
        return found

    async def create_booking(
        self,
        *,
        customer_id: int,
        service: Service,
        starts_at: datetime,
        customer_name: str,
        phone: str,
        reminders: Iterable[tuple[int, datetime]] = (),
        source: str = "menu",
        staff_id: int | None = None,
        duration_min: int | None = None,
    ) -> Booking:
        """Insert a confirmed booking of `staff_id` (None: the first active staff member) taking
        `duration_min` (None: the service's) and its due reminders; SlotTakenError when the
        staff member has an overlapping booking."""
        ends_at = starts_at + timedelta(minutes=duration_min or service.duration_min)
        offsets = [offset for offset, _due in reminders]
        dues = [due for _offset, due in reminders]
        try:
            # One statement, so one round trip and atomic without an explicit transaction.
            row = await self.pool.fetchrow(
                "WITH b AS ("
                "  INSERT INTO bookings (customer_id, service_id, starts_at, ends_at,"
                "  customer_name, phone, source, staff_id)"
                "  VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($10::integer,"
                "  (SELECT id FROM staff WHERE active ORDER BY position, id LIMIT 1)))"
                "  RETURNING id, staff_id),"
                " r AS (INSERT INTO reminders (booking_id, offset_min, due_at)"
                "  SELECT b.id, u.offset_min, u.due_at FROM b,"
                "  unnest($8::integer[], $9::timestamptz[]) AS u(offset_min, due_at))"
                " SELECT b.id, b.staff_id, st.name AS staff_name"
                " FROM b LEFT JOIN staff st ON st.id = b.staff_id",
                customer_id,
                service.id,
                starts_at,
                ends_at,
                customer_name,
                phone,
                source,
                offsets,
                dues,
                staff_id,
            )
        except asyncpg.ExclusionViolationError:
            raise SlotTakenError(starts_at) from None
        return Booking(
            id=row["id"],
            staff_id=row["staff_id"],
            staff_name=row["staff_name"],
            customer_id=customer_id,
            service_id=service.id,
            service_name=service.name,
            starts_at=starts_at,
            ends_at=ends_at,
            status="confirmed",
            customer_name=customer_name,
            phone=phone,
        )

    async def booking(self, booking_id: int) -> Booking | None:
        return await booking_by_id(self.pool, booking_id)

    async def upcoming_bookings(self, customer_id: int, now: datetime) -> list[Booking]:
        rows = await self.pool.fetch(
            BOOKING_SELECT + " WHERE b.customer_id = $1 AND b.status = 'confirmed'"
            " AND b.starts_at > $2 ORDER BY b.starts_at",
            customer_id,
            now,
        )
        return [Booking.from_row(r) for r in rows]

    async def bookings_between(
        self, start: datetime, end: datetime, *, include_cancelled: bool = False
    ) -> list[Booking]:
        rows = await self.pool.fetch(
            BOOKING_SELECT + " WHERE b.starts_at >= $1 AND b.starts_at < $2"
            " AND ($3 OR b.status <> 'cancelled') ORDER BY b.starts_at",
            start,
            end,
            include_cancelled,
        )
        return [Booking.from_row(r) for r in rows]

    async def cancel_booking(
        self, booking_id: int, *, by: str, note: str | None = None, customer_id: int | None = None
    ) -> Booking | None:
        """Cancel a confirmed booking (only the customer's own when `customer_id` is given)."""
        # A seat in a class goes back to the session in the same statement.
        row = await self.pool.fetchrow(
            "WITH c AS (UPDATE bookings SET status = 'cancelled', cancelled_by = $2,"
            " cancel_note = $3, updated_at = now() WHERE id = $1 AND status = 'confirmed'"
            " AND ($4::bigint IS NULL OR customer_id = $4) RETURNING id, session_id),"
            " s AS (UPDATE class_sessions cs SET booked = booked - 1 FROM c"
            "  WHERE cs.id = c.session_id)"
            " SELECT id FROM c",
            booking_id,
            by,
            note,
            customer_id,
        )
        if row is None:
            return None
        await self.pool.execute("DELETE FROM reminders WHERE booking_id = $1", booking_id)
        return await self.booking(booking_id)

    async def set_booking_status(self, booking_id: int, status: str) -> Booking | None:
        if status not in ("done", "no_show", "confirmed"):
            raise ValueError(f"unknown booking status {status!r}")
        row = await self.pool.fetchrow(
            "UPDATE bookings SET status = $2, updated_at = now()"
            " WHERE id = $1 AND status <> 'cancelled' RETURNING id",
            booking_id,
            status,
        )
        return await self.booking(booking_id) if row else None

    # --- a staff member's bookings, moving and rescheduling ---------------------------------
    async def upcoming_of_staff(self, staff_id: int, now: datetime) -> list[Booking]:
        """The staff member's confirmed appointments after `now` (class seats not included)."""
        rows = await self.pool.fetch(
            BOOKING_SELECT + " WHERE b.staff_id = $1 AND b.status = 'confirmed'"
            " AND b.session_id IS NULL AND b.starts_at > $2 ORDER BY b.starts_at",
            staff_id,
            now,
        )
        return [Booking.from_row(r) for r in rows]

    async def move_booking(self, booking_id: int, staff_id: int) -> Booking | None:
        """Give a confirmed booking to another staff member at the same time; None when they
        are busy then (the database refuses the overlap) or the booking is not active."""
        try:
            row = await self.pool.fetchrow(
                "UPDATE bookings SET staff_id = $2, updated_at = now()"
                " WHERE id = $1 AND status = 'confirmed' AND session_id IS NULL RETURNING id",
                booking_id,
                staff_id,
            )
        except asyncpg.ExclusionViolationError:
            return None
        return await self.booking(booking_id) if row else None

    async def reschedule_booking(
        self,
        booking_id: int,
        *,
        was: datetime,
        staff_id: int,
        starts_at: datetime,
        ends_at: datetime,
        reminders: Iterable[tuple[int, datetime]] = (),
        customer_id: int | None = None,
    ) -> Booking | None:
        """Move a confirmed appointment (only the customer's own when `customer_id` is given)
        to `starts_at`–`ends_at` with `staff_id`, keeping its number, and re-arm its reminders.
        None when it is no longer a confirmed appointment at `was` (changed meanwhile);
        SlotTakenError when the staff member is busy then (the database refuses the overlap)."""
        offsets = [offset for offset, _due in reminders]
        dues = [due for _offset, due in reminders]
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "UPDATE bookings SET starts_at = $2, ends_at = $3, staff_id = $4,"
                    " moved_at = now(), moves = moves + 1, updated_at = now()"
                    " WHERE id = $1 AND status = 'confirmed' AND session_id IS NULL"
                    " AND starts_at = $5 AND ($6::bigint IS NULL OR customer_id = $6)"
                    " RETURNING id",
                    booking_id,
                    starts_at,
                    ends_at,
                    staff_id,
                    was,
                    customer_id,
                )
                if row is None:
                    return None
                await conn.execute("DELETE FROM reminders WHERE booking_id = $1", booking_id)
                await conn.execute(
                    "INSERT INTO reminders (booking_id, offset_min, due_at)"
                    " SELECT $1, u.offset_min, u.due_at"
                    " FROM unnest($2::integer[], $3::timestamptz[]) AS u(offset_min, due_at)",
                    booking_id,
                    offsets,
                    dues,
                )
        except asyncpg.ExclusionViolationError:
            raise SlotTakenError(starts_at) from None
        return await self.booking(booking_id)

    async def staff_bookings_between(
        self, staff_id: int, start: datetime, end: datetime
    ) -> list[Booking]:
        """One staff member's bookings starting in [start, end), cancelled ones left out."""
        rows = await self.pool.fetch(
            BOOKING_SELECT + " WHERE b.staff_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3"
            " AND b.status <> 'cancelled' ORDER BY b.starts_at",
            staff_id,
            start,
            end,
        )
        return [Booking.from_row(r) for r in rows]

    async def set_staff_booking_status(
        self, booking_id: int, staff_id: int, status: str
    ) -> Booking | None:
        """Mark a confirmed booking of `staff_id` done or no-show; None when it is not theirs
        or not confirmed any more (nothing changes then)."""
        if status not in ("done", "no_show"):
            raise ValueError(f"unknown booking status {status!r}")
        row = await self.pool.fetchrow(
            "UPDATE bookings SET status = $3, updated_at = now()"
            " WHERE id = $1 AND staff_id = $2 AND status = 'confirmed' RETURNING id",
            booking_id,
            staff_id,
            status,
        )
        return await self.booking(booking_id) if row else None
