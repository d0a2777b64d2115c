"""The periodic check: lost notifications, stale pending payments, slow provisioning.

Every `interval` seconds it re-reads from YooKassa the payments of orders pending for longer
than `check_after` (so a lost notification still provisions), retries notifications that were
accepted but not processed (a crash after answering 200), expires orders whose payment was never
created, and tells owners whose bot is taking long that it is being set up.
"""

from __future__ import annotations

import logging

from core.loops import run_every
from sales_bot.billing import Billing, Notifier
from sales_bot.kassa import KassaError
from sales_bot.store import SalesStore

log = logging.getLogger(__name__)


class Watcher:
    def __init__(
        self,
        store: SalesStore,
        billing: Billing,
        notifier: Notifier,
        *,
        interval: float = 60.0,
        check_after: float = 300.0,
        slow_after: float = 45.0,
        retry_notifications_after: float = 30.0,
    ) -> None:
        self.store = store
        self.billing = billing
        self.notifier = notifier
        self.interval = interval
        self.check_after = check_after
        self.slow_after = slow_after
        self.retry_notifications_after = retry_notifications_after

    async def run(self) -> None:
        await run_every(self.interval, self.run_once, "periodic check")

    async def run_once(self) -> int:
        """One pass; how many orders changed state."""
        changed = 0
        for order in await self.store.stale_pending(self.check_after):
            assert order.payment_id is not None
            try:
                applied = await self.billing.settle(
                    await self.billing.kassa.get_payment(order.payment_id), order
                )
            except KassaError as exc:
                log.warning("periodic check of %s: %s", order.order_id, exc)
                continue
            if applied is not None and applied.moved is not None:
                log.info("periodic check: order %s is %s", order.order_id, applied.moved.to)
                changed += 1
        for key, event, object_id in await self.store.open_notifications(
            self.retry_notifications_after
        ):
            await self.billing.process(key, event, object_id)
        expired = await self.store.expire_unpaid()
        if expired:
            log.info("periodic check: %d orders without a payment expired", expired)
        for order in await self.store.claim_slow(self.slow_after):
            try:
                await self.notifier.setting_up(order)
            except Exception:  # the notice could not even be recorded (PostgreSQL)
                log.exception("could not tell the owner of %s about the delay", order.order_id)
        return changed
