"""The outbox relay: delivers what paid orders ask of the master, exactly once in effect.

Rows are leased (`claim_due`), the master is called with `Idempotency-Key` = order id (so a
retry after a crash returns the tenant already made), and a row is marked done only after the
master answered. While the master is down the row is retried with exponential backoff and
jitter, capped at `max_delay`, for as long as it takes. Refusals that need a person (a token the
master rejects) park the row until the owner sends a new token. What the owner is told
afterwards goes through `Notices` (sales_bot/notices.py), which this loop also retries.

An upgrade is priced for the rest of one period: delivered after that period ended or after the
subscription moved into another one (`orders.late_upgrade`), it does not switch the plan. The
money is kept safe the other way: the payment is refunded through YooKassa (`refund_late`,
once per order), the order settles as refunded, and its `revert_plan` row tells the owner why,
with a button to a fresh upgrade priced for the period they are in now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from core.categories import CATEGORIES
from core.retry import backoff
from sales_bot.kassa import KassaError, KassaUnavailableError
from sales_bot.master import (
    MasterApi,
    MasterRejectedError,
    MasterUnavailableError,
    ProvisionRequest,
    Tenant,
)
from sales_bot.notices import Notices
from sales_bot.orders import Action, LateUpgrade, OrderStatus, RefundView, late_upgrade
from sales_bot.store import Order, OutboxItem, SalesStore
from sales_bot.vault import Vault, VaultError, order_context

log = logging.getLogger(__name__)

TOKEN_REFUSALS = frozenset({"bot_token_in_use", "invalid_bot_token"})
FaultHook = Callable[[OutboxItem], Awaitable[None]]
FulfilledHook = Callable[[Order, Tenant], Awaitable[None]]
RefundHook = Callable[[Order], Awaitable[RefundView]]
LATE = frozenset(LateUpgrade)


async def _no_fault(item: OutboxItem) -> None:
    return None


async def _no_follow_up(order: Order, tenant: Tenant) -> None:
    return None


async def _no_refunds(order: Order) -> RefundView:
    raise VaultError(f"no way to refund {order.order_id}: the relay has no refund_late")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Relay:
    def __init__(
        self,
        store: SalesStore,
        master: MasterApi,
        vault: Vault,
        notices: Notices,
        *,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        lease: float = 180.0,
        batch: int = 8,
        poll: float = 2.0,
    ) -> None:
        self.store = store
        self.master = master
        self.vault = vault
        self.notices = notices
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease
        self.batch = batch
        self.poll = poll
        self._wake = asyncio.Event()
        # Test hook: runs after the master answered and before the row is marked done.
        self.after_call: FaultHook = _no_fault
        # After the master did what an order paid for, before the row is marked done (so it
        # runs again after a crash): the subscription learns the new period and saved card.
        self.on_fulfilled: FulfilledHook = _no_follow_up
        # Refunds an upgrade paid too late (Billing.refund_late); the clock that says "too late".
        self.refund_late: RefundHook = _no_refunds
        self.clock: Callable[[], datetime] = _utcnow

    def wake(self) -> None:
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        return backoff(attempts, self.base_delay, self.max_delay)

    async def run(self) -> None:
        while True:
            try:
                delivered = await self.run_once()
            except Exception:
                log.exception("relay pass failed")
                delivered = 0
            if delivered:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    async def run_once(self) -> int:
        """Deliver the rows due now, then the owners' notices due now; how many were claimed."""
        items = await self.store.claim_due(self.batch, self.lease)
        if items:
            await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items) + await self.notices.run_once()

    async def _deliver(self, item: OutboxItem) -> None:
        order = item.order
        try:
            if item.action is Action.PROVISION:
                await self._provision(item, order)
            elif item.action is Action.EXTEND:
                await self._extend(item, order)
            elif item.action is Action.CHANGE_PLAN:
                await self._change_plan(item, order)
            elif item.action is Action.REVERT_PLAN:
                await self._revert_plan(item, order)
            else:
                await self._suspend(item, order)
        except MasterUnavailableError as exc:
            delay = self.backoff(item.attempts)
            log.warning(
                "%s of %s: %s; retry #%d in %.1fs",
                item.action.value,
                order.order_id,
                exc,
                item.attempts + 1,
                delay,
            )
            await self.store.outbox_retry(item.id, delay, str(exc)[:500])
        except MasterRejectedError as exc:
            await self._rejected(item, order, exc)
        except VaultError as exc:
            log.error("%s of %s parked: %s", item.action.value, order.order_id, exc)
            await self.store.outbox_park(item.id, str(exc)[:500])
        except Exception as exc:
            log.exception("%s of %s failed", item.action.value, order.order_id)
            await self.store.outbox_retry(
                item.id, self.backoff(item.attempts), f"{type(exc).__name__}"[:500]
            )

    async def _provision(self, item: OutboxItem, order: Order) -> None:
        if order.fulfilled_at is not None and order.tenant_id is not None:
            await self.store.outbox_done(item.id, f"already {order.tenant_id}")
            return
        if order.web_account_id is not None and (
            order.bot_token_enc is None or order.user_id is None
        ):
            # Paid on the web: the owner gives the token there next (`purchase.give_token`,
            # which runs this row again).
            await self.store.outbox_wait(item.id, "waiting for the owner's bot token")
            return
        if order.bot_token_enc is None or order.user_id is None:
            raise VaultError(f"order {order.order_id} has no bot token to provision with")
        token = self.vault.open(order_context(order.order_id), order.bot_token_enc)
        tenant = await self.master.provision(
            ProvisionRequest(
                plan=order.plan,
                period_days=order.period_days,
                business_name=order.business_name or "",
                bot_token=token,
                owner_telegram_id=order.user_id,
                locale=order.locale,
                timezone=order.timezone or "Europe/Moscow",
                category=order.category if order.category in CATEGORIES else "",
            ),
            order.order_id,
        )
        await self.after_call(item)
        done = await self.store.fulfilled(order.order_id, tenant.tenant_id, tenant.bot_username)
        await self.on_fulfilled(done, tenant)
        await self.store.outbox_done(item.id, f"provisioned {tenant.tenant_id}")
        log.info("order %s provisioned %s", order.order_id, tenant.tenant_id)
        if done.status is OrderStatus.PAID:
            await self._tell(self.notices.live(done, tenant))

    async def _extend(self, item: OutboxItem, order: Order) -> None:
        if order.tenant_id is None:
            raise VaultError(f"extension order {order.order_id} names no tenant")
        tenant = await self.master.extend(order.tenant_id, order.period_days, order.order_id)
        await self.after_call(item)
        done = await self.store.fulfilled(order.order_id, tenant.tenant_id, tenant.bot_username)
        await self.on_fulfilled(done, tenant)
        await self.store.outbox_done(item.id, f"extended {tenant.tenant_id}")
        log.info("order %s extended %s", order.order_id, tenant.tenant_id)
        if done.status is OrderStatus.PAID:
            await self._tell(self.notices.extended(done, tenant))

    async def _change_plan(self, item: OutboxItem, order: Order) -> None:
        """A paid upgrade: the master switches the plan (once per order id) and the bot is
        re-deployed with the plan's features; unless it comes too late for the period it was
        priced for (decided once: the order keeps why), then it is refunded instead."""
        if order.tenant_id is None:
            raise VaultError(f"upgrade order {order.order_id} names no tenant")
        late = LateUpgrade(order.failure) if order.failure in LATE else None
        if late is None:
            current = await self.master.get(order.tenant_id)
            late = late_upgrade(
                order.cycle_end, current.expires_at, self.clock(),
                paid_since=await self.store.paid_since(order),
            )  # fmt: skip
            if late is not None:
                log.warning("upgrade %s of %s is too late (%s): refunding it", order.order_id,
                            order.tenant_id, late.value)  # fmt: skip
                await self.store.set_failure(order.order_id, late.value)
        if late is not None:
            await self._refund(item, order, late)
            return
        tenant = await self.master.change_plan(order.tenant_id, order.plan, order.order_id)
        await self.after_call(item)
        done = await self.store.fulfilled(order.order_id, tenant.tenant_id, tenant.bot_username)
        await self.on_fulfilled(done, tenant)
        await self.store.outbox_done(item.id, f"plan {order.plan} for {tenant.tenant_id}")
        log.info("order %s: %s is on plan %s", order.order_id, tenant.tenant_id, tenant.plan)
        if done.status is OrderStatus.PAID:
            await self._tell(self.notices.extended(done, tenant))

    async def _refund(self, item: OutboxItem, order: Order, late: LateUpgrade) -> None:
        """The late upgrade's refund: retried while YooKassa is away or the refund is pending;
        a refusal waits for an operator (the money stays where it is, the plan unchanged)."""
        try:
            refund = await self.refund_late(order)
        except KassaUnavailableError as exc:
            await self.store.outbox_retry(item.id, self.backoff(item.attempts), str(exc)[:500])
            return
        except KassaError as exc:
            log.error("refund of late upgrade %s parked for an operator: %s", order.order_id, exc)
            await self.store.outbox_park(item.id, f"{late.value}: {exc}"[:500])
            return
        if refund.status == "succeeded":
            await self.store.outbox_done(item.id, f"{late.value}: refunded {refund.id}")
            log.info("late upgrade %s refunded (%s)", order.order_id, refund.id)
        elif refund.status == "canceled":
            log.error("YooKassa canceled the refund of late upgrade %s", order.order_id)
            await self.store.outbox_park(item.id, f"{late.value}: refund {refund.id} canceled")
        else:
            await self.store.outbox_retry(
                item.id, self.backoff(item.attempts), f"{late.value}: refund {refund.id} pending"
            )

    async def _revert_plan(self, item: OutboxItem, order: Order) -> None:
        """A refunded upgrade: the tenant goes back to the plan its period was paid on, once
        (Idempotency-Key `<order id>:refund`), after the upgrade's own switch if that is still
        being delivered; not at all when the master never switched, when the plan was changed
        again since, or when a later period was paid on the upgraded plan already (that plan is
        paid for then). The owner is told."""
        if order.tenant_id is None or order.plan_from is None:
            raise VaultError(f"upgrade order {order.order_id} names no tenant or plan")
        delivery = await self.store.plan_change_delivery(order.order_id)
        if delivery == "open":
            await self.store.outbox_retry(item.id, self.backoff(1), "waiting for the plan change")
            return
        tenant = await self.master.get(order.tenant_id)
        if (
            delivery == "delivered"
            and tenant.plan == order.plan  # not changed again since (a later order, an operator)
            and not await self.store.paid_later_on(order)
        ):
            tenant = await self.master.change_plan(
                order.tenant_id, order.plan_from, f"{order.order_id}:refund"
            )
        await self.after_call(item)
        await self.on_fulfilled(order, tenant)
        await self.store.outbox_done(item.id, f"plan {tenant.plan} for {tenant.tenant_id}")
        log.info("order %s refunded: %s is on plan %s", order.order_id, tenant.tenant_id,
                 tenant.plan)  # fmt: skip
        await self._tell(self.notices.upgrade_refunded(order, tenant))

    async def _suspend(self, item: OutboxItem, order: Order) -> None:
        if order.tenant_id is None:
            # The provisioning of this order is still under way: suspend right after it.
            await self.store.outbox_retry(item.id, self.backoff(1), "waiting for provisioning")
            return
        await self.master.suspend(order.tenant_id)
        await self.after_call(item)
        await self.store.outbox_done(item.id, f"suspended {order.tenant_id}")
        log.info("order %s refunded: %s suspended", order.order_id, order.tenant_id)
        await self._tell(self.notices.suspended(order))

    async def _rejected(self, item: OutboxItem, order: Order, exc: MasterRejectedError) -> None:
        if item.action is Action.PROVISION and exc.code in TOKEN_REFUSALS:
            log.warning("order %s: the master refused the bot token (%s)", order.order_id, exc.code)
            await self.store.set_failure(order.order_id, exc.code)
            await self.store.outbox_park(item.id, str(exc)[:500])
            await self._tell(self.notices.token_refused(order, exc.code))
        elif item.action in (Action.SUSPEND, Action.REVERT_PLAN) and exc.status in (404, 409):
            # A deleted (or not yet provisioned) tenant: nothing to pause or switch back.
            await self.store.outbox_done(item.id, f"nothing to {item.action.value}: {exc.code}")
        else:
            log.error("%s of %s parked for an operator: %s", item.action.value, order.order_id, exc)
            await self.store.outbox_park(item.id, str(exc)[:500])

    @staticmethod
    async def _tell(message: Awaitable[None]) -> None:
        try:
            await message
        except Exception:
            log.exception("could not record or send a notice to the owner")
