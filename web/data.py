"""Reads of one tenant's tables for the owner's web, always through that tenant's own login role
(`TenantRuntime.pool`: its search_path is its schema, nothing else is reachable). Changes go
through the bot's own store (`client_bot.store`), so the web and /admin change data the same
way; what is only read for pages lives here, paged and counted in one round trip each."""

from __future__ import annotations

from datetime import datetime

from web.tenants import TenantRuntime

BOOKING_COLUMNS = (
    "SELECT b.id, b.customer_id, b.customer_name, b.phone, b.service_id, s.name AS service_name,"
    " st.name AS staff_name, b.starts_at, b.ends_at, b.status, b.cancel_note"
)
BOOKING_FROM = (
    " FROM bookings b JOIN services s ON s.id = b.service_id"
    " LEFT JOIN staff st ON st.id = b.staff_id"
)
BOOKING_SELECT = BOOKING_COLUMNS + BOOKING_FROM


async def bookings(
    runtime: TenantRuntime,
    start: datetime,
    end: datetime,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[dict[str, object]]]:
    """Bookings starting in [start, end), earliest first, optionally of one status. The page and
    the total come from one scan (`count(*) OVER ()`); only a page past the end counts apart."""
    where = " WHERE b.starts_at >= $1 AND b.starts_at < $2 AND ($3::text IS NULL OR b.status = $3)"
    async with runtime.pool.acquire() as conn:
        rows = await conn.fetch(
            BOOKING_COLUMNS
            + ", count(*) OVER () AS total"
            + BOOKING_FROM
            + where
            + " ORDER BY b.starts_at, b.id LIMIT $4 OFFSET $5",
            start,
            end,
            status,
            limit,
            offset,
        )
        if rows or offset == 0:
            total = int(rows[0]["total"]) if rows else 0
        else:  # a page past the end
            total = await conn.fetchval(
                "SELECT count(*) FROM bookings b" + where, start, end, status
            )
    return total, [{k: v for k, v in r.items() if k != "total"} for r in rows]


async def booking(runtime: TenantRuntime, booking_id: int) -> dict[str, object] | None:
    row = await runtime.pool.fetchrow(BOOKING_SELECT + " WHERE b.id = $1", booking_id)
    return None if row is None else dict(row)


async def customers(
    runtime: TenantRuntime, limit: int, offset: int
) -> tuple[int, list[dict[str, object]]]:
    """Customers, the most recently seen first (Telegram ones and web ones: negative ids)."""
    async with runtime.pool.acquire() as conn:
        total = await conn.fetchval("SELECT count(*) FROM customers")
        rows = await conn.fetch(
            "SELECT telegram_id AS id, first_name, username, phone,"
            " blocked_at IS NOT NULL AS blocked, created_at, last_seen_at FROM customers"
            " ORDER BY last_seen_at DESC, telegram_id LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
    return total, [dict(r) for r in rows]


async def conversations(
    runtime: TenantRuntime, limit: int, offset: int
) -> tuple[int, list[dict[str, object]]]:
    """The assistant's conversations, the latest first: who, how long, the last message, and
    whether a person has it (handoff)."""
    async with runtime.pool.acquire() as conn:
        total = await conn.fetchval("SELECT count(DISTINCT customer_id) FROM ai_messages")
        rows = await conn.fetch(
            "WITH c AS (SELECT customer_id, count(*) AS messages, max(id) AS last_id"
            "  FROM ai_messages GROUP BY customer_id"
            "  ORDER BY max(id) DESC LIMIT $1 OFFSET $2)"
            " SELECT c.customer_id, coalesce(cu.first_name, '') AS name, c.messages,"
            " m.role AS last_role, m.content AS last_text, m.created_at AS last_at,"
            " h.customer_id IS NOT NULL AS with_human"
            " FROM c JOIN ai_messages m ON m.id = c.last_id"
            " LEFT JOIN customers cu ON cu.telegram_id = c.customer_id"
            " LEFT JOIN ai_handoffs h ON h.customer_id = c.customer_id"
            " ORDER BY c.last_id DESC",
            limit,
            offset,
        )
    return total, [dict(r) for r in rows]


async def conversation(
    runtime: TenantRuntime, customer_id: int, limit: int = 200
) -> tuple[str, bool, list[dict[str, object]]] | None:
    """(name, with a person, the last `limit` messages oldest first), or None: no such
    conversation."""
    async with runtime.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM (SELECT id, role, content, created_at FROM ai_messages"
            " WHERE customer_id = $1 ORDER BY id DESC LIMIT $2) m ORDER BY id",
            customer_id,
            limit,
        )
        if not rows:
            return None
        head = await conn.fetchrow(
            "SELECT (SELECT first_name FROM customers WHERE telegram_id = $1) AS name,"
            " EXISTS (SELECT 1 FROM ai_handoffs WHERE customer_id = $1) AS with_human",
            customer_id,
        )
    return head["name"] or "", bool(head["with_human"]), [dict(r) for r in rows]
