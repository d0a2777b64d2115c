"""Subscription figures for operators (issue 17), read from the sales bot's tables and the
master's `control.tenants` — one definition for `make stats` (scripts/stats.py) and the
operators' /stats (master_bot/operator/stats.py), and the claim behind failed-renewal alerts.

- **MRR**: the monthly value (amount × 30 / period days) of every subscription whose tenant is
  active or stopped and paid up (`control.tenants.expires_at` after now), auto-renewing or not;
- **renewals due this week**: auto-renewal on and the next charge within 7 days (or overdue);
- **failed renewals this month**: renewal charges declined or refused since the month began (not
  the ones an opt-out or a removed card stopped);
- **churn this month**: tenants whose paid period ended since the month began and that were not
  renewed (their end is still in the past).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

WEEK = timedelta(days=7)
_STOPPED_BY_OWNER = "('opted_out', 'card_removed')"


@dataclass(frozen=True, slots=True)
class SubscriptionFigures:
    mrr: Decimal
    currency: str
    paying: int  # subscriptions counted in the MRR
    renewals_due_week: int
    renewals_failed: int
    churned: tuple[str, ...] = field(default_factory=tuple)  # tenant ids, this month


@dataclass(frozen=True, slots=True)
class FailedRenewal:
    order_id: str
    tenant_id: str
    amount: Decimal
    currency: str
    reason: str
    bot_username: str | None


async def subscription_figures(
    conn: asyncpg.Connection, now: datetime, month_start: datetime
) -> SubscriptionFigures | None:
    """The figures at `now`; None when the sales bot's tables are not here."""
    if not await conn.fetchval("SELECT to_regclass('control.sales_subscriptions') IS NOT NULL"):
        return None
    row = await conn.fetchrow(
        "SELECT coalesce(sum(round(s.amount * 30 / s.period_days, 2)), 0) AS mrr,"
        " count(*) AS paying, coalesce(min(s.currency), 'RUB') AS currency"
        " FROM control.sales_subscriptions s JOIN control.tenants t USING (tenant_id)"
        " WHERE t.status IN ('active', 'stopped') AND t.expires_at > $1",
        now,
    )
    due = await conn.fetchval(
        "SELECT count(*) FROM control.sales_subscriptions WHERE auto_renew AND next_charge_at < $1",
        now + WEEK,
    )
    failed = await conn.fetchval(
        "SELECT count(*) FROM control.sales_orders WHERE kind = 'renewal' AND status = 'canceled'"
        f" AND coalesce(cancel_reason, '') NOT IN {_STOPPED_BY_OWNER} AND canceled_at >= $1",
        month_start,
    )
    churned = await conn.fetch(
        "SELECT tenant_id FROM control.tenants WHERE status <> 'provisioning'"
        " AND expires_at >= $1 AND expires_at <= $2 ORDER BY number",
        month_start,
        now,
    )
    assert row is not None
    return SubscriptionFigures(
        mrr=Decimal(row["mrr"]),
        currency=str(row["currency"]),
        paying=int(row["paying"]),
        renewals_due_week=int(due),
        renewals_failed=int(failed),
        churned=tuple(r["tenant_id"] for r in churned),
    )


async def claim_failed_renewals(
    conn: asyncpg.Connection, within: timedelta = timedelta(days=2)
) -> list[FailedRenewal]:
    """Failed renewal charges of the last `within` not alerted yet, each returned once (the
    claim is a row of control.renewal_alerts, written in the same statement)."""
    if not await conn.fetchval("SELECT to_regclass('control.renewal_alerts') IS NOT NULL"):
        return []
    rows = await conn.fetch(
        "WITH failed AS (SELECT order_id, tenant_id, amount, currency, bot_username,"
        " coalesce(cancel_reason, 'unknown') AS reason FROM control.sales_orders"
        " WHERE kind = 'renewal' AND status = 'canceled'"
        f" AND coalesce(cancel_reason, '') NOT IN {_STOPPED_BY_OWNER}"
        " AND canceled_at > now() - make_interval(secs => $1)),"
        " claimed AS (INSERT INTO control.renewal_alerts (order_id) SELECT order_id FROM failed"
        " ON CONFLICT DO NOTHING RETURNING order_id)"
        " SELECT f.* FROM failed f JOIN claimed USING (order_id) ORDER BY f.order_id",
        within.total_seconds(),
    )
    return [
        FailedRenewal(
            r["order_id"], r["tenant_id"], Decimal(r["amount"]), r["currency"], r["reason"],
            r["bot_username"],
        )
        for r in rows
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class PlannedRenewal:
    """The next charge of a tenant's saved card, as the sales bot plans it."""

    next_charge_at: datetime
    amount: Decimal
    currency: str
    card_last4: str | None


async def planned_renewal(conn: asyncpg.Connection, tenant_id: str) -> PlannedRenewal | None:
    """The tenant's next auto-renewal charge when one is planned (auto-renewal on, a saved card,
    no declined attempt this period); None otherwise, or without the sales bot's tables. The
    master's expiry reminders say it instead of "extend it"."""
    if not await conn.fetchval("SELECT to_regclass('control.sales_subscriptions') IS NOT NULL"):
        return None
    row = await conn.fetchrow(
        "SELECT next_charge_at, coalesce(next_amount, amount) AS amount, currency, card_last4"
        " FROM control.sales_subscriptions WHERE tenant_id = $1 AND auto_renew"
        " AND method_enc IS NOT NULL AND next_charge_at IS NOT NULL AND failures = 0",
        tenant_id,
    )
    if row is None:
        return None
    return PlannedRenewal(
        row["next_charge_at"], Decimal(row["amount"]), row["currency"], row["card_last4"]
    )
