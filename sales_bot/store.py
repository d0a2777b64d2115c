"""The sales bot's data layer (control.sales_*): plain SQL with $n parameters, nothing else.

No connection is held across a call to Telegram, YooKassa or the master: every method takes a
connection from the pool, runs its statements and gives it back.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from database import subscriptions
from database.subscriptions import Subscription
from sales_bot.orders import (
    Action,
    OrderFacts,
    OrderKind,
    OrderStatus,
    PaymentView,
    Transition,
    Verdict,
    transition,
)

# Declines after which the saved card cannot be charged again: it is dropped, no retries.
DEAD_CARD_REASONS = frozenset({"card_expired", "permission_revoked"})

_ORDER_COLUMNS = (
    "order_id, kind, status, user_id, locale, plan, period_days, amount, currency, email,"
    " business_name, category, timezone, bot_id, bot_username, bot_token_enc, bot_token_sha256,"
    " tenant_id, idempotence_key, payment_id, confirmation_url, failure, created_at, paid_at,"
    " fulfilled_at, auto_renew, method_enc, card_last4, card_expiry, cycle_end, cancel_reason,"
    " plan_from, plan_switched_at, web_account_id"
)
_SUB_COLUMNS = subscriptions.SUB_COLUMNS


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    kind: OrderKind
    status: OrderStatus
    user_id: int | None  # the owner's Telegram id; None: a web order before its bot token
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
    auto_renew: bool = False
    method_enc: str | None = field(default=None, repr=False)
    card_last4: str | None = None
    card_expiry: str | None = None
    cycle_end: datetime | None = None
    cancel_reason: str | None = None
    plan_from: str | None = None  # an upgrade, or a renewal carrying a downgrade: the plan left
    plan_switched_at: datetime | None = None
    web_account_id: int | None = None  # placed on the owner's web (sales_bot/purchase.py)

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
    user_id: int | None
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
    auto_renew: bool = False
    cycle_end: datetime | None = None
    plan_from: str | None = None
    web_account_id: int | None = None


@dataclass(frozen=True, slots=True)
class MethodUpdate:
    """A saved method for the tenant's subscription: sealed for the tenant."""

    method_enc: str = field(repr=False)
    card_last4: str | None
    card_expiry: str | None


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
    def __init__(self, pool: asyncpg.Pool, *, renewal_days_before: int = 3) -> None:
        self.pool = pool
        self.renewal_days_before = renewal_days_before  # a saved card is charged this early

    # ------------------------------------------------------------------ orders
    async def create_order(self, new: NewOrder) -> Order:
        row = await self.pool.fetchrow(
            "INSERT INTO control.sales_orders (order_id, kind, user_id, locale, plan,"
            " period_days, amount, currency, email, idempotence_key, business_name, category,"
            " timezone, bot_id, bot_username, bot_token_enc, bot_token_sha256, tenant_id,"
            " auto_renew, cycle_end, plan_from, web_account_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
            " $17, $18, $19, $20, $21, $22) ON CONFLICT (web_account_id, plan)"
            " WHERE web_account_id IS NOT NULL AND status = 'pending'"
            f" DO NOTHING RETURNING {_ORDER_COLUMNS}",
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
            new.auto_renew,
            new.cycle_end,
            new.plan_from,
            new.web_account_id,
        )
        if row is None:  # a web account's unpaid order of this plan exists: that one
            row = await self.pool.fetchrow(
                f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE web_account_id = $1"
                " AND plan = $2 AND status = 'pending'",
                new.web_account_id,
                new.plan,
            )
        return Order.of(row)

    async def open_upgrade(self, new: NewOrder) -> Order:
        """The upgrade order of (tenant, period, plan): the live one when there is one (pressed
        twice, the owner gets the same payment), else `new`."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM control.sales_subscriptions WHERE tenant_id = $1 FOR UPDATE",
                new.tenant_id,
            )
            row = await conn.fetchrow(
                f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE kind = 'upgrade'"
                " AND tenant_id = $1 AND cycle_end = $2 AND plan = $3"
                " AND status IN ('pending', 'paid')",
                new.tenant_id,
                new.cycle_end,
                new.plan,
            )
            if row is not None:
                return Order.of(row)
        # A downgrade chosen earlier stays until this upgrade is paid (`upgraded` drops it): an
        # upgrade never paid (canceled, abandoned) leaves the owner's choice as it was.
        return await self.create_order(new)

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
        payment: PaymentView | None = None,
        method_enc: str | None = None,
        retry_days: Sequence[int] = (),
    ) -> Applied:
        """Move the order by `verdict` and write its outbox rows, in one transaction.

        A paid order the owner agreed to auto-renew keeps the method YooKassa saved
        (`method_enc`, sealed for the order) until the relay moves it to the subscription. A
        declined renewal counts a failure on the subscription, plans the next attempt
        (`retry_days` after the claim, then none) and writes the owner's notice, all in the
        same transaction as the move."""
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
            saved = payment.saved_method if payment is not None else None
            keep = moved.to is OrderStatus.PAID and order.auto_renew and method_enc is not None
            reason = payment.cancel_reason if payment is not None else None
            row = await conn.fetchrow(
                f"UPDATE control.sales_orders SET status = $2, {stamp} = now(),"
                " payment_id = coalesce(payment_id, $3), updated_at = now(),"
                " method_enc = CASE WHEN $4 THEN $5 ELSE method_enc END,"
                " card_last4 = CASE WHEN $4 THEN $6 ELSE card_last4 END,"
                " card_expiry = CASE WHEN $4 THEN $7 ELSE card_expiry END,"
                " cancel_reason = coalesce(cancel_reason, $8)"
                f" WHERE order_id = $1 RETURNING {_ORDER_COLUMNS}",
                order_id,
                moved.to.value,
                payment_id,
                keep,
                method_enc if keep else None,
                saved.last4 if keep and saved else None,
                saved.expiry if keep and saved else None,
                reason if moved.to is OrderStatus.CANCELED else None,
            )
            if order.kind is OrderKind.RENEWAL and moved.to is OrderStatus.CANCELED:
                await self._renewal_failed(conn, Order.of(row), reason or "unknown", retry_days)
            if moved.to is OrderStatus.REFUNDED and order.kind is not OrderKind.UPGRADE:
                # Money given back for a period: the card is not charged for the next one
                # unless the owner turns auto-renewal on again (the card stays saved).
                await conn.execute(
                    "UPDATE control.sales_subscriptions SET auto_renew = false,"
                    " next_charge_at = NULL, revoked_at = now(), last_failure = 'refunded',"
                    " updated_at = now() WHERE tenant_id = $1",
                    order.tenant_id,
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
            if Action.REVERT_PLAN in actions:
                # A plan change the master never saw is dropped; the revert row stays, to tell
                # the owner (the relay calls the master only for a change it delivered).
                await conn.execute(
                    "UPDATE control.sales_outbox SET done_at = now(), outcome = 'dropped: refunded'"
                    " WHERE order_id = $1 AND action = 'change_plan' AND done_at IS NULL"
                    " AND attempts = 0",
                    order_id,
                )
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
            " AND bot_token_enc IS NOT NULL"  # a web order waiting for its token: nothing slow
            " AND paid_at < now() - make_interval(secs => $1)"
            f" RETURNING {_ORDER_COLUMNS}",
            older_than,
        )
        return [Order.of(r) for r in rows]

    async def _renewal_failed(
        self, conn: asyncpg.Connection, order: Order, reason: str, retry_days: Sequence[int]
    ) -> None:
        sub = await conn.fetchrow(
            "SELECT failures, last_attempt_at, card_last4 FROM control.sales_subscriptions"
            " WHERE tenant_id = $1 FOR UPDATE",
            order.tenant_id,
        )
        if sub is None:
            return
        failures = int(sub["failures"]) + 1
        dead = reason in DEAD_CARD_REASONS
        days = retry_days[failures - 1] if failures <= len(retry_days) and not dead else None
        next_at = await conn.fetchval(
            "UPDATE control.sales_subscriptions SET failures = $2, last_failure = $3,"
            " next_charge_at = CASE WHEN $4::int IS NULL THEN NULL"
            " ELSE coalesce(last_attempt_at, now()) + make_interval(days => $4::int) END,"
            " auto_renew = auto_renew AND NOT $5, method_enc = CASE WHEN $5 THEN NULL"
            " ELSE method_enc END, revoked_at = CASE WHEN $5 THEN now() ELSE revoked_at END,"
            " updated_at = now() WHERE tenant_id = $1 RETURNING next_charge_at",
            order.tenant_id,
            failures,
            reason,
            days,
            dead,
        )
        payload = {
            "reason": reason,
            "next_at": next_at.isoformat() if next_at else None,
            "card_dropped": dead,
            "card_last4": sub["card_last4"],
        }
        await conn.execute(
            "INSERT INTO control.sales_notices (order_id, kind, payload, attempts)"
            " VALUES ($1, 'renewal_failed', $2::jsonb, 0) ON CONFLICT (order_id, kind) DO NOTHING",
            order.order_id,
            json.dumps(payload),
        )

    # ------------------------------------------------------------------ auto-renewal
    async def subscription(self, tenant_id: str) -> Subscription | None:
        row = await self.pool.fetchrow(
            f"SELECT {_SUB_COLUMNS} FROM control.sales_subscriptions WHERE tenant_id = $1",
            tenant_id,
        )
        return Subscription.of(row) if row else None

    async def sync_subscription(
        self,
        order: Order,
        *,
        paid_until: datetime | None,
        method: MethodUpdate | None,
    ) -> Subscription:
        """After the master provisioned or extended for `order`: the tenant's subscription
        learns the new end of the paid period (and the next charge date), and the card the
        owner saved with this payment — unless they turned auto-renewal off since. The order's
        own copy of the method is cleared. Repeating it changes nothing more."""
        assert order.tenant_id is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '60s'")
            row = await conn.fetchrow(
                "SELECT revoked_at FROM control.sales_subscriptions WHERE tenant_id = $1"
                " FOR UPDATE",
                order.tenant_id,
            )
            if row is None:
                await conn.execute(
                    "INSERT INTO control.sales_subscriptions (tenant_id, user_id, locale, email,"
                    " bot_username, business_name, plan, period_days, amount, currency)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    order.tenant_id,
                    order.user_id,
                    order.locale,
                    order.email,
                    order.bot_username,
                    order.business_name,
                    order.plan,
                    order.period_days,
                    order.amount,
                    order.currency,
                )
            revoked_later = (
                row is not None
                and row["revoked_at"] is not None
                and row["revoked_at"] > order.created_at
            )
            enable = method is not None and not revoked_later
            updated = await conn.fetchrow(
                "UPDATE control.sales_subscriptions SET paid_until = coalesce($2, paid_until),"
                " plan = $3, period_days = $4, amount = $5, email = $6,"
                " bot_username = coalesce($7, bot_username), failures = 0, last_failure = NULL,"
                " next_plan = CASE WHEN next_plan = $3 THEN NULL ELSE next_plan END,"
                " next_amount = CASE WHEN next_plan = $3 THEN NULL ELSE next_amount END,"
                " next_period_days = CASE WHEN next_plan = $3 THEN NULL ELSE next_period_days END,"
                " auto_renew = auto_renew OR $8,"
                " consent_at = CASE WHEN $8 THEN now() ELSE consent_at END,"
                " revoked_at = CASE WHEN $8 THEN NULL ELSE revoked_at END,"
                " method_enc = CASE WHEN $8 THEN $9 ELSE method_enc END,"
                " card_last4 = CASE WHEN $8 THEN $10 ELSE card_last4 END,"
                " card_expiry = CASE WHEN $8 THEN $11 ELSE card_expiry END,"
                " updated_at = now() WHERE tenant_id = $1"
                f" RETURNING {_SUB_COLUMNS}",
                order.tenant_id,
                paid_until,
                order.plan,
                order.period_days,
                order.amount,
                order.email,
                order.bot_username,
                enable,
                method.method_enc if method else None,
                method.card_last4 if method else None,
                method.card_expiry if method else None,
            )
            sub = await conn.fetchrow(
                "UPDATE control.sales_subscriptions SET next_charge_at = CASE WHEN auto_renew"
                " AND paid_until IS NOT NULL THEN paid_until - make_interval(days => $2)"
                f" END WHERE tenant_id = $1 RETURNING {_SUB_COLUMNS}",
                order.tenant_id,
                self.renewal_days_before,
            )
            if order.method_enc is not None:
                await conn.execute(
                    "UPDATE control.sales_orders SET method_enc = NULL WHERE order_id = $1",
                    order.order_id,
                )
            assert updated is not None
            return Subscription.of(sub)

    async def upgraded(
        self, order: Order, *, amount: Decimal, period_days: int, paid_until: datetime | None
    ) -> None:
        """The master switched the tenant to the upgrade's plan: renewals charge the new plan's
        price for its period from now on; the order records the switch. Repeating it changes
        nothing more."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE control.sales_subscriptions SET plan = $2, amount = $3, period_days = $4,"
                " paid_until = coalesce($5, paid_until), next_plan = NULL, next_amount = NULL,"
                " next_period_days = NULL, updated_at = now() WHERE tenant_id = $1",
                order.tenant_id,
                order.plan,
                amount,
                period_days,
                paid_until,
            )
            await conn.execute(
                "UPDATE control.sales_orders SET plan_switched_at = coalesce(plan_switched_at,"
                " now()) WHERE order_id = $1",
                order.order_id,
            )

    async def reverted(
        self, order: Order, *, plan: str, amount: Decimal, period_days: int,
        paid_until: datetime | None,
    ) -> None:  # fmt: skip
        """The master switched the tenant back from a refunded upgrade's plan to `plan`: renewals
        charge `plan` again. Only while the subscription is still on the upgrade's plan, so a
        repeat (or a later change of the owner's) is left alone."""
        await self.pool.execute(
            "UPDATE control.sales_subscriptions SET plan = $3, amount = $4, period_days = $5,"
            " paid_until = coalesce($6, paid_until), updated_at = now()"
            " WHERE tenant_id = $1 AND plan = $2",
            order.tenant_id,
            order.plan,
            plan,
            amount,
            period_days,
            paid_until,
        )

    async def plan_change_delivery(self, order_id: str) -> str:
        """Whether the master switched the plan for upgrade `order_id`: 'delivered', 'open' (its
        outbox row is being delivered or retried) or 'never' (dropped before a call, refunded as
        too late without a call, refused by the master, or none). A row parked for an operator
        is dropped now: its order is refunded."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT id, done_at, outcome, next_attempt_at = 'infinity' AS parked"
                " FROM control.sales_outbox WHERE order_id = $1 AND action = 'change_plan'"
                " FOR UPDATE",
                order_id,
            )
            if row is None:
                return "never"
            if row["done_at"] is None and row["parked"]:
                await conn.execute(
                    "UPDATE control.sales_outbox SET done_at = now(),"
                    " outcome = 'dropped: refunded' WHERE id = $1",
                    row["id"],
                )
                return "never"
            if row["done_at"] is None:
                return "open"
            outcome = str(row["outcome"] or "")
            return "never" if outcome.startswith(("dropped", "late")) else "delivered"

    async def paid_since(self, order: Order) -> bool:
        """A period of the tenant paid (a renewal or an extension) after upgrade `order` was
        priced: its proration no longer fits."""
        found = await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM control.sales_orders WHERE tenant_id = $1"
            " AND kind IN ('renewal', 'extend') AND status = 'paid' AND paid_at > $2)",
            order.tenant_id,
            order.created_at,
        )
        return bool(found)

    async def paid_later_on(self, order: Order) -> bool:
        """A period after `order` (an upgrade) already paid on the upgrade's plan: a renewal
        or an extension of the tenant on that plan, paid after the upgrade."""
        found = await self.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM control.sales_orders WHERE tenant_id = $1"
            " AND kind IN ('renewal', 'extend') AND plan = $2 AND status = 'paid'"
            " AND paid_at > $3)",
            order.tenant_id,
            order.plan,
            order.paid_at,
        )
        return bool(found)

    async def set_next_plan(
        self, tenant_id: str, user_id: int, plan: str | None, amount: Decimal | None,
        period_days: int | None,
    ) -> Subscription | None:  # fmt: skip
        """A downgrade from the next period (`plan` None: keep the current plan); None when this
        is not the owner's tenant. Under the lock a charge takes, so a claimed charge keeps the
        terms it was claimed with."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '120s'")
            row = await conn.fetchrow(
                "UPDATE control.sales_subscriptions SET next_plan = $3, next_amount = $4,"
                " next_period_days = $5, updated_at = now() WHERE tenant_id = $1"
                f" AND user_id = $2 RETURNING {_SUB_COLUMNS}",
                tenant_id,
                user_id,
                plan,
                amount,
                period_days,
            )
            return Subscription.of(row) if row else None

    async def due_plan_switches(self, now: datetime, limit: int = 50) -> list[Order]:
        """Paid and fulfilled periods that start on another plan (a downgrade) and have begun."""
        rows = await self.pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE plan_from IS NOT NULL"
            " AND plan_switched_at IS NULL AND status = 'paid' AND kind <> 'upgrade'"
            " AND fulfilled_at IS NOT NULL AND cycle_end <= $1 ORDER BY cycle_end LIMIT $2",
            now,
            limit,
        )
        return [Order.of(r) for r in rows]

    async def plan_switched(self, order_id: str) -> None:
        await self.pool.execute(
            "UPDATE control.sales_orders SET plan_switched_at = coalesce(plan_switched_at, now())"
            " WHERE order_id = $1",
            order_id,
        )

    # The owner's reads and switches: the SQL the web shares (database/subscriptions.py).
    async def subscriptions_of(self, user_id: int) -> dict[str, Subscription]:
        return await subscriptions.subscriptions_of(self.pool, user_id)

    async def set_auto_renew(self, tenant_id: str, user_id: int, on: bool) -> Subscription | None:
        return await subscriptions.set_auto_renew(
            self.pool, tenant_id, user_id, on, renewal_days_before=self.renewal_days_before
        )

    async def remove_card(self, tenant_id: str, user_id: int) -> Subscription | None:
        return await subscriptions.remove_card(
            self.pool, tenant_id, user_id, renewal_days_before=self.renewal_days_before
        )

    async def refresh_period(
        self, tenant_id: str, paid_until: datetime | None, *, gone: bool
    ) -> bool:
        """What the master says now, before a charge: a tenant deleted (`gone`) is never charged
        again; a period extended elsewhere (an operator) moves the next charge. True when the
        charge is still due as planned."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT paid_until FROM control.sales_subscriptions WHERE tenant_id = $1"
                " FOR UPDATE",
                tenant_id,
            )
            if row is None:
                return False
            if gone:
                await conn.execute(
                    "UPDATE control.sales_subscriptions SET auto_renew = false,"
                    " next_charge_at = NULL, last_failure = 'tenant_deleted', revoked_at = now(),"
                    " updated_at = now() WHERE tenant_id = $1",
                    tenant_id,
                )
                return False
            if paid_until is None or row["paid_until"] is None or paid_until <= row["paid_until"]:
                return True
            await conn.execute(
                "UPDATE control.sales_subscriptions SET paid_until = $2, failures = 0,"
                " next_charge_at = CASE WHEN auto_renew"
                " THEN $2::timestamptz - make_interval(days => $3) END,"
                " updated_at = now() WHERE tenant_id = $1",
                tenant_id,
                paid_until,
                self.renewal_days_before,
            )
            return False

    async def due_renewals(self, now: datetime, limit: int = 50) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT tenant_id FROM control.sales_subscriptions WHERE auto_renew"
            " AND next_charge_at <= $1 ORDER BY next_charge_at LIMIT $2",
            now,
            limit,
        )
        return [r["tenant_id"] for r in rows]

    async def claim_renewal(
        self, tenant_id: str, now: datetime, order_id: str, key: str
    ) -> Order | None:
        """Claim one charge of the tenant's saved card: re-read the subscription under its lock
        (still on, a card, due), check no live charge exists for this period, then write the
        renewal order and the owner's "we are about to charge" notice; None when not due."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {_SUB_COLUMNS} FROM control.sales_subscriptions WHERE tenant_id = $1"
                " FOR UPDATE",
                tenant_id,
            )
            if row is None:
                return None
            sub = Subscription.of(row)
            if (
                not sub.auto_renew
                or sub.method_enc is None
                or sub.next_charge_at is None
                or sub.next_charge_at > now
                or sub.paid_until is None
            ):
                return None
            live = await conn.fetchval(
                "SELECT order_id FROM control.sales_orders WHERE kind = 'renewal'"
                " AND tenant_id = $1 AND cycle_end = $2 AND status IN ('pending', 'paid')",
                tenant_id,
                sub.paid_until,
            )
            if live is not None:
                return None
            order = await conn.fetchrow(
                "INSERT INTO control.sales_orders (order_id, kind, user_id, locale, plan,"
                " period_days, amount, currency, email, idempotence_key, business_name,"
                " bot_username, tenant_id, auto_renew, cycle_end, card_last4, card_expiry,"
                " plan_from)"
                " VALUES ($1, 'renewal', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, true,"
                f" $13, $14, $15, $16) RETURNING {_ORDER_COLUMNS}",
                order_id,
                sub.user_id,
                sub.locale,
                sub.next_plan or sub.plan,  # a downgrade is charged and served from this period
                sub.next_period_days or sub.period_days,
                sub.next_amount or sub.amount,
                sub.currency,
                sub.email,
                key,
                sub.business_name,
                sub.bot_username,
                tenant_id,
                sub.paid_until,
                sub.card_last4,
                sub.card_expiry,
                sub.plan if sub.next_plan is not None and sub.next_plan != sub.plan else None,
            )
            await conn.execute(
                "UPDATE control.sales_subscriptions SET last_attempt_at = $2, updated_at = now()"
                " WHERE tenant_id = $1",
                tenant_id,
                now,
            )
            await conn.execute(
                "INSERT INTO control.sales_notices (order_id, kind, payload, attempts)"
                " VALUES ($1, 'renewal_soon', $2::jsonb, 0)",
                order_id,
                json.dumps({"card_last4": sub.card_last4}),
            )
            return Order.of(order)

    async def send_renewal(
        self,
        order_id: str,
        send: Callable[[Subscription, Order], Awaitable[PaymentView]],
    ) -> tuple[Order, PaymentView | None]:
        """Send a claimed charge, holding the subscription's lock across `send` (the YooKassa
        call): auto-renewal turned off or the card removed since the claim cancels the order
        instead, and a switch arriving meanwhile waits until the charge was sent. A charge sent
        already is not sent again (the payment is then re-read by the periodic check)."""
        async with self.pool.acquire() as conn, conn.transaction():
            tenant_id = await conn.fetchval(
                "SELECT tenant_id FROM control.sales_orders WHERE order_id = $1", order_id
            )
            row = await conn.fetchrow(
                f"SELECT {_SUB_COLUMNS} FROM control.sales_subscriptions WHERE tenant_id = $1"
                " FOR UPDATE",
                tenant_id,
            )
            order_row = await conn.fetchrow(
                f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE order_id = $1 FOR UPDATE",
                order_id,
            )
            order = Order.of(order_row)
            if order.status is not OrderStatus.PENDING or order.payment_id is not None:
                return order, None
            sub = Subscription.of(row) if row is not None else None
            if sub is None or not sub.auto_renew or sub.method_enc is None:
                why = "card_removed" if sub is None or sub.method_enc is None else "opted_out"
                canceled = await conn.fetchrow(
                    "UPDATE control.sales_orders SET status = 'canceled', canceled_at = now(),"
                    " cancel_reason = $2, updated_at = now() WHERE order_id = $1"
                    f" RETURNING {_ORDER_COLUMNS}",
                    order_id,
                    why,
                )
                await conn.execute(
                    "UPDATE control.sales_notices SET gave_up_at = now(),"
                    " last_error = 'not charged: ' || $2 WHERE order_id = $1"
                    " AND kind = 'renewal_soon' AND sent_at IS NULL",
                    order_id,
                    why,
                )
                return Order.of(canceled), None
            payment = await send(sub, order)
            sent = await conn.fetchrow(
                "UPDATE control.sales_orders SET payment_id = $2, updated_at = now()"
                f" WHERE order_id = $1 RETURNING {_ORDER_COLUMNS}",
                order_id,
                payment.id,
            )
            return Order.of(sent), payment

    async def refuse_renewal(self, order_id: str, reason: str, retry_days: Sequence[int]) -> None:
        """YooKassa refused to create a claimed charge (4xx): a failed attempt like a decline."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE control.sales_orders SET status = 'canceled', canceled_at = now(),"
                " cancel_reason = $2, updated_at = now() WHERE order_id = $1"
                f" AND status = 'pending' AND payment_id IS NULL RETURNING {_ORDER_COLUMNS}",
                order_id,
                reason,
            )
            if row is not None:
                await self._renewal_failed(conn, Order.of(row), reason, retry_days)

    async def unsent_renewals(self, older_than: float, limit: int = 20) -> list[str]:
        """Claimed charges never sent (a crash, YooKassa down): sent again with their key."""
        rows = await self.pool.fetch(
            "SELECT order_id FROM control.sales_orders WHERE kind = 'renewal'"
            " AND status = 'pending' AND payment_id IS NULL"
            " AND created_at < now() - make_interval(secs => $1)"
            " AND created_at > now() - interval '20 hours' ORDER BY created_at LIMIT $2",
            older_than,
            limit,
        )
        return [r["order_id"] for r in rows]

    async def payments_of(self, tenant_id: str, user_id: int, limit: int = 10) -> list[Order]:
        rows = await subscriptions.payments_of(
            self.pool, tenant_id, user_id, limit, columns=_ORDER_COLUMNS
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

    async def web_orders(self, account_id: int, limit: int = 20) -> list[Order]:
        """The orders a web account placed, newest first."""
        rows = await self.pool.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM control.sales_orders WHERE web_account_id = $1"
            " ORDER BY created_at DESC LIMIT $2",
            account_id,
            limit,
        )
        return [Order.of(r) for r in rows]

    async def give_token(
        self, order_id: str, account_id: int, *, token_enc: str, token_sha256: str, bot_id: int,
        username: str, owner_id: int,
    ) -> Order | None:  # fmt: skip
        """The bot token of a paid web order, given after the payment (or again after the master
        refused the first one): the owner's Telegram id is kept when known already, and the
        parked provisioning runs at once. None: not this account's order waiting for a token."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE control.sales_orders SET bot_token_enc = $3, bot_token_sha256 = $4,"
                " bot_id = $5, bot_username = $6, user_id = coalesce(user_id, $7),"
                " failure = NULL, updated_at = now()"
                " WHERE order_id = $1 AND web_account_id = $2 AND status = 'paid'"
                " AND fulfilled_at IS NULL AND (bot_token_enc IS NULL OR failure IS NOT NULL)"
                f" RETURNING {_ORDER_COLUMNS}",
                order_id,
                account_id,
                token_enc,
                token_sha256,
                bot_id,
                username,
                owner_id,
            )
            if row is None:
                return None
            await conn.execute(
                "UPDATE control.sales_outbox SET next_attempt_at = now(), last_error = NULL"
                " WHERE order_id = $1 AND action = 'provision' AND done_at IS NULL",
                order_id,
            )
            return Order.of(row)

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

    async def outbox_wait(self, item_id: int, note: str) -> None:
        """Parked before the master was called (a web order waiting for its bot token): still
        untried, so a refund meanwhile drops it (`apply`) instead of suspending nothing."""
        await self.pool.execute(
            "UPDATE control.sales_outbox SET next_attempt_at = 'infinity', attempts = 0,"
            " last_error = $2 WHERE id = $1",
            item_id,
            note,
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
