"""The sales bot's data layer (control.sales_*): plain SQL with $n parameters, nothing else.

No connection is held across a call to Telegram, YooKassa or the master: every method takes a
connection from the pool, runs its statements and gives it back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from sales_bot.orders import (
    Action,
    OrderFacts,
    OrderKind,
    OrderStatus,
    Transition,
    Verdict,
    transition,
)

_ORDER_COLUMNS = (
    "order_id, kind, status, user_id, locale, plan, period_days, amount, currency, email,"
    " business_name, category, timezone, bot_id, bot_username, bot_token_enc, bot_token_sha256,"
    " tenant_id, idempotence_key, payment_id, confirmation_url, failure, created_at, paid_at,"
    " fulfilled_at"
)


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    kind: OrderKind
    status: OrderStatus
    user_id: int
    locale: str
    plan: str
    period_days: int
    amount: Decimal
    currency: str
    email: str
    business_name: str | None
    category: str | None
    timezone: str | None
    bot_id: int | None
    bot_username: str | None
    bot_token_enc: str | None
    bot_token_sha256: str | None
    tenant_id: str | None
    idempotence_key: str
    payment_id: str | None
    confirmation_url: str | None
    failure: str | None
    created_at: datetime
    paid_at: datetime | None
    fulfilled_at: datetime | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> Order:
        data = dict(row)
        data["kind"] = OrderKind(data["kind"])
        data["status"] = OrderStatus(data["status"])
        return cls(**data)

    @property
    def facts(self) -> OrderFacts:
        return OrderFacts(
            self.order_id,
            self.kind,
            self.status,
            self.plan,
            self.amount,
            self.currency,
            self.payment_id,
        )

    def __repr__(self) -> str:
        return f"Order({self.order_id}, {self.kind.value}, {self.status.value})"


@dataclass(frozen=True, slots=True)
class NewOrder:
    order_id: str
    kind: OrderKind
    user_id: int
    locale: str
    plan: str
    period_days: int
    amount: Decimal
    currency: str
    email: str
    idempotence_key: str
    business_name: str | None = None
    category: str | None = None
    timezone: str | None = None
    bot_id: int | None = None
    bot_username: str | None = None
    bot_token_enc: str | None = None
    bot_token_sha256: str | None = None
    tenant_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    order_id: str
    action: Action
    attempts: int
    order: Order


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to an order's owner that Telegram has not taken yet (control.sales_notices)."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    order: Order


@dataclass(frozen=True, slots=True)
class Applied:
    order: Order
    moved: Transition | None


async def _orders_of(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> dict[str, Order]:
    """The orders named by `rows` (column order_id), by order id: one query."""
    orders = await conn.fetch(
        f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE order_id = ANY($1)",
        [r["order_id"] for r in rows],
    )
    return {o["order_id"]: Order.of(o) for o in orders}


class SalesStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # ------------------------------------------------------------------ orders
    async def create_order(self, new: NewOrder) -> Order:
        row = await self.pool.fetchrow(
            "INSERT INTO control.sales_orders (order_id, kind, user_id, locale, plan,"
            " period_days, amount, currency, email, idempotence_key, business_name, category,"
            " timezone, bot_id, bot_username, bot_token_enc, bot_token_sha256, tenant_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
            f" $17, $18) RETURNING {_ORDER_COLUMNS}",
            new.order_id,
            new.kind.value,
            new.user_id,
            new.locale,
            new.plan,
            new.period_days,
            new.amount,
            new.currency,
            new.email,
            new.idempotence_key,
            new.business_name,
            new.category,
            new.timezone,
            new.bot_id,
            new.bot_username,
            new.bot_token_enc,
            new.bot_token_sha256,
            new.tenant_id,
        )
        return Order.of(row)

    async def get(self, order_id: str) -> Order | None:
        row = await self.pool.fetchrow(
            f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE order_id = $1", order_id
        )
        return Order.of(row) if row else None

    async def by_payment(self, payment_id: str) -> Order | None:
        row = await self.pool.fetchrow(
            f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE payment_id = $1",
            payment_id,
        )
        return Order.of(row) if row else None

    async def set_payment(self, order_id: str, payment_id: str, url: str | None) -> Order:
        row = await self.pool.fetchrow(
            "UPDATE control.sales_orders SET payment_id = coalesce(payment_id, $2),"
            " confirmation_url = coalesce($3, confirmation_url), updated_at = now()"
            f" WHERE order_id = $1 RETURNING {_ORDER_COLUMNS}",
            order_id,
            payment_id,
            url,
        )
        return Order.of(row)

    async def token_taken(self, token_sha256: str) -> bool:
        """A token already paid for (its tenant exists or is being made)."""
        found = await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM control.sales_orders WHERE bot_token_sha256 = $1"
            " AND kind = 'new' AND status IN ('paid', 'refunded') AND failure IS NULL)",
            token_sha256,
        )
        return bool(found)

    async def tenants_of(self, user_id: int) -> list[Order]:
        """The provisioned orders of an owner, newest first (one per tenant)."""
        rows = await self.pool.fetch(
            f"SELECT DISTINCT ON (tenant_id) {_ORDER_COLUMNS} FROM control.sales_orders"
            " WHERE user_id = $1 AND kind = 'new' AND tenant_id IS NOT NULL"
            " ORDER BY tenant_id, created_at DESC",
            user_id,
        )
        return sorted((Order.of(r) for r in rows), key=lambda o: o.created_at, reverse=True)

    async def last_email(self, user_id: int) -> str | None:
        value = await self.pool.fetchval(
            "SELECT email FROM control.sales_orders WHERE user_id = $1"
            " ORDER BY created_at DESC LIMIT 1",
            user_id,
        )
        return str(value) if value else None

    async def open_orders(self, user_id: int) -> list[Order]:
        rows = await self.pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE user_id = $1"
            " AND status = 'paid' AND fulfilled_at IS NULL ORDER BY created_at",
            user_id,
        )
        return [Order.of(r) for r in rows]

    # ------------------------------------------------------------------ the state machine
    async def apply(
        self,
        order_id: str,
        verdict: Verdict,
        payment_id: str,
        *,
        refund_suspends: bool,
    ) -> Applied:
        """Move the order by `verdict` and write its outbox rows, in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE order_id = $1 FOR UPDATE",
                order_id,
            )
            if row is None:
                raise LookupError(f"no order {order_id}")
            order = Order.of(row)
            moved = transition(order.status, order.kind, verdict, refund_suspends=refund_suspends)
            if moved is None:
                return Applied(order, None)
            stamp = {
                OrderStatus.PAID: "paid_at",
                OrderStatus.CANCELED: "canceled_at",
                OrderStatus.REFUNDED: "refunded_at",
            }[moved.to]
            row = await conn.fetchrow(
                f"UPDATE control.sales_orders SET status = $2, {stamp} = now(),"
                " payment_id = coalesce(payment_id, $3), updated_at = now()"
                f" WHERE order_id = $1 RETURNING {_ORDER_COLUMNS}",
                order_id,
                moved.to.value,
                payment_id,
            )
            actions = list(moved.actions)
            if Action.SUSPEND in actions:
                # What the master never saw is dropped instead: nothing to suspend then.
                dropped = await conn.fetchval(
                    "UPDATE control.sales_outbox SET done_at = now(), outcome = 'dropped: refunded'"
                    " WHERE order_id = $1 AND action IN ('provision', 'extend')"
                    " AND done_at IS NULL AND attempts = 0 RETURNING id",
                    order_id,
                )
                if dropped is not None:
                    actions.remove(Action.SUSPEND)
            for action in actions:
                await conn.execute(
                    "INSERT INTO control.sales_outbox (order_id, action) VALUES ($1, $2)"
                    " ON CONFLICT (order_id, action) DO NOTHING",
                    order_id,
                    action.value,
                )
            return Applied(Order.of(row), Transition(moved.to, tuple(actions)))

    async def stale_pending(self, older_than: float, limit: int = 100) -> list[Order]:
        rows = await self.pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE status = 'pending'"
            " AND payment_id IS NOT NULL AND created_at < now() - make_interval(secs => $1)"
            " AND created_at > now() - interval '7 days' ORDER BY created_at LIMIT $2",
            older_than,
            limit,
        )
        return [Order.of(r) for r in rows]

    async def expire_unpaid(self) -> int:
        """Orders whose payment was never created (YooKassa keeps keys for a day): canceled."""
        result = await self.pool.execute(
            "UPDATE control.sales_orders SET status = 'canceled', canceled_at = now(),"
            " updated_at = now() WHERE status = 'pending' AND payment_id IS NULL"
            " AND created_at < now() - interval '1 day'"
        )
        return int(result.split()[-1])

    async def claim_slow(self, older_than: float) -> list[Order]:
        """Paid orders still not set up after `older_than` seconds, each returned once."""
        rows = await self.pool.fetch(
            "UPDATE control.sales_orders SET slow_notified_at = now() WHERE status = 'paid'"
            " AND fulfilled_at IS NULL AND failure IS NULL AND slow_notified_at IS NULL"
            " AND paid_at < now() - make_interval(secs => $1)"
            f" RETURNING {_ORDER_COLUMNS}",
            older_than,
        )
        return [Order.of(r) for r in rows]

    # ------------------------------------------------------------------ fulfilment
    async def fulfilled(self, order_id: str, tenant_id: str, bot_username: str | None) -> Order:
        row = await self.pool.fetchrow(
            "UPDATE control.sales_orders SET tenant_id = $2,"
            " bot_username = coalesce($3, bot_username), fulfilled_at = coalesce(fulfilled_at,"
            " now()), bot_token_enc = NULL, failure = NULL, updated_at = now()"
            f" WHERE order_id = $1 RETURNING {_ORDER_COLUMNS}",
            order_id,
            tenant_id,
            bot_username,
        )
        return Order.of(row)

    async def set_failure(self, order_id: str, failure: str | None) -> None:
        await self.pool.execute(
            "UPDATE control.sales_orders SET failure = $2, updated_at = now() WHERE order_id = $1",
            order_id,
            failure,
        )

    async def replace_token(
        self, order_id: str, *, token_enc: str, token_sha256: str, bot_id: int, username: str
    ) -> bool:
        """A new bot token for a paid order whose token the master refused; retried at once."""
        async with self.pool.acquire() as conn, conn.transaction():
            changed = await conn.fetchval(
                "UPDATE control.sales_orders SET bot_token_enc = $2, bot_token_sha256 = $3,"
                " bot_id = $4, bot_username = $5, failure = NULL, updated_at = now()"
                " WHERE order_id = $1 AND status = 'paid' AND fulfilled_at IS NULL"
                " AND failure IS NOT NULL RETURNING order_id",
                order_id,
                token_enc,
                token_sha256,
                bot_id,
                username,
            )
            if changed is None:
                return False
            await conn.execute(
                "UPDATE control.sales_outbox SET next_attempt_at = now(), last_error = NULL"
                " WHERE order_id = $1 AND action = 'provision' AND done_at IS NULL",
                order_id,
            )
            return True

    # ------------------------------------------------------------------ outbox
    async def claim_due(self, limit: int, lease: float) -> list[OutboxItem]:
        """Due rows, leased for `lease` seconds (another relay skips them meanwhile)."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                # Picked first, then updated (see client_bot Store.claim_recipients: a LIMIT
                # subquery under the UPDATE can be re-run per row and claim more).
                "WITH picked AS MATERIALIZED (SELECT id FROM control.sales_outbox"
                " WHERE done_at IS NULL AND next_attempt_at <= now() ORDER BY id LIMIT $1"
                " FOR UPDATE SKIP LOCKED)"
                " UPDATE control.sales_outbox o SET attempts = o.attempts + 1,"
                " next_attempt_at = now() + make_interval(secs => $2) FROM picked"
                " WHERE o.id = picked.id RETURNING o.id, o.order_id, o.action, o.attempts",
                limit,
                lease,
            )
            if not rows:
                return []
            by_id = await _orders_of(conn, rows)
        return [
            OutboxItem(r["id"], r["order_id"], Action(r["action"]), r["attempts"],
                       by_id[r["order_id"]])
            for r in sorted(rows, key=lambda r: r["id"])
        ]  # fmt: skip

    async def outbox_done(self, item_id: int, outcome: str) -> None:
        await self.pool.execute(
            "UPDATE control.sales_outbox SET done_at = now(), outcome = $2, last_error = NULL"
            " WHERE id = $1",
            item_id,
            outcome,
        )

    async def outbox_retry(self, item_id: int, delay: float, error: str | None) -> None:
        await self.pool.execute(
            "UPDATE control.sales_outbox SET next_attempt_at = now() + make_interval(secs => $2),"
            " last_error = coalesce($3, last_error) WHERE id = $1",
            item_id,
            delay,
            error,
        )

    async def outbox_park(self, item_id: int, error: str) -> None:
        """Waits for a person (a new token from the owner, an operator): not retried alone."""
        await self.pool.execute(
            "UPDATE control.sales_outbox SET next_attempt_at = 'infinity', last_error = $2"
            " WHERE id = $1",
            item_id,
            error,
        )

    async def outbox_pending(self) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM control.sales_outbox WHERE done_at IS NULL"
        )
        return int(value)

    # ------------------------------------------------------------------ notifications
    async def record_notifications(
        self, items: Sequence[tuple[str, str, str, str]]
    ) -> dict[str, bool]:
        """Record (or count again) notifications `(key, event, object id, sender)` in one
        statement; for each key, True when it still needs processing."""
        counts: dict[str, int] = {}
        first: dict[str, tuple[str, str, str, str]] = {}
        for item in items:
            counts[item[0]] = counts.get(item[0], 0) + 1
            first.setdefault(item[0], item)
        rows = await self.pool.fetch(
            "INSERT INTO control.sales_notifications AS n (key, event, object_id, sender, seen)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[])"
            " ON CONFLICT (key) DO UPDATE SET seen = n.seen + EXCLUDED.seen"
            " RETURNING key, processed_at IS NOT NULL AS processed",
            list(first),
            [v[1] for v in first.values()],
            [v[2] for v in first.values()],
            [v[3] for v in first.values()],
            [counts[k] for k in first],
        )
        return {r["key"]: not r["processed"] for r in rows}

    async def notification_done(self, key: str, outcome: str, *, final: bool) -> None:
        await self.pool.execute(
            "UPDATE control.sales_notifications SET outcome = $2,"
            " processed_at = CASE WHEN $3 THEN now() ELSE processed_at END WHERE key = $1",
            key,
            outcome,
            final,
        )

    async def open_notifications(self, older_than: float, limit: int = 100) -> list[Any]:
        rows = await self.pool.fetch(
            "SELECT key, event, object_id FROM control.sales_notifications"
            " WHERE processed_at IS NULL AND received_at < now() - make_interval(secs => $1)"
            " AND received_at > now() - interval '2 days' ORDER BY received_at LIMIT $2",
            older_than,
            limit,
        )
        return [(r["key"], r["event"], r["object_id"]) for r in rows]

    # ------------------------------------------------------------------ notices to owners
    async def add_notice(
        self, order_id: str, kind: str, payload: dict[str, Any], *, lease: float, again: bool
    ) -> int | None:
        """Write a notice, leased for `lease` seconds to the caller who sends it now; None when
        this order's notice of this kind exists already (`again` re-arms it instead)."""
        conflict = (
            "DO UPDATE SET payload = EXCLUDED.payload, attempts = 1, sent_at = NULL,"
            " gave_up_at = NULL, last_error = NULL, next_attempt_at = EXCLUDED.next_attempt_at"
            if again
            else "DO NOTHING"
        )
        notice_id: int | None = await self.pool.fetchval(
            "INSERT INTO control.sales_notices (order_id, kind, payload, attempts, next_attempt_at)"
            " VALUES ($1, $2, $3::jsonb, 1, now() + make_interval(secs => $4))"
            f" ON CONFLICT (order_id, kind) {conflict} RETURNING id",
            order_id,
            kind,
            json.dumps(payload),
            lease,
        )
        return notice_id

    async def claim_notices(self, limit: int, lease: float) -> list[Notice]:
        """Due notices (never sent, not given up), leased for `lease` seconds."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "WITH picked AS MATERIALIZED (SELECT id FROM control.sales_notices"
                " WHERE sent_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
                " UPDATE control.sales_notices n SET attempts = n.attempts + 1,"
                " next_attempt_at = now() + make_interval(secs => $2) FROM picked"
                " WHERE n.id = picked.id RETURNING n.id, n.order_id, n.kind, n.payload, n.attempts",
                limit,
                lease,
            )
            if not rows:
                return []
            by_id = await _orders_of(conn, rows)
        return [
            Notice(r["id"], r["kind"], json.loads(r["payload"]), r["attempts"],
                   by_id[r["order_id"]])
            for r in sorted(rows, key=lambda r: r["id"])
        ]  # fmt: skip

    async def notice_sent(self, notice_id: int) -> None:
        await self.pool.execute(
            "UPDATE control.sales_notices SET sent_at = now(), last_error = NULL WHERE id = $1",
            notice_id,
        )

    async def notice_retry(self, notice_id: int, delay: float, error: str) -> None:
        await self.pool.execute(
            "UPDATE control.sales_notices SET next_attempt_at = now() + make_interval(secs => $2),"
            " last_error = $3 WHERE id = $1",
            notice_id,
            delay,
            error,
        )

    async def notice_gave_up(self, notice_id: int, error: str) -> None:
        await self.pool.execute(
            "UPDATE control.sales_notices SET gave_up_at = now(), last_error = $2 WHERE id = $1",
            notice_id,
            error,
        )
