"""`ClassRepository`: group classes: the weekly timetable, sessions, seats and the waitlist of
full sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, time

import asyncpg

from client_bot.store.base import Repository
from client_bot.store.bookings import BOOKING_SELECT, booking_by_id
from client_bot.store.models import Booking, ClassSession, WaitlistOffer


class SeatRefused(Exception):
    """No seat: the session is full, cancelled, gone or started (`reason` says which), or the
    customer has a seat in it already (`reason` = "already")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClassRepository(Repository):
    """Tables `class_timetable`, `class_sessions`, `class_waitlist` (a seat is a row of `bookings`)."""

    # --- group classes ------------------------------------------------------------------------
    async def add_timetable_entry(
        self,
        service_id: int,
        weekday: int,
        starts: time,
        *,
        capacity: int | None = None,
        staff_id: int | None = None,
    ) -> int:
        entry_id: int = await self.pool.fetchval(
            "INSERT INTO class_timetable (service_id, weekday, starts, capacity, staff_id)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            service_id,
            weekday,
            starts,
            capacity,
            staff_id,
        )
        self._changed()
        return entry_id

    async def remove_timetable_entry(self, entry_id: int, now: datetime) -> None:
        """Sessions after `now` nobody booked go with it; booked ones stay."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM class_sessions WHERE timetable_id = $1 AND booked = 0"
                " AND starts_at > $2 AND NOT EXISTS"
                " (SELECT 1 FROM bookings b WHERE b.session_id = class_sessions.id)",
                entry_id,
                now,
            )
            await conn.execute("DELETE FROM class_timetable WHERE id = $1", entry_id)
        self._changed()

    async def timetable(self, service_id: int | None = None) -> list[asyncpg.Record]:
        """Timetable entries (id, service_id, weekday, starts, capacity, staff_id)."""
        return list(
            await self.pool.fetch(
                "SELECT * FROM class_timetable WHERE $1::integer IS NULL OR service_id = $1"
                " ORDER BY service_id, weekday, starts",
                service_id,
            )
        )

    async def ensure_sessions(
        self, sessions: Sequence[tuple[int, datetime, datetime, int | None, int, int | None]]
    ) -> None:
        """Create the sessions (service_id, starts_at, ends_at, staff_id, capacity,
        timetable_id) that do not exist yet; existing ones, booked or not, are left alone."""
        if not sessions:
            return
        await self.pool.executemany(
            "INSERT INTO class_sessions"
            " (service_id, starts_at, ends_at, staff_id, capacity, timetable_id)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (service_id, starts_at) DO NOTHING",
            sessions,
        )

    async def add_session(
        self,
        service_id: int,
        starts_at: datetime,
        ends_at: datetime,
        capacity: int,
        staff_id: int | None = None,
    ) -> ClassSession:
        """A one-off session."""
        row = await self.pool.fetchrow(
            "INSERT INTO class_sessions (service_id, starts_at, ends_at, capacity, staff_id)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING *",
            service_id,
            starts_at,
            ends_at,
            capacity,
            staff_id,
        )
        return ClassSession.from_row(row)

    async def sessions(self, service_id: int, start: datetime, end: datetime) -> list[ClassSession]:
        """Sessions of the class starting in [start, end), cancelled ones excluded."""
        rows = await self.pool.fetch(
            "SELECT * FROM class_sessions WHERE service_id = $1 AND cancelled_at IS NULL"
            " AND starts_at >= $2 AND starts_at < $3 ORDER BY starts_at",
            service_id,
            start,
            end,
        )
        return [ClassSession.from_row(r) for r in rows]

    async def session(self, session_id: int) -> ClassSession | None:
        row = await self.pool.fetchrow("SELECT * FROM class_sessions WHERE id = $1", session_id)
        return ClassSession.from_row(row) if row else None

    async def set_session_capacity(self, session_id: int, capacity: int) -> bool:
        """False when more seats are booked than `capacity` (the CHECK refuses it)."""
        try:
            await self.pool.execute(
                "UPDATE class_sessions SET capacity = $2 WHERE id = $1", session_id, capacity
            )
        except asyncpg.CheckViolationError:
            return False
        return True

    async def book_seat(
        self,
        *,
        customer_id: int,
        session_id: int,
        not_before: datetime,
        customer_name: str,
        phone: str,
        reminders: Iterable[tuple[int, datetime]] = (),
        source: str = "menu",
    ) -> Booking:
        """Take a seat in the session and insert the booking with its reminders, in one
        statement: the session row is updated under its lock and only while seats are left, so
        concurrent confirmations never take more seats than there are. SeatRefused otherwise
        ("full", "gone" for a cancelled/missing/started session, "already")."""
        offsets = [offset for offset, _due in reminders]
        dues = [due for _offset, due in reminders]
        try:
            booking_id = await self.pool.fetchval(
                "WITH s AS (UPDATE class_sessions SET booked = booked + 1"
                "  WHERE id = $1 AND cancelled_at IS NULL AND starts_at > $2"
                "  AND booked + held < capacity"
                "  RETURNING id, service_id, staff_id, starts_at, ends_at),"
                " b AS (INSERT INTO bookings (customer_id, service_id, staff_id, session_id,"
                "  starts_at, ends_at, customer_name, phone, source)"
                "  SELECT $3, s.service_id, s.staff_id, s.id, s.starts_at, s.ends_at, $4, $5, $6"
                "  FROM s RETURNING id),"
                " r AS (INSERT INTO reminders (booking_id, offset_min, due_at)"
                "  SELECT b.id, u.offset_min, u.due_at FROM b,"
                "  unnest($7::integer[], $8::timestamptz[]) AS u(offset_min, due_at))"
                " SELECT id FROM b",
                session_id,
                not_before,
                customer_id,
                customer_name,
                phone,
                source,
                offsets,
                dues,
            )
        except asyncpg.UniqueViolationError:
            raise SeatRefused("already") from None
        if booking_id is None:
            session = await self.session(session_id)
            usable = session is not None and not session.cancelled
            raise SeatRefused(
                "full" if usable and session and session.starts_at > not_before else "gone"
            )
        booking = await booking_by_id(self.pool, booking_id)
        assert booking is not None
        return booking

    async def cancel_session(
        self, session_id: int, note: str | None = None
    ) -> list[Booking] | None:
        """The business cancels a session: every seat in it is cancelled (reminders gone), the
        waitlist closed. The cancelled bookings, or None when the session is gone or was
        cancelled already (so its customers are told once)."""
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "UPDATE class_sessions SET cancelled_at = now(), booked = 0, held = 0"
                " WHERE id = $1 AND cancelled_at IS NULL RETURNING id",
                session_id,
            )
            if found is None:
                return None
            ids = [
                r["id"]
                for r in await conn.fetch(
                    "UPDATE bookings SET status = 'cancelled', cancelled_by = 'admin',"
                    " cancel_note = $2, updated_at = now()"
                    " WHERE session_id = $1 AND status = 'confirmed' RETURNING id",
                    session_id,
                    note,
                )
            ]
            await conn.execute("DELETE FROM reminders WHERE booking_id = ANY($1::bigint[])", ids)
            await conn.execute(
                "UPDATE class_waitlist SET status = 'left' WHERE session_id = $1"
                " AND status IN ('waiting', 'offered')",
                session_id,
            )
            rows = await conn.fetch(
                BOOKING_SELECT + " WHERE b.id = ANY($1::bigint[]) ORDER BY b.id", ids
            )
        return [Booking.from_row(r) for r in rows]

    # --- waitlist of full classes ----------------------------------------------------------------
    async def join_waitlist(
        self, session_id: int, customer_id: int, customer_name: str, phone: str
    ) -> int | None:
        """Put the customer in the session's line: their place (1 = next), or None when they
        have a seat in it already. Joining twice keeps the first place."""
        async with self.pool.acquire() as conn, conn.transaction():
            seated = await conn.fetchval(
                "SELECT 1 FROM bookings WHERE session_id = $1 AND customer_id = $2"
                " AND status <> 'cancelled'",
                session_id,
                customer_id,
            )
            if seated:
                return None
            await conn.execute(
                "INSERT INTO class_waitlist (session_id, customer_id, customer_name, phone)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                session_id,
                customer_id,
                customer_name,
                phone,
            )
            place: int = await conn.fetchval(
                "SELECT count(*) FROM class_waitlist WHERE session_id = $1"
                " AND status IN ('waiting', 'offered') AND id <= (SELECT id FROM class_waitlist"
                "  WHERE session_id = $1 AND customer_id = $2"
                "  AND status IN ('waiting', 'offered'))",
                session_id,
                customer_id,
            )
        return place

    async def waitlist_pending(self) -> bool:
        """Anyone waiting or holding an offer (the waitlist worker idles otherwise)."""
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM class_waitlist"
                " WHERE status IN ('waiting', 'offered'))"
            )
        )

    async def next_offer_end(self) -> datetime | None:
        end: datetime | None = await self.pool.fetchval(
            "SELECT min(offered_until) FROM class_waitlist WHERE status = 'offered'"
        )
        return end

    async def make_waitlist_offers(
        self, now: datetime, until: Callable[[datetime], datetime | None]
    ) -> list[WaitlistOffer]:
        """Expire offers whose time is up (their seats are free again), then offer every free
        seat of a future session to its first waiting customers, the seat held for each until
        `until(session start)` (None: too late to offer). Returns the offers not yet told to
        the customer (`offer_told` marks them)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "WITH e AS (UPDATE class_waitlist SET status = 'expired'"
                "  WHERE status = 'offered' AND offered_until <= $1 RETURNING session_id)"
                " UPDATE class_sessions s SET held = s.held - x.n"
                " FROM (SELECT session_id, count(*)::integer AS n FROM e GROUP BY 1) x"
                " WHERE s.id = x.session_id",
                now,
            )
            sessions = await conn.fetch(
                "SELECT * FROM class_sessions s WHERE cancelled_at IS NULL AND starts_at > $1"
                " AND booked + held < capacity AND EXISTS (SELECT 1 FROM class_waitlist w"
                "  WHERE w.session_id = s.id AND w.status = 'waiting')"
                " ORDER BY starts_at FOR UPDATE",
                now,
            )
            for row in sessions:
                deadline = until(row["starts_at"])
                if deadline is None:
                    continue
                free = row["capacity"] - row["booked"] - row["held"]
                offered = await conn.fetchval(
                    "WITH o AS (UPDATE class_waitlist SET status = 'offered', offered_until = $3"
                    "  WHERE id IN (SELECT id FROM class_waitlist WHERE session_id = $1"
                    "  AND status = 'waiting' ORDER BY id LIMIT $2) RETURNING 1)"
                    " SELECT count(*)::integer FROM o",
                    row["id"],
                    free,
                    deadline,
                )
                await conn.execute(
                    "UPDATE class_sessions SET held = held + $2 WHERE id = $1", row["id"], offered
                )
            rows = await conn.fetch(
                "SELECT w.id AS entry_id, w.customer_id, w.offered_until, sv.name AS service_name,"
                " s.* FROM class_waitlist w JOIN class_sessions s ON s.id = w.session_id"
                " JOIN services sv ON sv.id = s.service_id"
                " WHERE w.status = 'offered' AND w.notified_at IS NULL ORDER BY w.id"
            )
        return [
            WaitlistOffer(
                r["entry_id"],
                r["customer_id"],
                ClassSession.from_row(r),
                r["service_name"],
                r["offered_until"],
            )
            for r in rows
        ]

    async def offer_told(self, entry_id: int) -> None:
        await self.pool.execute(
            "UPDATE class_waitlist SET notified_at = now() WHERE id = $1", entry_id
        )

    async def accept_offer(
        self,
        entry_id: int,
        customer_id: int,
        now: datetime,
        reminders: Callable[[datetime], Iterable[tuple[int, datetime]]],
    ) -> Booking | None:
        """Turn the customer's offer, while it lasts, into a booked seat (the held seat becomes
        theirs); None when it has expired, was declined or is not theirs."""
        async with self.pool.acquire() as conn, conn.transaction():
            offer = await conn.fetchrow(
                "UPDATE class_waitlist SET status = 'booked' WHERE id = $1 AND customer_id = $2"
                " AND status = 'offered' AND offered_until > $3"
                " RETURNING session_id, customer_name, phone",
                entry_id,
                customer_id,
                now,
            )
            if offer is None:
                return None
            session = await conn.fetchrow(
                "UPDATE class_sessions SET booked = booked + 1, held = held - 1 WHERE id = $1"
                " RETURNING *",
                offer["session_id"],
            )
            due = list(reminders(session["starts_at"]))
            booking_id = await conn.fetchval(
                "INSERT INTO bookings (customer_id, service_id, staff_id, session_id, starts_at,"
                " ends_at, customer_name, phone, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
                " 'waitlist') RETURNING id",
                customer_id,
                session["service_id"],
                session["staff_id"],
                session["id"],
                session["starts_at"],
                session["ends_at"],
                offer["customer_name"],
                offer["phone"],
            )
            await conn.executemany(
                "INSERT INTO reminders (booking_id, offset_min, due_at) VALUES ($1, $2, $3)",
                [(booking_id, offset, at) for offset, at in due],
            )
        return await booking_by_id(self.pool, booking_id)

    async def decline_offer(self, entry_id: int, customer_id: int) -> bool:
        """The customer gives the offered seat (or their place in the line) up."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE class_waitlist w SET status = 'left' FROM class_waitlist old"
                " WHERE w.id = $1 AND w.customer_id = $2 AND old.id = w.id"
                " AND w.status IN ('waiting', 'offered') RETURNING w.session_id, old.status",
                entry_id,
                customer_id,
            )
            if row is None:
                return False
            if row["status"] == "offered":
                await conn.execute(
                    "UPDATE class_sessions SET held = held - 1 WHERE id = $1", row["session_id"]
                )
        return True
