"""`StaffRepository`: staff members, their own hours, breaks, days off and services, the offers
of a service, and their Telegram link (invites)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from client_bot.store.base import Repository
from client_bot.store.models import Staff, StaffOffer, StaffWeek

STAFF_FIELDS = frozenset({"name", "description", "all_services", "active", "photo_file_id"})


class StaffRepository(Repository):
    """Tables `staff`, `staff_hours`, `staff_breaks`, `staff_days_off`, `staff_services`,
    `staff_invites`."""

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
