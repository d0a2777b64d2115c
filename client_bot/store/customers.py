"""`CustomerRepository`: the customers who started the bot, and the bot's admins."""

from __future__ import annotations

from typing import Any

from client_bot.store.base import Repository
from client_bot.store.models import Customer


class CustomerRepository(Repository):
    """Tables `customers` and `admins`."""

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
