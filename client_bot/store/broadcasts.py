"""`BroadcastRepository`: broadcasts to every customer and the claims of their recipients."""

from __future__ import annotations

from dataclasses import dataclass

from client_bot.store.base import Repository


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


class BroadcastRepository(Repository):
    """Tables `broadcasts` and `broadcast_recipients`."""

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
