"""`AssistantStore`: the AI assistant's queries (settings, history, leads, handoffs, usage)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

LEAD_STATUSES = ("new", "in_work", "won", "lost")
SETTINGS_FIELDS = frozenset({"enabled", "faq", "tone"})
# A second lead from the same customer within this window updates the first.
LEAD_MERGE_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class AssistantSettings:
    enabled: bool
    faq: str
    tone: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str  # user | assistant | staff
    content: str


@dataclass(frozen=True, slots=True)
class TurnState:
    """What a turn needs before calling the model, read in one round trip."""

    handoff: bool
    history: list[ChatMessage]


@dataclass(frozen=True, slots=True)
class Lead:
    id: int
    customer_id: int
    name: str
    phone: str
    interest: str
    comment: str
    status: str
    taken_by: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Lead:
        return cls(
            id=row["id"],
            customer_id=row["customer_id"],
            name=row["name"],
            phone=row["phone"],
            interest=row["interest"],
            comment=row["comment"],
            status=row["status"],
            taken_by=row["taken_by"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class SavedLead:
    lead: Lead
    created: bool  # False: an earlier lead of the customer (within 5 minutes) was updated


@dataclass(frozen=True, slots=True)
class Handoff:
    customer_id: int
    reason: str
    requested_at: datetime


class AssistantStore:
    def __init__(self, pool: asyncpg.Pool, changed: Callable[[], None]) -> None:
        self.pool = pool
        self._changed = changed

    # --- settings -------------------------------------------------------------------------
    async def settings(self) -> AssistantSettings:
        row = await self.pool.fetchrow("SELECT enabled, faq, tone FROM assistant_settings")
        return AssistantSettings(enabled=row["enabled"], faq=row["faq"], tone=row["tone"])

    async def update_settings(self, **values: Any) -> None:
        unknown = values.keys() - SETTINGS_FIELDS
        if unknown or not values:
            raise ValueError(f"unknown assistant settings: {sorted(unknown)}")
        columns = sorted(values)
        assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=1))
        await self.pool.execute(
            f"UPDATE assistant_settings SET {assignments}, updated_at = now()",
            *(values[c] for c in columns),
        )
        self._changed()

    # --- conversation ---------------------------------------------------------------------
    async def begin_turn(self, customer_id: int, content: str, limit: int) -> TurnState:
        """Store the customer's message, then read whether a person has the conversation and the
        last `limit` messages (the new one included): one statement, one round trip."""
        rows = await self.pool.fetch(
            "WITH m AS (INSERT INTO ai_messages (customer_id, role, content)"
            "  VALUES ($1, 'user', $2) RETURNING id, role, content)"
            " SELECT t.id, t.role, t.content,"
            "  EXISTS (SELECT 1 FROM ai_handoffs WHERE customer_id = $1) AS handoff"
            " FROM (SELECT id, role, content FROM m"
            "  UNION ALL (SELECT id, role, content FROM ai_messages"
            "  WHERE customer_id = $1 ORDER BY id DESC LIMIT $3)) t ORDER BY t.id",
            customer_id,
            content,
            limit - 1,
        )
        # The statement's snapshot does not see its own insert: the new row comes from `m`.
        return TurnState(
            handoff=bool(rows[0]["handoff"]),
            history=[ChatMessage(r["role"], r["content"]) for r in rows],
        )

    async def forget_messages(self, older_than_days: int) -> int:
        """Delete conversation messages older than `older_than_days`; how many went."""
        status: str = await self.pool.execute(
            "DELETE FROM ai_messages WHERE created_at < now() - make_interval(days => $1)",
            older_than_days,
        )
        return int(status.split()[-1])

    async def add_message(self, customer_id: int, role: str, content: str) -> None:
        await self.pool.execute(
            "INSERT INTO ai_messages (customer_id, role, content) VALUES ($1, $2, $3)",
            customer_id,
            role,
            content,
        )

    async def finish_turn(
        self,
        customer_id: int,
        answer: str | None,
        day: date,
        requests: int,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        """Store the assistant's answer (if any) and add the turn's usage, in one statement."""
        await self.pool.execute(
            "WITH m AS (INSERT INTO ai_messages (customer_id, role, content)"
            "  SELECT $1, 'assistant', $2 WHERE $2::text IS NOT NULL)"
            " INSERT INTO ai_usage AS u (day, requests, prompt_tokens, completion_tokens)"
            " VALUES ($3, $4, $5, $6) ON CONFLICT (day) DO UPDATE SET"
            " requests = u.requests + EXCLUDED.requests,"
            " prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,"
            " completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens",
            customer_id,
            answer,
            day,
            requests,
            prompt_tokens,
            completion_tokens,
        )

    async def history(self, customer_id: int, limit: int) -> list[ChatMessage]:
        rows = await self.pool.fetch(
            "SELECT role, content FROM (SELECT id, role, content FROM ai_messages"
            " WHERE customer_id = $1 ORDER BY id DESC LIMIT $2) t ORDER BY id",
            customer_id,
            limit,
        )
        return [ChatMessage(r["role"], r["content"]) for r in rows]

    async def usage(self, day: date) -> tuple[int, int]:
        """(requests, tokens) of `day`."""
        row = await self.pool.fetchrow(
            "SELECT requests, prompt_tokens + completion_tokens AS tokens FROM ai_usage"
            " WHERE day = $1",
            day,
        )
        return (row["requests"], row["tokens"]) if row else (0, 0)

    # --- handoff ----------------------------------------------------------------------------
    async def start_handoff(self, customer_id: int, reason: str) -> bool:
        """True when the customer was not already waiting for a person."""
        inserted = await self.pool.fetchval(
            "INSERT INTO ai_handoffs (customer_id, reason) VALUES ($1, $2)"
            " ON CONFLICT (customer_id) DO NOTHING RETURNING true",
            customer_id,
            reason,
        )
        return bool(inserted)

    async def end_handoff(self, customer_id: int) -> bool:
        """True when there was a handoff to end."""
        ended = await self.pool.fetchval(
            "DELETE FROM ai_handoffs WHERE customer_id = $1 RETURNING true", customer_id
        )
        return bool(ended)

    async def handoff(self, customer_id: int) -> Handoff | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM ai_handoffs WHERE customer_id = $1", customer_id
        )
        if row is None:
            return None
        return Handoff(row["customer_id"], row["reason"], row["requested_at"])

    # --- leads ----------------------------------------------------------------------------
    async def save_lead(
        self,
        *,
        customer_id: int,
        name: str,
        phone: str,
        interest: str,
        comment: str,
        now: datetime,
    ) -> SavedLead:
        """Insert a lead, or update the customer's lead of the last 5 minutes instead."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialise lead saves (two at once for one customer must not both insert) with a
            # lock only this tenant can take: advisory locks are database-wide, so another
            # tenant could compute the key and hold it. Leads are rare: one lock is enough.
            await conn.execute("LOCK TABLE leads IN SHARE ROW EXCLUSIVE MODE")
            row = await conn.fetchrow(
                "UPDATE leads SET name = $2, phone = $3,"
                " interest = CASE WHEN $4 = '' THEN interest ELSE $4 END,"
                " comment = CASE WHEN $5 = '' THEN comment ELSE $5 END, updated_at = $6"
                " WHERE id = (SELECT id FROM leads WHERE customer_id = $1 AND created_at > $7"
                "  ORDER BY created_at DESC, id DESC LIMIT 1) RETURNING *",
                customer_id,
                name,
                phone,
                interest,
                comment,
                now,
                now - LEAD_MERGE_WINDOW,
            )
            if row is not None:
                return SavedLead(Lead.from_row(row), created=False)
            row = await conn.fetchrow(
                "INSERT INTO leads (customer_id, name, phone, interest, comment, created_at,"
                " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *",
                customer_id,
                name,
                phone,
                interest,
                comment,
                now,
            )
        return SavedLead(Lead.from_row(row), created=True)

    async def lead(self, lead_id: int) -> Lead | None:
        row = await self.pool.fetchrow("SELECT * FROM leads WHERE id = $1", lead_id)
        return Lead.from_row(row) if row else None

    async def leads(self, *, limit: int = 10, offset: int = 0) -> tuple[int, list[Lead]]:
        async with self.pool.acquire() as conn:
            total = await conn.fetchval("SELECT count(*) FROM leads")
            rows = await conn.fetch(
                "SELECT * FROM leads ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return total, [Lead.from_row(r) for r in rows]

    async def all_leads(self) -> list[Lead]:
        rows = await self.pool.fetch("SELECT * FROM leads ORDER BY created_at, id")
        return [Lead.from_row(r) for r in rows]

    async def set_lead_status(
        self, lead_id: int, status: str, *, by: int, now: datetime
    ) -> Lead | None:
        if status not in LEAD_STATUSES:
            raise ValueError(f"unknown lead status {status!r}")
        row = await self.pool.fetchrow(
            "UPDATE leads SET status = $2, updated_at = $4,"
            " taken_by = CASE WHEN $2 = 'new' THEN NULL ELSE coalesce(taken_by, $3) END"
            " WHERE id = $1 RETURNING *",
            lead_id,
            status,
            by,
            now,
        )
        return Lead.from_row(row) if row else None

    async def take_lead(
        self, lead_id: int, admin_id: int, now: datetime
    ) -> tuple[Lead | None, bool]:
        """Give a new lead to `admin_id`; (the lead, True) when this admin got it now."""
        row = await self.pool.fetchrow(
            "UPDATE leads SET status = 'in_work', taken_by = $2, updated_at = $3"
            " WHERE id = $1 AND status = 'new' RETURNING *",
            lead_id,
            admin_id,
            now,
        )
        if row is not None:
            return Lead.from_row(row), True
        return await self.lead(lead_id), False
