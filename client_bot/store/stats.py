"""`StatsRepository`: the owner's /admin statistics (bookings, outcomes, customers, staff)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from client_bot.store.base import Repository


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


class StatsRepository(Repository):
    """Reads `bookings`, `services`, `customers` and `staff`; writes nothing."""

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
