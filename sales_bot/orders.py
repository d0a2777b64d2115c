"""The order state machine and payment verification: plain rules, no I/O.

An order is paid for by exactly one YooKassa payment. What the webhook, the "I paid" button and
the periodic check learn is always the payment *as re-read from the API* (a `PaymentView`), and
`decide()` turns (order, payment) into at most one transition:

    pending --succeeded--> paid --refund--> refunded
    pending --canceled---> canceled --succeeded--> paid   (the API is the truth)
    pending --refund-----> refunded                        (paid and returned before we saw it)

`paid` and `refunded` never go back; a late "canceled" after "succeeded" changes nothing.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CANCELED = "canceled"
    REFUNDED = "refunded"


class OrderKind(enum.StrEnum):
    NEW = "new"
    EXTEND = "extend"
    RENEWAL = "renewal"  # a charge of the saved card, made by the renewal worker
    UPGRADE = "upgrade"  # a higher plan now: the rest of the period at the price difference


class Action(enum.StrEnum):
    """What the outbox asks the master to do."""

    PROVISION = "provision"
    EXTEND = "extend"
    SUSPEND = "suspend"
    CHANGE_PLAN = "change_plan"
    REVERT_PLAN = "revert_plan"  # a refunded upgrade: back to the plan the period was paid on


def new_order_id() -> str:
    return "ord_" + secrets.token_hex(12)


def idempotence_key(order_id: str) -> str:
    """The YooKassa Idempotence-Key of the order's payment: derived, so a retry reuses it."""
    return f"botfleet-{order_id}"


@dataclass(frozen=True, slots=True)
class SavedMethod:
    """A payment method YooKassa saved for later charges: its id is a secret."""

    id: str = field(repr=False)
    last4: str | None = None
    expiry: str | None = None  # MM/YYYY

    def __repr__(self) -> str:
        return f"SavedMethod(*{self.last4 or '????'}, {self.expiry or '--/----'})"


@dataclass(frozen=True, slots=True)
class PaymentView:
    """The fields of a YooKassa payment the rules look at."""

    id: str
    status: str  # pending | waiting_for_capture | succeeded | canceled
    paid: bool
    amount: Decimal
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)
    refunded_amount: Decimal = Decimal("0")
    confirmation_url: str | None = None
    saved_method: SavedMethod | None = None  # payment_method.saved = true
    cancel_reason: str | None = None  # cancellation_details.reason


@dataclass(frozen=True, slots=True)
class RefundView:
    id: str
    payment_id: str
    status: str  # pending | succeeded | canceled
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the rules need to know about an order."""

    order_id: str
    kind: OrderKind
    status: OrderStatus
    plan: str
    amount: Decimal
    currency: str
    payment_id: str | None


class LateUpgrade(enum.StrEnum):
    """Why a paid upgrade is refunded instead of applied (kept in the order's `failure`)."""

    PERIOD_OVER = "late:period_over"  # paid (or delivered) after the period it was priced for
    RENEWED = "late:renewed"  # the subscription moved into another period since it was priced


def late_upgrade(
    cycle_end: datetime | None, period_end: datetime | None, now: datetime, *, paid_since: bool
) -> LateUpgrade | None:
    """An upgrade is priced for the rest of the period ending `cycle_end`; it may switch the
    plan only while that period is the tenant's current one (`period_end`, the master's end
    now) and has not ended. A period paid since it was priced (`paid_since`, a renewal or an
    extension) or an end moved by anyone makes the proration wrong, as does the end passing."""
    if cycle_end is None:
        return None
    if paid_since or (period_end is not None and period_end != cycle_end):
        return LateUpgrade.RENEWED
    if now >= cycle_end:
        return LateUpgrade.PERIOD_OVER
    return None


class Verdict(enum.StrEnum):
    PAID = "paid"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    WAITING = "waiting"  # the payment is not final yet
    MISMATCH = "mismatch"  # the payment is not the one of this order: never act on it


def judge(order: OrderFacts, payment: PaymentView) -> tuple[Verdict, str]:
    """What the API's payment says about `order`, with a reason for the log."""
    if payment.metadata.get("order_id") != order.order_id:
        return Verdict.MISMATCH, "metadata.order_id differs from the order"
    if payment.metadata.get("plan") not in (None, order.plan):
        return Verdict.MISMATCH, "metadata.plan differs from the order"
    if order.payment_id is not None and payment.id != order.payment_id:
        return Verdict.MISMATCH, "another payment than the one recorded for the order"
    if payment.currency != order.currency or payment.amount != order.amount:
        return (
            Verdict.MISMATCH,
            f"amount {payment.amount} {payment.currency} != {order.amount} {order.currency}",
        )
    if payment.status == "succeeded" and payment.paid:
        if payment.refunded_amount > 0:
            return Verdict.REFUNDED, f"refunded {payment.refunded_amount}"
        return Verdict.PAID, "succeeded"
    if payment.status == "canceled":
        return Verdict.CANCELED, "canceled"
    return Verdict.WAITING, payment.status


@dataclass(frozen=True, slots=True)
class Transition:
    to: OrderStatus
    actions: tuple[Action, ...] = ()


def transition(
    status: OrderStatus, kind: OrderKind, verdict: Verdict, *, refund_suspends: bool
) -> Transition | None:
    """The move `verdict` causes from `status`, or None (nothing to do).

    The actions are outbox rows written in the same transaction as the move. A refund of an
    order that was paid asks for a suspension (when configured); whether the master was ever
    asked to provision is settled by the store (an untried provisioning is simply dropped).
    """
    paid_action = {OrderKind.NEW: Action.PROVISION, OrderKind.UPGRADE: Action.CHANGE_PLAN}.get(
        kind, Action.EXTEND
    )
    if status is OrderStatus.PENDING or status is OrderStatus.CANCELED:
        if verdict is Verdict.PAID:
            return Transition(OrderStatus.PAID, (paid_action,))
        if verdict is Verdict.REFUNDED:
            return Transition(OrderStatus.REFUNDED)
        if verdict is Verdict.CANCELED and status is OrderStatus.PENDING:
            return Transition(OrderStatus.CANCELED)
        return None
    if status is OrderStatus.PAID and verdict is Verdict.REFUNDED:
        if kind is OrderKind.UPGRADE:
            # The period stays paid by an earlier order: nothing to suspend, but the tenant goes
            # back to the plan that order paid for (whatever the suspension setting).
            return Transition(OrderStatus.REFUNDED, (Action.REVERT_PLAN,))
        return Transition(OrderStatus.REFUNDED, (Action.SUSPEND,) if refund_suspends else ())
    return None
