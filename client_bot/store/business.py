"""`BusinessRepository`: the business's profile and rules, its services and its week (hours,
breaks, days off), and the seeding of a new business from the contract and its category."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time
from decimal import Decimal
from typing import Any

import asyncpg

from client_bot.booking.templates import BusinessTemplate, business_template
from client_bot.store.base import Repository
from client_bot.store.models import Business, Service, WorkSchedule

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
# The first staff member's name as migration 0007 made it: a seeded category may rename it.
DEFAULT_STAFF_NAMES = ("Специалист", "Specialist")


class BusinessRepository(Repository):
    """Tables `business`, `services`, `working_hours`, `breaks`, `days_off`."""

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
