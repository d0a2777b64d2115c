"""`LeadNotes`: what the business's people note on a lead (tenant migration 0013), written in
/admin → Leads and on the owner's web alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

NOTE_MAX = 1000
NOTE_VIA = ("telegram", "web")


@dataclass(frozen=True, slots=True)
class LeadNote:
    id: int
    lead_id: int
    author_id: int
    via: str  # telegram | web
    body: str
    created_at: datetime


class LeadNotes:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, lead_id: int, author_id: int, body: str, via: str) -> LeadNote | None:
        """The note, or None when there is no such lead."""
        if via not in NOTE_VIA:
            raise ValueError(f"unknown note origin {via!r}")
        if not 1 <= len(body) <= NOTE_MAX:
            raise ValueError(f"a note is 1..{NOTE_MAX} characters")
        row = await self.pool.fetchrow(
            "INSERT INTO lead_notes (lead_id, author_id, via, body)"
            " SELECT id, $2, $3, $4 FROM leads WHERE id = $1 RETURNING *",
            lead_id,
            author_id,
            via,
            body,
        )
        return None if row is None else LeadNote(**dict(row))

    async def of_lead(self, lead_id: int, limit: int = 50) -> list[LeadNote]:
        """The lead's last `limit` notes, oldest first."""
        rows = await self.pool.fetch(
            "SELECT * FROM (SELECT * FROM lead_notes WHERE lead_id = $1 ORDER BY id DESC"
            " LIMIT $2) n ORDER BY id",
            lead_id,
            limit,
        )
        return [LeadNote(**dict(r)) for r in rows]

    async def counts(self, lead_ids: Sequence[int]) -> dict[int, int]:
        """How many notes each of these leads has (those with none are absent)."""
        rows = await self.pool.fetch(
            "SELECT lead_id, count(*) AS n FROM lead_notes WHERE lead_id = ANY($1::bigint[])"
            " GROUP BY lead_id",
            list(lead_ids),
        )
        return {int(r["lead_id"]): int(r["n"]) for r in rows}
