"""Payments of orders: create them, learn their fate from the API, settle orders exactly once.

Whatever triggers a look at a payment (a webhook notification, the owner's "I paid" button,
the periodic check) ends in `settle()`: the payment as re-read from YooKassa is judged against
the order (`orders.judge`) and the order moves once, with its outbox rows, in one transaction
(`SalesStore.apply`). No aiogram here: the owner is reached through the `Notifier` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from core.telegram import token_fingerprint
from sales_bot.forms import DEFAULT_TIMEZONE
from sales_bot.kassa import (
    KassaError,
    KassaUnavailableError,
    PaymentDraft,
    PaymentGateway,
    RefundDraft,
)
from sales_bot.master import Tenant
from sales_bot.orders import (
    OrderKind,
    OrderStatus,
    PaymentView,
    RefundView,
    Verdict,
    idempotence_key,
    judge,
    new_order_id,
)
from sales_bot.plans import Catalog, Plan
from sales_bot.store import Applied, NewOrder, Order, SalesStore
from sales_bot.vault import Vault, order_context

log = logging.getLogger(__name__)

PAYMENT_EVENTS = frozenset({"payment.succeeded", "payment.canceled", "payment.waiting_for_capture"})
REFUND_EVENTS = frozenset({"refund.succeeded"})
EVENTS = PAYMENT_EVENTS | REFUND_EVENTS


MIN_CHARGE = Decimal("1.00")  # YooKassa takes no smaller payment


@dataclass(frozen=True, slots=True)
class PlanChange:
    """Moving a tenant from `current` to `to` with the period ending at `period_end`.

    Plans are compared by their price per day. An upgrade is paid now: the whole days left of
    the period (a started day counts) at the difference of the daily prices, at least 1 ₽. A
    downgrade costs nothing now and starts with the next period."""

    current: Plan
    to: Plan
    period_end: datetime
    days_left: int
    amount: Decimal

    @property
    def upgrade(self) -> bool:
        return self.amount > 0

    @classmethod
    def of(cls, current: Plan, to: Plan, period_end: datetime, now: datetime) -> PlanChange:
        seconds = (period_end - now).total_seconds()
        days_left = max(0, math.ceil(seconds / 86400))
        daily = to.price / to.period_days - current.price / current.period_days
        if daily <= 0 or days_left == 0:
            return cls(current, to, period_end, days_left, Decimal("0"))
        amount = (daily * days_left).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return cls(current, to, period_end, days_left, max(amount, MIN_CHARGE))


class Notifier(Protocol):
    """Messages to an order's owner (implemented with the sales bot's aiogram Bot)."""

    async def live(self, order: Order, tenant: Tenant) -> None: ...

    async def extended(self, order: Order, tenant: Tenant) -> None: ...

    async def setting_up(self, order: Order) -> None: ...

    async def token_refused(self, order: Order, code: str) -> None: ...

    async def suspended(self, order: Order) -> None: ...

    async def renewal_soon(self, order: Order, payload: dict[str, Any]) -> None: ...

    async def renewal_failed(self, order: Order, payload: dict[str, Any]) -> None: ...

    async def upgrade_refunded(self, order: Order, tenant: Tenant) -> None: ...


def receipt_item(plan_name: str, days: int) -> str:
    """What a 54-FZ receipt calls a period of a plan (a payment's and its refund's alike)."""
    return f"Botfleet: тариф «{plan_name}», {days} дн."


def method_context(order_id: str) -> str:
    """The Vault context a saved method's id is sealed under until it reaches the tenant."""
    return f"method:{order_id}"


@dataclass(frozen=True, slots=True)
class Draft:
    """A new tenant's order as the dialog collected it."""

    user_id: int
    locale: str
    plan: Plan
    email: str
    business_name: str
    category: str
    timezone: str
    bot_id: int
    bot_username: str
    token: str = field(repr=False)
    auto_renew: bool = False  # the owner agreed to auto-renewal at checkout


def _one_period(order_id: str, kind: OrderKind, plan: Plan, **fields: Any) -> NewOrder:
    """An order of one period of `plan` at its price (a new bot, on Telegram or the web, or an
    extension), with the payment's idempotence key derived from the order id."""
    return NewOrder(
        order_id=order_id,
        kind=kind,
        plan=plan.id,
        period_days=plan.period_days,
        amount=plan.price,
        currency="RUB",
        idempotence_key=idempotence_key(order_id),
        **fields,
    )


class Billing:
    def __init__(
        self,
        store: SalesStore,
        kassa: PaymentGateway,
        vault: Vault,
        *,
        refund_suspends: bool = True,
        on_outbox: Callable[[], None] = lambda: None,
        workers: int = 4,
        renewal_retry_days: tuple[int, ...] = (1, 2, 3),
        catalog: Catalog | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.renewal_retry_days = renewal_retry_days
        self.kassa = kassa
        self.vault = vault
        self.refund_suspends = refund_suspends
        self.on_outbox = on_outbox
        self._queued: dict[str, tuple[str, str]] = {}  # key -> (event, object id)
        self._inflight: dict[str, asyncio.Task[str]] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._again: set[str] = set()
        # Work after the webhook's answer runs a few at a time, so a burst of notifications
        # does not starve the answers (SDK calls hold threads and the GIL).
        self._slots = asyncio.Semaphore(workers)
        self._last_submit = 0.0
        self.burst_wait = 2.0

    # ------------------------------------------------------------------ orders and payments
    async def open_new(self, draft: Draft) -> Order:
        order_id = new_order_id()
        return await self.store.create_order(
            _one_period(
                order_id,
                OrderKind.NEW,
                draft.plan,
                user_id=draft.user_id,
                locale=draft.locale,
                email=draft.email,
                business_name=draft.business_name,
                category=draft.category,
                timezone=draft.timezone,
                bot_id=draft.bot_id,
                bot_username=draft.bot_username,
                bot_token_enc=self.vault.seal(order_context(order_id), draft.token),
                bot_token_sha256=token_fingerprint(draft.token),
                auto_renew=draft.auto_renew,
            )
        )

    async def open_web(
        self, *, account_id: int, user_id: int | None, locale: str, plan: Plan, email: str,
        business_name: str,
    ) -> Order:  # fmt: skip
        """A new tenant's order placed on the owner's web: paid first, the bot token given after
        (`purchase.give_token`); the account's unpaid order of this plan when there is one."""
        order_id = new_order_id()
        return await self.store.create_order(
            _one_period(
                order_id,
                OrderKind.NEW,
                plan,
                user_id=user_id,
                locale=locale,
                email=email,
                business_name=business_name,
                timezone=DEFAULT_TIMEZONE,
                web_account_id=account_id,
            )
        )

    async def open_extension(
        self,
        *,
        user_id: int,
        locale: str,
        plan: Plan,
        email: str,
        tenant: Order,
        auto_renew: bool = False,
        cycle_end: datetime | None = None,
        plan_from: str | None = None,
    ) -> Order:
        """Another period; `plan_from` set: a downgrade the owner chose, on `plan` from
        `cycle_end` (the renewal worker switches the master's plan then)."""
        order_id = new_order_id()
        return await self.store.create_order(
            _one_period(
                order_id,
                OrderKind.EXTEND,
                plan,
                user_id=user_id,
                locale=locale,
                email=email,
                business_name=tenant.business_name,
                bot_username=tenant.bot_username,
                tenant_id=tenant.tenant_id,
                auto_renew=auto_renew,
                cycle_end=cycle_end if plan_from is not None else None,
                plan_from=plan_from,
            )
        )

    async def open_upgrade(
        self, *, user_id: int, locale: str, email: str, tenant: Order, change: PlanChange
    ) -> Order:
        """The prorated payment of an upgrade (the same one again when pressed twice)."""
        assert change.upgrade
        order_id = new_order_id()
        return await self.store.open_upgrade(
            NewOrder(
                order_id=order_id,
                kind=OrderKind.UPGRADE,
                user_id=user_id,
                locale=locale,
                plan=change.to.id,
                period_days=change.days_left,
                amount=change.amount,
                currency="RUB",
                email=email,
                idempotence_key=idempotence_key(order_id),
                business_name=tenant.business_name,
                bot_username=tenant.bot_username,
                tenant_id=tenant.tenant_id,
                cycle_end=change.period_end,
                plan_from=change.current.id,
            )
        )

    async def checkout(
        self, order: Order, *, description: str, item: str, return_url: str | None = None
    ) -> Order:
        """The order's payment, created once: a retry sends the stored idempotence key again."""
        if order.payment_id is not None and order.confirmation_url:
            return order
        payment = await self.kassa.create_payment(
            PaymentDraft(
                order_id=order.order_id,
                idempotence_key=order.idempotence_key,
                plan=order.plan,
                kind=order.kind.value,
                amount=order.amount,
                currency=order.currency,
                description=description,
                receipt_item=item,
                email=order.email,
                save_method=order.auto_renew,
                return_url=return_url,
            )
        )
        if payment.metadata.get("order_id") != order.order_id or payment.amount != order.amount:
            raise KassaError("YooKassa answered with a payment of another order")
        return await self.store.set_payment(order.order_id, payment.id, payment.confirmation_url)

    async def refund_late(self, order: Order) -> RefundView:
        """Give back an upgrade paid too late to be applied (`orders.late_upgrade`): the whole
        payment, with a 54-FZ refund receipt, once (the order's own refund idempotence key: a
        retry gets the same refund). Once YooKassa says it is refunded, the order is settled
        as refunded at once, without waiting for the notification."""
        assert order.payment_id is not None
        plan = self.catalog.get(order.plan) if self.catalog is not None else None
        refund = await self.kassa.create_refund(
            RefundDraft(
                payment_id=order.payment_id,
                idempotence_key=f"{order.idempotence_key}-refund"[:64],
                amount=order.amount,
                currency=order.currency,
                description=f"Botfleet: возврат, оплата перехода на тариф пришла после конца "
                f"периода ({order.order_id})",
                receipt_item=receipt_item(plan.name("ru") if plan else order.plan,
                                          order.period_days),
                email=order.email,
            )
        )  # fmt: skip
        if refund.payment_id != order.payment_id or refund.amount != order.amount:
            raise KassaError("YooKassa answered with a refund of another payment")
        if refund.status == "succeeded":
            await self.settle(await self.kassa.get_payment(order.payment_id), order)
        return refund

    # ------------------------------------------------------------------ settling
    async def settle(self, payment: PaymentView, order: Order | None = None) -> Applied | None:
        """Act on a payment re-read from the API; None when it belongs to no order of ours."""
        if order is None:
            order_id = payment.metadata.get("order_id", "")
            order = await self.store.get(order_id) if order_id else None
            if order is None:
                order = await self.store.by_payment(payment.id)
        if order is None:
            log.warning("payment %s belongs to no order", payment.id)
            return None
        verdict, reason = judge(order.facts, payment)
        if verdict is Verdict.MISMATCH:
            log.error("payment %s does not match %s: %s", payment.id, order.order_id, reason)
            return None
        if verdict is Verdict.WAITING:
            return Applied(order, None)
        method = payment.saved_method
        sealed = None
        if method is not None and order.auto_renew and order.kind is not OrderKind.RENEWAL:
            sealed = self.vault.seal(method_context(order.order_id), method.id)
        applied = await self.store.apply(
            order.order_id,
            verdict,
            payment.id,
            refund_suspends=self.refund_suspends,
            payment=payment,
            method_enc=sealed,
            retry_days=self.renewal_retry_days,
        )
        if applied.moved is not None:
            log.info(
                "order %s: %s -> %s (%s)",
                order.order_id,
                order.status.value,
                applied.moved.to.value,
                reason,
            )
            if applied.moved.actions or order.kind is OrderKind.RENEWAL:
                self.on_outbox()  # the relay delivers outbox rows and owners' notices
        return applied

    async def check(self, order: Order) -> Order:
        """Re-read the order's payment now (the "I paid" button); the order afterwards."""
        if order.payment_id is None or order.status is not OrderStatus.PENDING:
            return order
        applied = await self.settle(await self.kassa.get_payment(order.payment_id), order)
        return applied.order if applied is not None else order

    # ------------------------------------------------------------------ notifications
    def submit(self, key: str, event: str, object_id: str) -> None:
        """Process a recorded notification in the background, one run at a time per key; a
        copy arriving during a run makes it run once more (the payment may have moved).

        Nothing starts while a burst is being answered: one dispatcher waits for a quiet
        moment, then starts the runs (a few at a time, `workers`). Submitting costs the webhook
        a dict insert, not a task per notification."""
        self._last_submit = asyncio.get_running_loop().time()
        if key in self._inflight:
            self._again.add(key)
            return
        self._queued[key] = (event, object_id)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = self._track(asyncio.create_task(self._dispatch()))

    def _track(self, task: asyncio.Task[Any]) -> asyncio.Task[Any]:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _dispatch(self) -> None:
        await self._after_burst()
        while self._queued:
            key = next(iter(self._queued))
            event, object_id = self._queued.pop(key)
            task = self._track(
                asyncio.create_task(self._process_until_quiet(key, event, object_id))
            )
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._finished, key))

    def _finished(self, key: str, _task: asyncio.Task[str]) -> None:
        self._inflight.pop(key, None)

    async def _after_burst(self) -> None:
        """Let a burst of notifications be answered first (at most `burst_wait` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.burst_wait
        while loop.time() - self._last_submit < 0.02 and loop.time() < deadline:  # noqa: ASYNC110 - a quiet period, not an event
            await asyncio.sleep(0.02)

    async def _process_until_quiet(self, key: str, event: str, object_id: str) -> str:
        while True:
            self._again.discard(key)
            async with self._slots:
                outcome = await self.process(key, event, object_id)
            if key not in self._again:
                return outcome

    async def process(self, key: str, event: str, object_id: str) -> str:
        """Handle one notification; it is marked processed when the outcome is final."""
        final = True
        try:
            if event in REFUND_EVENTS:
                refund = await self.kassa.get_refund(object_id)
                if refund.status != "succeeded":
                    outcome, final = f"refund {refund.status}", False
                else:
                    payment = await self.kassa.get_payment(refund.payment_id)
                    outcome, final = self._outcome(await self.settle(payment))
            elif event in PAYMENT_EVENTS:
                payment = await self.kassa.get_payment(object_id)
                outcome, final = self._outcome(await self.settle(payment))
            else:
                outcome = f"ignored event {event}"
        except KassaUnavailableError as exc:
            outcome, final = f"retry: {exc}", False
        except KassaError as exc:
            outcome = f"rejected: {exc}"
        except Exception as exc:
            log.exception("notification %s failed", key)
            outcome, final = f"error: {type(exc).__name__}", False
        try:
            await self.store.notification_done(key, outcome[:500], final=final)
        except Exception:
            log.exception("could not record the outcome of notification %s", key)
        return outcome

    @staticmethod
    def _outcome(applied: Applied | None) -> tuple[str, bool]:
        if applied is None:
            return "not ours or mismatched", True
        if applied.moved is not None:
            return f"order {applied.order.order_id} {applied.moved.to.value}", True
        if applied.order.status is OrderStatus.PENDING:
            return f"order {applied.order.order_id} still pending", False
        return f"order {applied.order.order_id} already {applied.order.status.value}", True

    async def drain(self) -> None:
        """Wait for the background notification work (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
