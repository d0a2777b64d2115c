"""An owner's side of auto-renewal (control.sales_subscriptions, the sales bot's table): read the
terms, turn auto-renewal on or off, remove the saved card, list the payments. One definition
for the two front ends that show it: the sales bot's /subscription (`sales_bot/store.py`
delegates here) and the owner's web (`web/subscription.py`), so a switch from either lands
under the same row lock the renewal worker holds from claiming a charge to sending it
(`SalesStore.claim_renewal`/`send_renewal`): it comes either before the charge (none is made)
or after it was sent, never in between. Charging itself stays in the sales bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

SUB_COLUMNS = (
    "tenant_id, user_id, locale, email, bot_username, business_name, plan, period_days, amount,"
    " currency, auto_renew, method_enc, card_last4, card_expiry, paid_until, next_charge_at,"
    " failures, last_failure, next_plan, next_amount, next_period_days"
)
# What a person reads of a payment (the sales bot reads every column of its orders).
PAYMENT_COLUMNS = (
    "order_id, kind, status, amount, currency, created_at, paid_at, payment_id, failure,"
    " cancel_reason"
)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A tenant's renewal terms (control.sales_subscriptions); `method_enc` is the saved card's
    id, sealed with SecretBox for the tenant."""

    tenant_id: str
    user_id: int
    locale: str
    email: str
    bot_username: str | None
    business_name: str | None
    plan: str
    period_days: int
    amount: Decimal
    currency: str
    auto_renew: bool
    method_enc: str | None
    card_last4: str | None
    card_expiry: str | None
    paid_until: datetime | None
    next_charge_at: datetime | None
    failures: int
    last_failure: str | None
    next_plan: str | None = None  # a downgrade the owner chose: from the next period
    next_amount: Decimal | None = None
    next_period_days: int | None = None

    @classmethod
    def of(cls, row: asyncpg.Record) -> Subscription:
        return cls(**dict(row))

    @property
    def has_card(self) -> bool:
        return self.method_enc is not None

    def __repr__(self) -> str:
        return f"Subscription({self.tenant_id}, auto_renew={self.auto_renew})"


async def subscriptions_of(pool: asyncpg.Pool, user_id: int) -> dict[str, Subscription]:
    """The owner's subscriptions (by Telegram id), by tenant id."""
    rows = await pool.fetch(
        f"SELECT {SUB_COLUMNS} FROM control.sales_subscriptions WHERE user_id = $1", user_id
    )
    return {r["tenant_id"]: Subscription.of(r) for r in rows}


async def set_auto_renew(
    pool: asyncpg.Pool, tenant_id: str, user_id: int, on: bool, *, renewal_days_before: int
) -> Subscription | None:
    """The owner's switch. It takes the lock the renewal worker holds from claiming a charge
    to sending it, so it lands either before the charge (none is made) or after it was sent.
    Turning it on needs a saved card; None when this is not the owner's tenant."""
    return await _switch(
        pool, tenant_id, user_id,
        "auto_renew = $3 AND method_enc IS NOT NULL,"
        " consent_at = CASE WHEN $3 AND method_enc IS NOT NULL THEN now() ELSE consent_at END,"
        " revoked_at = CASE WHEN $3 THEN revoked_at ELSE now() END",
        on, renewal_days_before,
    )  # fmt: skip


async def remove_card(
    pool: asyncpg.Pool, tenant_id: str, user_id: int, *, renewal_days_before: int
) -> Subscription | None:
    """Forget the saved card (and with it auto-renewal), under the same lock as a charge."""
    return await _switch(
        pool, tenant_id, user_id,
        "auto_renew = false, method_enc = NULL, card_last4 = NULL, card_expiry = NULL,"
        " revoked_at = CASE WHEN $3 THEN revoked_at ELSE now() END",
        False, renewal_days_before,
    )  # fmt: skip


async def _switch(
    pool: asyncpg.Pool,
    tenant_id: str,
    user_id: int,
    assignments: str,
    flag: bool,
    renewal_days_before: int,
) -> Subscription | None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL lock_timeout = '120s'")
        row = await conn.fetchrow(
            "SELECT 1 FROM control.sales_subscriptions WHERE tenant_id = $1 AND user_id = $2"
            " FOR UPDATE",
            tenant_id,
            user_id,
        )
        if row is None:
            return None
        await conn.execute(
            f"UPDATE control.sales_subscriptions SET {assignments}, updated_at = now()"
            " WHERE tenant_id = $1 AND user_id = $2",
            tenant_id,
            user_id,
            flag,
        )
        sub = await conn.fetchrow(
            "UPDATE control.sales_subscriptions SET next_charge_at = CASE WHEN auto_renew"
            " AND paid_until IS NOT NULL THEN coalesce(next_charge_at,"
            " paid_until - make_interval(days => $2)) END"
            f" WHERE tenant_id = $1 RETURNING {SUB_COLUMNS}",
            tenant_id,
            renewal_days_before,
        )
        return Subscription.of(sub)


async def payments_of(
    pool: asyncpg.Pool,
    tenant_id: str,
    user_id: int,
    limit: int = 10,
    *,
    columns: str = PAYMENT_COLUMNS,
) -> list[asyncpg.Record]:
    """The tenant's payments the owner made or was charged, newest first: every order but one
    never sent to YooKassa (a charge still being claimed, a checkout never opened)."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"SELECT {columns} FROM control.sales_orders WHERE tenant_id = $1"
        " AND user_id = $2 AND (status <> 'pending' OR payment_id IS NOT NULL)"
        " ORDER BY created_at DESC LIMIT $3",
        tenant_id,
        user_id,
        limit,
    )
    return rows
