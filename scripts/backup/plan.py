"""Whether one pg_dump fits PostgreSQL's shared lock table (`--mode auto`, `check`).

pg_dump holds an ACCESS SHARE lock on every table it dumps, in one transaction, and all locks
live in one shared table of max_locks_per_transaction x (max_connections +
max_prepared_transactions) slots: a dump that needs more than half of it is taken per schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

LOCKED_KINDS = ("r", "p", "S", "v", "m", "f")  # conservative: what pg_dump may lock


@dataclass(frozen=True, slots=True)
class LockBudget:
    relations: int
    max_locks_per_transaction: int
    max_connections: int
    max_prepared_transactions: int

    @property
    def capacity(self) -> int:
        """Slots of the shared lock table."""
        return self.max_locks_per_transaction * (
            self.max_connections + self.max_prepared_transactions
        )

    @property
    def allowance(self) -> int:
        """What one dump may take: half the table, the rest stays for the running platform."""
        return self.capacity // 2

    @property
    def fits(self) -> bool:
        return self.relations <= self.allowance

    def needed_max_locks(self) -> int:
        """The smallest max_locks_per_transaction with which a single dump would fit."""
        slots = self.max_connections + self.max_prepared_transactions
        return -(-2 * self.relations // max(1, slots))

    def explain(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        text = (
            f"a single pg_dump locks ~{self.relations} relations; the lock table has "
            f"{self.capacity} slots (max_locks_per_transaction={self.max_locks_per_transaction}"
            f" x (max_connections={self.max_connections} + max_prepared_transactions="
            f"{self.max_prepared_transactions})), half of it allowed for the dump: {verdict}"
        )
        if not self.fits:
            text += (
                f". Dumping per schema instead; for single-file dumps raise "
                f"max_locks_per_transaction to at least {self.needed_max_locks()} (restart needed)"
            )
        return text


async def lock_budget(conn: asyncpg.Connection) -> LockBudget:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "        WHERE c.relkind::text = ANY($1::text[])"
        "          AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        "          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%') AS rels,"
        " current_setting('max_locks_per_transaction')::int AS locks,"
        " current_setting('max_connections')::int AS conns,"
        " current_setting('max_prepared_transactions')::int AS prepared",
        list(LOCKED_KINDS),
    )
    assert row is not None
    return LockBudget(row["rels"], row["locks"], row["conns"], row["prepared"])


async def tenant_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE nspname ~ '^client_[0-9]{1,12}$' ORDER BY nspname"
    )
    return [r["nspname"] for r in rows]
