"""Auto-renewal: the saved card is charged `days_before` days before the paid period ends.

The worker (`run`, every `interval` seconds) finds subscriptions due, and for each one:

1. claims the charge (`SalesStore.claim_renewal`): under the subscription's row lock it
   re-reads the consent and the card, checks no live charge exists for this period, and writes
   a renewal order (its own order id, hence a new idempotence key per attempt) with the owner's
   "we are about to charge" notice, which is sent right away;
2. sends it (`SalesStore.send_renewal`): under the same lock again, re-checks the consent and
   creates the YooKassa payment with `payment_method_id` and a 54-FZ receipt. Turning auto-renewal
   off or removing the card takes that lock too, so a switch either comes first (the order is
   canceled, no charge) or waits until the charge was sent;
3. settles the payment like any other (`Billing.settle`): success writes the outbox's `extend`
   row, the relay extends the tenant once and tells the owner; a decline counts a failure, plans
   the next attempt (`retry_days` after this one) and tells the owner why, with a pay button.

A claimed charge never sent (a crash, YooKassa down) is sent again later with its own key, so
YooKassa creates it once. Notifications about renewal payments reach `Billing.process` as any
other, so duplicates and late or lost ones change nothing twice.

After the master extended or provisioned for an order, `after_fulfilled` updates the tenant's
subscription (end of the paid period, next charge date) and moves the card the owner saved with
that payment into it, sealed with `core.secrets.SecretBox` for the tenant.

Plan changes: an upgrade is an order of its own (kind 'upgrade', the rest of the period at the
price difference); once the master switched the plan, `after_fulfilled` makes renewals charge the
new plan. A downgrade is stored on the subscription (`next_plan`): the next renewal is charged
and recorded on the lower plan, and `switch_plans` asks the master to switch when that period
begins (`cycle_end`), not before. A refunded upgrade switches the tenant back (the relay's
`revert_plan`), and renewals charge the plan the period was paid on again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from core.loops import run_every
from core.secrets import SecretBox
from database.subscriptions import Subscription
from sales_bot.billing import Billing, method_context, receipt_item
from sales_bot.kassa import KassaError, KassaUnavailableError, PaymentDraft, PaymentGateway
from sales_bot.master import MasterApi, MasterError, MasterRejectedError, Tenant
from sales_bot.notices import Notices
from sales_bot.orders import OrderKind, OrderStatus, PaymentView, idempotence_key, new_order_id
from sales_bot.plans import Catalog
from sales_bot.store import MethodUpdate, Order, SalesStore
from sales_bot.vault import Vault

log = logging.getLogger(__name__)

Hook = Callable[[Order], Awaitable[None]]


async def _nothing(order: Order) -> None:
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Renewals:
    def __init__(
        self,
        store: SalesStore,
        billing: Billing,
        kassa: PaymentGateway,
        vault: Vault,
        box: SecretBox,
        notices: Notices,
        catalog: Catalog,
        master: MasterApi | None = None,
        *,
        interval: float = 600.0,
        resend_after: float = 300.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.billing = billing
        self.kassa = kassa
        self.vault = vault
        self.box = box
        self.notices = notices
        self.catalog = catalog
        self.master = master
        self.interval = interval
        self.resend_after = resend_after
        self.clock = clock
        # Test hook: runs after a charge was claimed and before it is sent.
        self.after_claim: Hook = _nothing

    async def run(self) -> None:
        await run_every(self.interval, self.run_once, "renewals")

    async def run_once(self) -> int:
        """One pass: charges never sent are sent again, due subscriptions are charged; how
        many charges were sent."""
        sent = 0
        await self.switch_plans()
        for order_id in await self.store.unsent_renewals(self.resend_after):
            sent += await self._send(order_id)
        now = self.clock()
        for tenant_id in await self.store.due_renewals(now):
            if not await self._still_due(tenant_id):
                continue
            order_id = new_order_id()
            order = await self.store.claim_renewal(
                tenant_id, now, order_id, idempotence_key(order_id)
            )
            if order is None:
                continue
            log.info("renewal %s of %s claimed", order.order_id, tenant_id)
            try:
                await self.notices.run_once()  # "we are about to charge": before the charge
            except Exception:
                log.exception("could not tell the owner of %s about the charge", tenant_id)
            await self.after_claim(order)
            sent += await self._send(order.order_id)
        return sent

    async def switch_plans(self) -> int:
        """Periods paid on a lower plan (a downgrade the owner chose) that have begun: the master
        switches the tenant (Idempotency-Key = the order, so a retry changes nothing twice); while
        the master is unreachable the switch waits for the next pass. How many were switched."""
        if self.master is None:
            return 0
        switched = 0
        for order in await self.store.due_plan_switches(self.clock()):
            assert order.tenant_id is not None
            try:
                await self.master.change_plan(order.tenant_id, order.plan, order.order_id)
            except MasterRejectedError as exc:
                log.error("plan of %s not switched to %s: %s", order.tenant_id, order.plan, exc)
                if exc.status != 404:
                    continue
            except (MasterError, TimeoutError) as exc:
                log.warning("plan switch of %s waits for the master: %s", order.tenant_id, exc)
                continue
            await self.store.plan_switched(order.order_id)
            log.info("%s: plan %s -> %s (downgrade)", order.tenant_id, order.plan_from, order.plan)
            switched += 1
        return switched

    async def _still_due(self, tenant_id: str) -> bool:
        """Ask the master first: a deleted tenant is not charged, a period an operator extended
        moves the charge; while the master is unreachable the charge waits for the next pass."""
        if self.master is None:
            return True
        try:
            tenant = await self.master.get(tenant_id)
        except MasterRejectedError as exc:
            if exc.status != 404:
                log.warning("renewal of %s waits: %s", tenant_id, exc)
                return False
            tenant = None
        except (MasterError, TimeoutError) as exc:
            log.warning("renewal of %s waits for the master: %s", tenant_id, exc)
            return False
        gone = tenant is None or tenant.status == "deleted"
        due = await self.store.refresh_period(
            tenant_id, tenant.expires_at if tenant else None, gone=gone
        )
        if not due:
            log.info("renewal of %s not due: %s", tenant_id, "deleted" if gone else "extended")
        return due

    async def _send(self, order_id: str) -> int:
        try:
            order, payment = await self.store.send_renewal(order_id, self._charge)
        except KassaUnavailableError as exc:
            log.warning("renewal %s not sent: %s; sent again later", order_id, exc)
            return 0
        except KassaError as exc:
            log.error("renewal %s refused by YooKassa: %s", order_id, exc)
            await self.store.refuse_renewal(
                order_id, "refused_by_yookassa", self.billing.renewal_retry_days
            )
            self.billing.on_outbox()
            return 0
        if payment is None:
            if order.cancel_reason in ("opted_out", "card_removed"):
                log.info("renewal %s not charged: %s", order_id, order.cancel_reason)
            return 0
        await self.billing.settle(payment, order)
        return 1

    async def _charge(self, sub: Subscription, order: Order) -> PaymentView:
        assert sub.method_enc is not None
        method_id = self.box.decrypt(sub.tenant_id, sub.method_enc)
        plan = self.catalog.get(order.plan)
        plan_name = plan.name("ru") if plan else order.plan
        bot = f"@{order.bot_username}" if order.bot_username else order.tenant_id
        payment = await self.kassa.create_payment(
            PaymentDraft(
                order_id=order.order_id,
                idempotence_key=order.idempotence_key,
                plan=order.plan,
                kind=order.kind.value,
                amount=order.amount,
                currency=order.currency,
                description=f"Botfleet: автопродление {bot}, {order.period_days} дн. "
                f"({order.order_id})",
                receipt_item=receipt_item(plan_name, order.period_days),
                email=order.email,
                method_id=method_id,
            )
        )
        if payment.metadata.get("order_id") != order.order_id or payment.amount != order.amount:
            raise KassaError("YooKassa answered with a payment of another order")
        return payment

    # ------------------------------------------------------------------ after the master
    async def after_fulfilled(self, order: Order, tenant: Tenant) -> None:
        """The relay calls this once the master provisioned or extended for `order` (again
        after a retry: it changes nothing more then)."""
        if order.kind is OrderKind.UPGRADE:
            # The subscription follows the plan the master reports: the upgrade's, or (after a
            # refund switched it back) the one the period was paid on.
            plan = self.catalog.get(tenant.plan)
            if plan is None:  # sold a moment ago, gone from the catalogue since: keep the terms
                log.error(
                    "upgrade %s: plan %s is not in the catalogue", order.order_id, tenant.plan
                )
                return
            if tenant.plan == order.plan:
                await self.store.upgraded(
                    order, amount=plan.price, period_days=plan.period_days,
                    paid_until=tenant.expires_at,
                )  # fmt: skip
                log.info("%s upgraded to %s", tenant.tenant_id, order.plan)
            elif tenant.plan == order.plan_from:
                await self.store.reverted(
                    order, plan=plan.id, amount=plan.price, period_days=plan.period_days,
                    paid_until=tenant.expires_at,
                )  # fmt: skip
                log.info("%s back on %s: upgrade %s refunded", tenant.tenant_id, plan.id,
                         order.order_id)  # fmt: skip
            return
        method = None
        # A refunded order's card is not saved for renewals (its tenant may be set up anyway).
        if order.auto_renew and order.method_enc is not None and order.status is OrderStatus.PAID:
            method_id = self.vault.open(method_context(order.order_id), order.method_enc)
            method = MethodUpdate(
                self.box.encrypt(tenant.tenant_id, method_id), order.card_last4, order.card_expiry
            )
        sub = await self.store.sync_subscription(order, paid_until=tenant.expires_at, method=method)
        log.info(
            "%s: paid until %s, auto-renewal %s",
            sub.tenant_id,
            sub.paid_until,
            "on" if sub.auto_renew else "off",
        )
