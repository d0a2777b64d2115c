"""`NoticeStore`: notices to the tenant's admins, kept until Telegram delivers them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

KEEP_DAYS = 30  # delivered and abandoned notices are deleted after this


@dataclass(frozen=True, slots=True)
class PendingNotice:
    id: int
    admin_id: int
    text: str
    reply_markup: str | None  # JSON of an InlineKeyboardMarkup


class NoticeStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, admin_ids: Iterable[int], text: str, reply_markup: str | None) -> None:
        """One pending notice per admin, in one statement."""
        await self.pool.execute(
            "INSERT INTO admin_notices (admin_id, text, reply_markup)"
            " SELECT a, $2, $3::jsonb FROM unnest($1::bigint[]) AS a",
            list(admin_ids),
            text,
            reply_markup,
        )

    async def pending(self, admin_id: int, limit: int = 20) -> list[PendingNotice]:
        """The admin's undelivered notices, oldest first."""
        rows = await self.pool.fetch(
            "SELECT id, admin_id, text, reply_markup::text AS reply_markup FROM admin_notices"
            " WHERE admin_id = $1 AND sent_at IS NULL AND gave_up_at IS NULL"
            " ORDER BY id LIMIT $2",
            admin_id,
            limit,
        )
        return [PendingNotice(**dict(r)) for r in rows]

    async def has_pending(self, admin_id: int) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM admin_notices"
                " WHERE admin_id = $1 AND sent_at IS NULL AND gave_up_at IS NULL)",
                admin_id,
            )
        )

    async def pending_admins(self) -> list[int]:
        rows = await self.pool.fetch(
            "SELECT DISTINCT admin_id FROM admin_notices"
            " WHERE sent_at IS NULL AND gave_up_at IS NULL ORDER BY admin_id"
        )
        return [int(r["admin_id"]) for r in rows]

    async def sent(self, notice_id: int) -> None:
        await self.pool.execute(
            "UPDATE admin_notices SET sent_at = now(), attempts = attempts + 1 WHERE id = $1",
            notice_id,
        )

    async def failed(self, notice_id: int, error: str, *, give_up: bool) -> None:
        await self.pool.execute(
            "UPDATE admin_notices SET attempts = attempts + 1, last_error = $2,"
            " gave_up_at = CASE WHEN $3 THEN now() END WHERE id = $1",
            notice_id,
            error[:500],
            give_up,
        )

    async def lease(self, admin_id: int, seconds: float) -> bool:
        """Take the admin's delivery lease unless someone holds a live one."""
        got = await self.pool.fetchval(
            "INSERT INTO admin_notice_leases AS l (admin_id, until)"
            " VALUES ($1, now() + make_interval(secs => $2))"
            " ON CONFLICT (admin_id) DO UPDATE SET until = EXCLUDED.until"
            " WHERE l.until < now() RETURNING true",
            admin_id,
            seconds,
        )
        return bool(got)

    async def release(self, admin_id: int) -> None:
        await self.pool.execute("DELETE FROM admin_notice_leases WHERE admin_id = $1", admin_id)

    async def forget_old(self, days: int = KEEP_DAYS) -> int:
        """Delete delivered and abandoned notices older than `days`; how many."""
        result = await self.pool.execute(
            "DELETE FROM admin_notices WHERE (sent_at IS NOT NULL OR gave_up_at IS NOT NULL)"
            " AND created_at < now() - make_interval(days => $1)",
            days,
        )
        return int(result.split()[-1])
