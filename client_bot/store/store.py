"""`Store`: every query of the client bot, against the tenant's own schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from client_bot.store.assistant import AssistantStore
from client_bot.store.models import Booking, Business, Customer, Service, WorkSchedule

BUSINESS_FIELDS = frozenset(
    {
        "name",
        "welcome_text",
        "address",
        "phone",
        "map_url",
        "timezone",
        "locale",
        "slot_step",
        "buffer_min",
        "lead_time_min",
        "horizon_days",
        "cancel_cutoff_min",
        "reminder_offsets_min",
    }
)
# What the master's contract seeds (BUSINESS_NAME, LOCALE, TIMEZONE) until the owner sets it.
SEEDED_FIELDS = ("name", "locale", "timezone")
SERVICE_FIELDS = frozenset({"name", "description", "price", "duration_min"})
ACTIVE = ("confirmed", "done", "no_show")

_BOOKING_SELECT = """
    SELECT b.id, b.customer_id, b.service_id, s.name AS service_name, b.starts_at, b.ends_at,
           b.status, b.customer_name, b.phone, b.cancel_note
    FROM bookings b JOIN services s ON s.id = b.service_id
"""


class SlotTakenError(Exception):
    """Someone else booked an overlapping time first (the database said so)."""


@dataclass(frozen=True, slots=True)
class DueReminder:
    booking: Booking
    offset_min: int


@dataclass(frozen=True, slots=True)
class BroadcastState:
    id: int
    text: str
    status: str
    progress_chat_id: int | None
    progress_message_id: int | None
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Stats:
    bookings_today: int
    bookings_week: int
    per_day: list[tuple[date, int]]
    top_services: list[tuple[str, int]]
    done: int
    no_show: int
    new_customers_week: int
    customers: int

    @property
    def no_show_rate(self) -> float:
        finished = self.done + self.no_show
        return self.no_show / finished if finished else 0.0


class Store:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        # Called after every change of what the bot caches (profile, rules, schedule,
        # services, admins), so caches never go stale whoever made the change.
        self.on_change: Callable[[], None] | None = None
        self.assistant = AssistantStore(pool, self._changed)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # --- business profile and rules -------------------------------------------------------
    async def business(self) -> Business:
        row = await self.pool.fetchrow("SELECT * FROM business")
        return Business.from_row(row)

    async def update_business(self, **values: Any) -> Business:
        """The owner's (or an admin's) change: the changed seeded fields become theirs, so the
        contract no longer overwrites them (`seed_business`)."""
        unknown = values.keys() - BUSINESS_FIELDS
        if unknown or not values:
            raise ValueError(f"unknown business fields: {sorted(unknown)}")
        columns = sorted(values)
        assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=1))
        owned = [c for c in columns if c in SEEDED_FIELDS]
        row = await self.pool.fetchrow(
            f"UPDATE business SET {assignments}, updated_at = now(),"
            f" owner_set = ARRAY(SELECT DISTINCT f FROM unnest(owner_set || ${len(columns) + 1}"
            "::text[]) AS f ORDER BY f) RETURNING *",
            *(values[c] for c in columns),
            owned,
        )
        self._changed()
        return Business.from_row(row)

    async def seed_business(self, *, name: str, locale: str, timezone: str) -> Business:
        """Bring the contract's name, language and time zone (what the owner told the sales bot)
        into the profile, except the fields the owner has set in /admin since. An empty name
        leaves the profile's. Called at every start, so a contract change reaches a bot whose
        owner has not set that field."""
        wanted = {"name": name, "locale": locale, "timezone": timezone}
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM business FOR UPDATE")
            changes = {
                field: value
                for field, value in wanted.items()
                if value and field not in row["owner_set"] and row[field] != value
            }
            if changes:
                columns = sorted(changes)
                assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=1))
                row = await conn.fetchrow(
                    f"UPDATE business SET {assignments}, updated_at = now() RETURNING *",
                    *(changes[c] for c in columns),
                )
        if changes:
            self._changed()
        return Business.from_row(row)

    # --- services ---------------------------------------------------------------------------
    async def services(self, *, include_hidden: bool = False) -> list[Service]:
        rows = await self.pool.fetch(
            "SELECT * FROM services WHERE $1 OR NOT hidden ORDER BY position, id", include_hidden
        )
        return [Service.from_row(r) for r in rows]

    async def service(self, service_id: int) -> Service | None:
        row = await self.pool.fetchrow("SELECT * FROM services WHERE id = $1", service_id)
        return Service.from_row(row) if row else None

    async def add_service(
        self, name: str, price: Decimal, duration_min: int, description: str = ""
    ) -> Service:
        row = await self.pool.fetchrow(
            "INSERT INTO services (name, price, duration_min, description, position)"
            " VALUES ($1, $2, $3, $4, (SELECT coalesce(max(position), 0) + 1 FROM services))"
            " RETURNING *",
            name,
            price,
            duration_min,
            description,
        )
        self._changed()
        return Service.from_row(row)

    async def update_service(self, service_id: int, field: str, value: Any) -> Service | None:
        if field not in SERVICE_FIELDS:
            raise ValueError(f"unknown service field {field!r}")
        row = await self.pool.fetchrow(
            f"UPDATE services SET {field} = $2 WHERE id = $1 RETURNING *", service_id, value
        )
        self._changed()
        return Service.from_row(row) if row else None

    async def set_service_hidden(self, service_id: int, hidden: bool) -> None:
        await self.pool.execute("UPDATE services SET hidden = $2 WHERE id = $1", service_id, hidden)
        self._changed()

    async def move_service(self, service_id: int, delta: int) -> None:
        """Swap the service with its neighbour above (-1) or below (+1)."""
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [
                r["id"] for r in await conn.fetch("SELECT id FROM services ORDER BY position, id")
            ]
            if service_id not in ids:
                return
            i = ids.index(service_id)
            j = i + (1 if delta > 0 else -1)
            if not 0 <= j < len(ids):
                return
            ids[i], ids[j] = ids[j], ids[i]
            await conn.executemany(
                "UPDATE services SET position = $2 WHERE id = $1",
                [(sid, pos) for pos, sid in enumerate(ids, start=1)],
            )
        self._changed()

    # --- schedule ---------------------------------------------------------------------------
    async def work_schedule(self) -> WorkSchedule:
        async with self.pool.acquire() as conn:
            hours_rows = await conn.fetch("SELECT * FROM working_hours ORDER BY weekday, opens")
            break_rows = await conn.fetch("SELECT * FROM breaks ORDER BY weekday, starts")
            off_rows = await conn.fetch("SELECT day FROM days_off")
        hours: dict[int, list[tuple[time, time]]] = {}
        for r in hours_rows:
            hours.setdefault(r["weekday"], []).append((r["opens"], r["closes"]))
        return WorkSchedule(
            hours=hours,
            breaks=[(r["weekday"], r["starts"], r["ends"]) for r in break_rows],
            days_off=frozenset(r["day"] for r in off_rows),
        )

    async def set_hours(self, weekday: int, intervals: Sequence[tuple[time, time]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM working_hours WHERE weekday = $1", weekday)
            await conn.executemany(
                "INSERT INTO working_hours (weekday, opens, closes) VALUES ($1, $2, $3)",
                [(weekday, s, e) for s, e in intervals],
            )
        self._changed()

    async def set_breaks(self, weekday: int, intervals: Sequence[tuple[time, time]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM breaks WHERE weekday = $1", weekday)
            await conn.executemany(
                "INSERT INTO breaks (weekday, starts, ends) VALUES ($1, $2, $3)",
                [(weekday, s, e) for s, e in intervals],
            )
        self._changed()

    async def add_day_off(self, day: date, note: str = "") -> None:
        await self.pool.execute(
            "INSERT INTO days_off (day, note) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
            day,
            note,
        )
        self._changed()

    async def remove_day_off(self, day: date) -> None:
        await self.pool.execute("DELETE FROM days_off WHERE day = $1", day)
        self._changed()

    # --- customers and admins ----------------------------------------------------------------
    async def touch_customer(
        self,
        telegram_id: int,
        first_name: str,
        username: str | None,
        language: str | None,
        *,
        phone: str | None = None,
    ) -> bool:
        """Record the customer (a start, a booking); True when seen for the first time.
        A given `phone` is stored too (one statement)."""
        inserted = await self.pool.fetchval(
            "INSERT INTO customers (telegram_id, first_name, username, language, phone)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (telegram_id) DO UPDATE SET first_name = EXCLUDED.first_name,"
            " username = EXCLUDED.username, last_seen_at = now(), blocked_at = NULL,"
            " phone = coalesce(EXCLUDED.phone, customers.phone)"
            " RETURNING (xmax = 0)",
            telegram_id,
            first_name,
            username,
            language,
            phone,
        )
        return bool(inserted)

    async def set_customer_phone(self, telegram_id: int, phone: str) -> None:
        await self.pool.execute(
            "UPDATE customers SET phone = $2 WHERE telegram_id = $1", telegram_id, phone
        )

    async def customer(self, telegram_id: int) -> Customer | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM customers WHERE telegram_id = $1", telegram_id
        )
        return _customer(row) if row else None

    async def customers(self, *, limit: int = 20, offset: int = 0) -> tuple[int, list[Customer]]:
        async with self.pool.acquire() as conn:
            total = await conn.fetchval("SELECT count(*) FROM customers")
            rows = await conn.fetch(
                "SELECT * FROM customers ORDER BY created_at DESC LIMIT $1 OFFSET $2", limit, offset
            )
        return total, [_customer(r) for r in rows]

    async def mark_blocked(self, telegram_id: int) -> None:
        await self.pool.execute(
            "UPDATE customers SET blocked_at = now() WHERE telegram_id = $1", telegram_id
        )

    async def admin_ids(self) -> set[int]:
        return {r["telegram_id"] for r in await self.pool.fetch("SELECT telegram_id FROM admins")}

    async def add_admin(self, telegram_id: int, added_by: int) -> None:
        await self.pool.execute(
            "INSERT INTO admins (telegram_id, added_by) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            telegram_id,
            added_by,
        )
        self._changed()

    async def remove_admin(self, telegram_id: int) -> None:
        await self.pool.execute("DELETE FROM admins WHERE telegram_id = $1", telegram_id)
        self._changed()

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
    ) -> Booking:
        """Insert a confirmed booking and its due reminders; SlotTakenError when overlapping."""
        ends_at = starts_at + timedelta(minutes=service.duration_min)
        offsets = [offset for offset, _due in reminders]
        dues = [due for _offset, due in reminders]
        try:
            # One statement, so one round trip and atomic without an explicit transaction.
            booking_id = await self.pool.fetchval(
                "WITH b AS ("
                "  INSERT INTO bookings"
                "  (customer_id, service_id, starts_at, ends_at, customer_name, phone, source)"
                "  VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id),"
                " r AS (INSERT INTO reminders (booking_id, offset_min, due_at)"
                "  SELECT b.id, u.offset_min, u.due_at FROM b,"
                "  unnest($8::integer[], $9::timestamptz[]) AS u(offset_min, due_at))"
                " SELECT id FROM b",
                customer_id,
                service.id,
                starts_at,
                ends_at,
                customer_name,
                phone,
                source,
                offsets,
                dues,
            )
        except asyncpg.ExclusionViolationError:
            raise SlotTakenError(starts_at) from None
        return Booking(
            id=booking_id,
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
        row = await self.pool.fetchrow(_BOOKING_SELECT + " WHERE b.id = $1", booking_id)
        return Booking.from_row(row) if row else None

    async def upcoming_bookings(self, customer_id: int, now: datetime) -> list[Booking]:
        rows = await self.pool.fetch(
            _BOOKING_SELECT + " WHERE b.customer_id = $1 AND b.status = 'confirmed'"
            " AND b.starts_at > $2 ORDER BY b.starts_at",
            customer_id,
            now,
        )
        return [Booking.from_row(r) for r in rows]

    async def bookings_between(
        self, start: datetime, end: datetime, *, include_cancelled: bool = False
    ) -> list[Booking]:
        rows = await self.pool.fetch(
            _BOOKING_SELECT + " WHERE b.starts_at >= $1 AND b.starts_at < $2"
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
        row = await self.pool.fetchrow(
            "UPDATE bookings SET status = 'cancelled', cancelled_by = $2, cancel_note = $3,"
            " updated_at = now() WHERE id = $1 AND status = 'confirmed'"
            " AND ($4::bigint IS NULL OR customer_id = $4) RETURNING id",
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

    # --- reminders ----------------------------------------------------------------------------
    async def claim_due_reminders(self, now: datetime, limit: int = 50) -> list[DueReminder]:
        """Mark due reminders as sent and return them: each is handed out exactly once."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE reminders r SET sent_at = $1 FROM ("
                "  SELECT booking_id, offset_min FROM reminders"
                "  WHERE sent_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $2"
                "  FOR UPDATE SKIP LOCKED) due"
                " WHERE r.booking_id = due.booking_id AND r.offset_min = due.offset_min"
                " RETURNING r.booking_id, r.offset_min",
                now,
                limit,
            )
            result = []
            for r in rows:
                b = await conn.fetchrow(_BOOKING_SELECT + " WHERE b.id = $1", r["booking_id"])
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

    # --- broadcasts ---------------------------------------------------------------------------
    async def create_broadcast(self, text: str, created_by: int) -> int:
        """A broadcast to every customer who started the bot and has not blocked it."""
        async with self.pool.acquire() as conn, conn.transaction():
            broadcast_id: int = await conn.fetchval(
                "INSERT INTO broadcasts (text, created_by) VALUES ($1, $2) RETURNING id",
                text,
                created_by,
            )
            await conn.execute(
                "INSERT INTO broadcast_recipients (broadcast_id, customer_id)"
                " SELECT $1, telegram_id FROM customers WHERE blocked_at IS NULL",
                broadcast_id,
            )
        return broadcast_id

    async def set_broadcast_progress_message(
        self, broadcast_id: int, chat_id: int, message_id: int
    ) -> None:
        await self.pool.execute(
            "UPDATE broadcasts SET progress_chat_id = $2, progress_message_id = $3 WHERE id = $1",
            broadcast_id,
            chat_id,
            message_id,
        )

    async def running_broadcasts(self) -> list[int]:
        rows = await self.pool.fetch(
            "SELECT id FROM broadcasts WHERE status = 'running' ORDER BY id"
        )
        return [r["id"] for r in rows]

    async def claim_recipients(self, broadcast_id: int, limit: int) -> list[int]:
        """Move up to `limit` pending recipients to 'sending' (claimed before any send)."""
        rows = await self.pool.fetch(
            "UPDATE broadcast_recipients SET status = 'sending' WHERE broadcast_id = $1"
            " AND customer_id IN (SELECT customer_id FROM broadcast_recipients"
            "  WHERE broadcast_id = $1 AND status = 'pending' ORDER BY customer_id LIMIT $2"
            "  FOR UPDATE SKIP LOCKED) RETURNING customer_id",
            broadcast_id,
            limit,
        )
        return sorted(r["customer_id"] for r in rows)

    async def abandon_in_flight(self, broadcast_id: int) -> int:
        """After a restart: recipients left in 'sending' may have got it — never resend."""
        result: str = await self.pool.execute(
            "UPDATE broadcast_recipients SET status = 'failed', error = 'interrupted by restart'"
            " WHERE broadcast_id = $1 AND status = 'sending'",
            broadcast_id,
        )
        return int(result.split()[-1])

    async def finish_recipient(
        self, broadcast_id: int, customer_id: int, status: str, error: str | None = None
    ) -> None:
        await self.pool.execute(
            "UPDATE broadcast_recipients SET status = $3, error = $4"
            " WHERE broadcast_id = $1 AND customer_id = $2",
            broadcast_id,
            customer_id,
            status,
            error,
        )

    async def broadcast_state(self, broadcast_id: int) -> BroadcastState | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM broadcasts WHERE id = $1", broadcast_id)
            if row is None:
                return None
            counts = await conn.fetch(
                "SELECT status, count(*) AS n FROM broadcast_recipients"
                " WHERE broadcast_id = $1 GROUP BY status",
                broadcast_id,
            )
        return BroadcastState(
            id=row["id"],
            text=row["text"],
            status=row["status"],
            progress_chat_id=row["progress_chat_id"],
            progress_message_id=row["progress_message_id"],
            counts={r["status"]: r["n"] for r in counts},
        )

    async def finish_broadcast(self, broadcast_id: int) -> None:
        await self.pool.execute(
            "UPDATE broadcasts SET status = 'done', finished_at = now() WHERE id = $1", broadcast_id
        )

    # --- stats ----------------------------------------------------------------------------------
    async def stats(self, today_start: datetime, week_start: datetime, tz: str) -> Stats:
        day_end = today_start + timedelta(days=1)
        async with self.pool.acquire() as conn:
            today = await conn.fetchval(
                "SELECT count(*) FROM bookings WHERE status <> 'cancelled'"
                " AND starts_at >= $1 AND starts_at < $2",
                today_start,
                day_end,
            )
            week = await conn.fetchval(
                "SELECT count(*) FROM bookings WHERE status <> 'cancelled'"
                " AND starts_at >= $1 AND starts_at < $2",
                week_start,
                week_start + timedelta(days=7),
            )
            per_day = await conn.fetch(
                "SELECT (starts_at AT TIME ZONE $3)::date AS day, count(*) AS n FROM bookings"
                " WHERE status <> 'cancelled' AND starts_at >= $1 AND starts_at < $2"
                " GROUP BY 1 ORDER BY 1",
                week_start,
                week_start + timedelta(days=7),
                tz,
            )
            top = await conn.fetch(
                "SELECT s.name, count(*) AS n FROM bookings b"
                " JOIN services s ON s.id = b.service_id"
                " WHERE b.status <> 'cancelled' GROUP BY s.name ORDER BY n DESC, s.name LIMIT 5"
            )
            outcome = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'done') AS done,"
                " count(*) FILTER (WHERE status = 'no_show') AS no_show FROM bookings"
            )
            new_customers = await conn.fetchval(
                "SELECT count(*) FROM customers WHERE created_at >= $1", week_start
            )
            customers = await conn.fetchval("SELECT count(*) FROM customers")
        return Stats(
            bookings_today=today,
            bookings_week=week,
            per_day=[(r["day"], r["n"]) for r in per_day],
            top_services=[(r["name"], r["n"]) for r in top],
            done=outcome["done"],
            no_show=outcome["no_show"],
            new_customers_week=new_customers,
            customers=customers,
        )

    # --- admin panel ------------------------------------------------------------------------------
    async def customer_counts(self) -> tuple[int, int]:
        """(everyone who started the bot, those of them who blocked it)."""
        row = await self.pool.fetchrow(
            "SELECT count(*) AS total, count(blocked_at) AS blocked FROM customers"
        )
        return row["total"], row["blocked"]


def _customer(row: Any) -> Customer:
    return Customer(
        telegram_id=row["telegram_id"],
        first_name=row["first_name"],
        username=row["username"],
        phone=row["phone"],
        blocked=row["blocked_at"] is not None,
        created_at=row["created_at"],
    )
