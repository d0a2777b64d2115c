"""`Store`: every query of the client bot, against the tenant's own schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from client_bot.booking.templates import BusinessTemplate, business_template
from client_bot.store.assistant import AssistantStore
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
    WorkSchedule,
)

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
SERVICE_FIELDS = frozenset({"name", "description", "price", "duration_min", "capacity"})
STAFF_FIELDS = frozenset({"name", "description", "all_services", "active", "photo_file_id"})
# The first staff member's name as migration 0007 made it: a seeded category may rename it.
DEFAULT_STAFF_NAMES = ("Специалист", "Specialist")
ACTIVE = ("confirmed", "done", "no_show")

_BOOKING_SELECT = """
    SELECT b.id, b.customer_id, b.service_id, s.name AS service_name, b.starts_at, b.ends_at,
           b.status, b.customer_name, b.phone, b.cancel_note, b.staff_id, st.name AS staff_name,
           b.session_id
    FROM bookings b JOIN services s ON s.id = b.service_id LEFT JOIN staff st ON st.id = b.staff_id
"""


class SlotTakenError(Exception):
    """Someone else booked an overlapping time first (the database said so)."""


class SeatRefused(Exception):
    """No seat: the session is full, cancelled, gone or started (`reason` says which), or the
    customer has a seat in it already (`reason` = "already")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    # (staff name, bookings this week, done, no-shows) per staff member, in staff order.
    per_staff: list[tuple[str, int, int, int]]

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

    async def seed_business(
        self, *, name: str, locale: str, timezone: str, category: str = ""
    ) -> Business:
        """Bring the contract's name, language and time zone (what the owner told the sales bot)
        into the profile, except the fields the owner has set in /admin since. An empty name
        leaves the profile's. Called at every start, so a contract change reaches a bot whose
        owner has not set that field.

        The first start with a `category` (BUSINESS_CATEGORY) also makes the business bookable
        at once: example services, typical hours and, for classes, a timetable, in the
        business's language (`client_bot.booking.templates`), and names the first staff member
        for the trade. Only once, and only into an empty business: a business with services or
        hours of its own keeps them (the category is recorded as "")."""
        wanted = {"name": name, "locale": locale, "timezone": timezone}
        seeded = False
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
            if category and row["category"] is None:
                template = business_template(category, row["locale"])
                seeded = template is not None and await self._seed_template(conn, template)
                row = await conn.fetchrow(
                    "UPDATE business SET category = $1 RETURNING *", category if seeded else ""
                )
        if changes or seeded:
            self._changed()
        return Business.from_row(row)

    @staticmethod
    async def _seed_template(conn: asyncpg.Connection, template: BusinessTemplate) -> bool:
        """Write `template` into an empty business (no services, no hours); False if not empty."""
        has_own = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM services) OR EXISTS (SELECT 1 FROM working_hours)"
        )
        if has_own:
            return False
        await conn.executemany(
            "INSERT INTO working_hours (weekday, opens, closes) VALUES ($1, $2, $3)",
            [(wd, opens, closes) for days, opens, closes in template.hours for wd in days],
        )
        await conn.executemany(
            "INSERT INTO breaks (weekday, starts, ends) VALUES ($1, $2, $3)",
            [(wd, starts, ends) for days, starts, ends in template.breaks for wd in days],
        )
        for position, svc in enumerate(template.services, start=1):
            service_id = await conn.fetchval(
                "INSERT INTO services (name, price, duration_min, description, position, capacity)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                svc.name,
                svc.price,
                svc.duration_min,
                svc.description,
                position,
                svc.capacity,
            )
            await conn.executemany(
                "INSERT INTO class_timetable (service_id, weekday, starts) VALUES ($1, $2, $3)",
                [(service_id, wd, starts) for wd, starts in svc.timetable],
            )
        await conn.execute(
            "UPDATE staff SET name = $1 WHERE name = ANY($2::text[])"
            " AND (SELECT count(*) FROM staff) = 1",
            template.staff_name,
            list(DEFAULT_STAFF_NAMES),
        )
        return True

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

    async def set_week_hours(
        self, hours: Sequence[tuple[int, Sequence[tuple[time, time]]]]
    ) -> None:
        """Several weekdays' hours at once (weekday, intervals), in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM working_hours WHERE weekday = ANY($1::smallint[])",
                [wd for wd, _ in hours],
            )
            await conn.executemany(
                "INSERT INTO working_hours (weekday, opens, closes) VALUES ($1, $2, $3)",
                [(wd, s, e) for wd, intervals in hours for s, e in intervals],
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

    # --- staff ------------------------------------------------------------------------------
    async def staff(self, *, include_inactive: bool = False) -> list[Staff]:
        rows = await self.pool.fetch(
            "SELECT * FROM staff WHERE $1 OR active ORDER BY position, id", include_inactive
        )
        return [Staff.from_row(r) for r in rows]

    async def staff_member(self, staff_id: int) -> Staff | None:
        row = await self.pool.fetchrow("SELECT * FROM staff WHERE id = $1", staff_id)
        return Staff.from_row(row) if row else None

    async def add_staff(self, name: str, description: str = "") -> Staff:
        row = await self.pool.fetchrow(
            "INSERT INTO staff (name, description, position)"
            " VALUES ($1, $2, (SELECT coalesce(max(position), 0) + 1 FROM staff)) RETURNING *",
            name,
            description,
        )
        self._changed()
        return Staff.from_row(row)

    async def update_staff(self, staff_id: int, field: str, value: Any) -> Staff | None:
        if field not in STAFF_FIELDS:
            raise ValueError(f"unknown staff field {field!r}")
        row = await self.pool.fetchrow(
            f"UPDATE staff SET {field} = $2 WHERE id = $1 RETURNING *", staff_id, value
        )
        self._changed()
        return Staff.from_row(row) if row else None

    async def set_staff_hours(
        self, staff_id: int, weekday: int, intervals: Sequence[tuple[time, time]]
    ) -> None:
        """The staff member's own hours of one weekday; from now on they keep their own week
        (a staff member on the business's hours starts from a copy of them)."""
        async with self.pool.acquire() as conn, conn.transaction():
            own = await conn.fetchval(
                "SELECT own_hours FROM staff WHERE id = $1 FOR UPDATE", staff_id
            )
            if own is None:
                return
            if not own:
                await conn.execute(
                    "INSERT INTO staff_hours (staff_id, weekday, opens, closes)"
                    " SELECT $1, weekday, opens, closes FROM working_hours",
                    staff_id,
                )
                await conn.execute(
                    "INSERT INTO staff_breaks (staff_id, weekday, starts, ends)"
                    " SELECT $1, weekday, starts, ends FROM breaks",
                    staff_id,
                )
                await conn.execute("UPDATE staff SET own_hours = true WHERE id = $1", staff_id)
            await conn.execute(
                "DELETE FROM staff_hours WHERE staff_id = $1 AND weekday = $2", staff_id, weekday
            )
            await conn.executemany(
                "INSERT INTO staff_hours (staff_id, weekday, opens, closes) VALUES ($1, $2, $3, $4)",
                [(staff_id, weekday, s, e) for s, e in intervals],
            )
        self._changed()

    async def use_business_hours(self, staff_id: int) -> None:
        """Back to the business's hours and breaks (the own ones are forgotten)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM staff_hours WHERE staff_id = $1", staff_id)
            await conn.execute("DELETE FROM staff_breaks WHERE staff_id = $1", staff_id)
            await conn.execute("UPDATE staff SET own_hours = false WHERE id = $1", staff_id)
        self._changed()

    async def set_staff_breaks(
        self, staff_id: int, weekday: int, intervals: Sequence[tuple[time, time]]
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM staff_breaks WHERE staff_id = $1 AND weekday = $2", staff_id, weekday
            )
            await conn.executemany(
                "INSERT INTO staff_breaks (staff_id, weekday, starts, ends) VALUES ($1, $2, $3, $4)",
                [(staff_id, weekday, s, e) for s, e in intervals],
            )
        self._changed()

    async def add_staff_day_off(self, staff_id: int, day: date) -> None:
        await self.pool.execute(
            "INSERT INTO staff_days_off (staff_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            staff_id,
            day,
        )
        self._changed()

    async def remove_staff_day_off(self, staff_id: int, day: date) -> None:
        await self.pool.execute(
            "DELETE FROM staff_days_off WHERE staff_id = $1 AND day = $2", staff_id, day
        )
        self._changed()

    async def set_staff_service(
        self,
        staff_id: int,
        service_id: int,
        *,
        price: Decimal | None = None,
        duration_min: int | None = None,
    ) -> None:
        """The staff member performs the service (at their own price/duration when given)."""
        await self.pool.execute(
            "INSERT INTO staff_services (staff_id, service_id, price, duration_min)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (staff_id, service_id)"
            " DO UPDATE SET price = EXCLUDED.price, duration_min = EXCLUDED.duration_min",
            staff_id,
            service_id,
            price,
            duration_min,
        )
        self._changed()

    async def set_staff_performs(self, staff_id: int, service_id: int, performs: bool) -> None:
        """Add the service to the staff member's list or take it off. A staff member doing every
        service who stops doing one gets a list of all the others."""
        async with self.pool.acquire() as conn, conn.transaction():
            every = await conn.fetchval(
                "SELECT all_services FROM staff WHERE id = $1 FOR UPDATE", staff_id
            )
            if every is None or (every and performs):
                return
            if every:
                await conn.execute(
                    "INSERT INTO staff_services (staff_id, service_id)"
                    " SELECT $1, id FROM services ON CONFLICT DO NOTHING",
                    staff_id,
                )
                await conn.execute("UPDATE staff SET all_services = false WHERE id = $1", staff_id)
            if performs:
                await conn.execute(
                    "INSERT INTO staff_services (staff_id, service_id) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    staff_id,
                    service_id,
                )
            else:
                await conn.execute(
                    "DELETE FROM staff_services WHERE staff_id = $1 AND service_id = $2",
                    staff_id,
                    service_id,
                )
        self._changed()

    async def staff_terms(self, staff_id: int) -> dict[int, tuple[Decimal | None, int | None]]:
        """The staff member's listed services: {service_id: (own price, own minutes)}."""
        rows = await self.pool.fetch(
            "SELECT service_id, price, duration_min FROM staff_services WHERE staff_id = $1",
            staff_id,
        )
        return {r["service_id"]: (r["price"], r["duration_min"]) for r in rows}

    async def upcoming_of_staff(self, staff_id: int, now: datetime) -> list[Booking]:
        """The staff member's confirmed appointments after `now` (class seats not included)."""
        rows = await self.pool.fetch(
            _BOOKING_SELECT + " WHERE b.staff_id = $1 AND b.status = 'confirmed'"
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

    # --- staff in Telegram ----------------------------------------------------------------------
    async def add_staff_invite(
        self, staff_id: int, code_hash: bytes, created_by: int, expires_at: datetime
    ) -> bool:
        """Keep a new invite of an existing staff member (False: no such staff member)."""
        row = await self.pool.fetchrow(
            "INSERT INTO staff_invites (code_hash, staff_id, created_by, expires_at)"
            " SELECT $1, id, $3, $4 FROM staff WHERE id = $2 RETURNING staff_id",
            code_hash,
            staff_id,
            created_by,
            expires_at,
        )
        return row is not None

    async def redeem_staff_invite(
        self, code_hash: bytes, telegram_id: int, now: datetime
    ) -> Staff | None:
        """Use an unused, unexpired invite of an active staff member once: the Telegram account
        becomes theirs (and no other staff member's). None when there is no such invite."""
        async with self.pool.acquire() as conn, conn.transaction():
            staff_id = await conn.fetchval(
                "UPDATE staff_invites i SET used_at = $3, used_by = $2 FROM staff st"
                " WHERE i.code_hash = $1 AND i.used_at IS NULL AND i.expires_at > $3"
                " AND st.id = i.staff_id AND st.active RETURNING i.staff_id",
                code_hash,
                telegram_id,
                now,
            )
            if staff_id is None:
                return None
            await conn.execute(
                "UPDATE staff SET telegram_id = NULL WHERE telegram_id = $1 AND id <> $2",
                telegram_id,
                staff_id,
            )
            row = await conn.fetchrow(
                "UPDATE staff SET telegram_id = $2 WHERE id = $1 RETURNING *",
                staff_id,
                telegram_id,
            )
        self._changed()
        return Staff.from_row(row)

    async def staff_by_telegram(self, telegram_id: int) -> Staff | None:
        """The active staff member linked to this Telegram account, if any."""
        row = await self.pool.fetchrow(
            "SELECT * FROM staff WHERE telegram_id = $1 AND active", telegram_id
        )
        return Staff.from_row(row) if row else None

    async def unlink_staff(self, staff_id: int) -> None:
        await self.pool.execute("UPDATE staff SET telegram_id = NULL WHERE id = $1", staff_id)
        self._changed()

    async def staff_bookings_between(
        self, staff_id: int, start: datetime, end: datetime
    ) -> list[Booking]:
        """One staff member's bookings starting in [start, end), cancelled ones left out."""
        rows = await self.pool.fetch(
            _BOOKING_SELECT + " WHERE b.staff_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3"
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

    async def remove_staff_service(self, staff_id: int, service_id: int) -> None:
        await self.pool.execute(
            "DELETE FROM staff_services WHERE staff_id = $1 AND service_id = $2",
            staff_id,
            service_id,
        )
        self._changed()

    async def staff_service_ids(self, staff_id: int) -> set[int]:
        rows = await self.pool.fetch(
            "SELECT service_id FROM staff_services WHERE staff_id = $1", staff_id
        )
        return {r["service_id"] for r in rows}

    async def offers(self, service_id: int) -> list[StaffOffer]:
        """Active staff members who perform the service, at their price and duration."""
        rows = await self.pool.fetch(
            "SELECT st.*, coalesce(ss.price, s.price) AS offer_price,"
            " coalesce(ss.duration_min, s.duration_min) AS offer_duration"
            " FROM staff st JOIN services s ON s.id = $1"
            " LEFT JOIN staff_services ss ON ss.staff_id = st.id AND ss.service_id = s.id"
            " WHERE st.active AND (st.all_services OR ss.staff_id IS NOT NULL)"
            " ORDER BY st.position, st.id",
            service_id,
        )
        return [StaffOffer(Staff.from_row(r), r["offer_price"], r["offer_duration"]) for r in rows]

    async def staff_weeks(self, staff_ids: Sequence[int]) -> dict[int, StaffWeek]:
        """Own hours, breaks and days off of these staff members."""
        async with self.pool.acquire() as conn:
            own = await conn.fetch(
                "SELECT id, own_hours FROM staff WHERE id = ANY($1::integer[])", list(staff_ids)
            )
            hours = await conn.fetch(
                "SELECT * FROM staff_hours WHERE staff_id = ANY($1::integer[])"
                " ORDER BY weekday, opens",
                list(staff_ids),
            )
            breaks = await conn.fetch(
                "SELECT * FROM staff_breaks WHERE staff_id = ANY($1::integer[])"
                " ORDER BY weekday, starts",
                list(staff_ids),
            )
            off = await conn.fetch(
                "SELECT * FROM staff_days_off WHERE staff_id = ANY($1::integer[])",
                list(staff_ids),
            )
        weeks: dict[int, StaffWeek] = {}
        for r in own:
            sid = r["id"]
            week_hours: dict[int, list[tuple[time, time]]] = {}
            for h in hours:
                if h["staff_id"] == sid:
                    week_hours.setdefault(h["weekday"], []).append((h["opens"], h["closes"]))
            weeks[sid] = StaffWeek(
                own_hours=r["own_hours"],
                hours=week_hours,
                breaks=[
                    (b["weekday"], b["starts"], b["ends"]) for b in breaks if b["staff_id"] == sid
                ],
                days_off=frozenset(d["day"] for d in off if d["staff_id"] == sid),
            )
        return weeks

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
        booking = await self.booking(booking_id)
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
                _BOOKING_SELECT + " WHERE b.id = ANY($1::bigint[]) ORDER BY b.id", ids
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
        return await self.booking(booking_id)

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
        """Move up to `limit` pending recipients to 'sending' (claimed before any send).

        The rows are picked first, then updated: `UPDATE … WHERE id IN (SELECT … LIMIT n)`
        planned as a nested-loop semi join re-runs the LIMIT subquery per row and claims far
        more than `limit` (a restart then abandons them all). A MATERIALIZED CTE runs once."""
        rows = await self.pool.fetch(
            "WITH picked AS MATERIALIZED (SELECT customer_id FROM broadcast_recipients"
            "  WHERE broadcast_id = $1 AND status = 'pending' ORDER BY customer_id LIMIT $2"
            "  FOR UPDATE SKIP LOCKED)"
            " UPDATE broadcast_recipients r SET status = 'sending' FROM picked"
            " WHERE r.broadcast_id = $1 AND r.customer_id = picked.customer_id"
            " RETURNING r.customer_id",
            broadcast_id,
            limit,
        )
        return sorted(r["customer_id"] for r in rows)

    async def release_recipient(self, broadcast_id: int, customer_id: int) -> None:
        """Give a claimed recipient back (nothing was sent): nobody stays 'sending' while the
        worker waits, so a restart meanwhile does not abandon them."""
        await self.pool.execute(
            "UPDATE broadcast_recipients SET status = 'pending'"
            " WHERE broadcast_id = $1 AND customer_id = $2 AND status = 'sending'",
            broadcast_id,
            customer_id,
        )

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
            per_staff = await conn.fetch(
                "SELECT st.name,"
                " count(b.id) FILTER (WHERE b.status <> 'cancelled'"
                "   AND b.starts_at >= $1 AND b.starts_at < $2) AS week,"
                " count(b.id) FILTER (WHERE b.status = 'done') AS done,"
                " count(b.id) FILTER (WHERE b.status = 'no_show') AS no_show"
                " FROM staff st LEFT JOIN bookings b ON b.staff_id = st.id"
                " GROUP BY st.id HAVING st.active OR count(b.id) > 0"
                " ORDER BY st.position, st.id",
                week_start,
                week_start + timedelta(days=7),
            )
        return Stats(
            bookings_today=today,
            bookings_week=week,
            per_day=[(r["day"], r["n"]) for r in per_day],
            top_services=[(r["name"], r["n"]) for r in top],
            done=outcome["done"],
            no_show=outcome["no_show"],
            new_customers_week=new_customers,
            customers=customers,
            per_staff=[(r["name"], r["week"], r["done"], r["no_show"]) for r in per_staff],
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
