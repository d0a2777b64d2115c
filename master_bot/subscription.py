"""Subscription monitor: reminders before expiry, suspension after the grace period.

Channel: reminders go through the tenant's **own bot** to its admins (the owner is ADMIN_IDS):
the owner already talks to that bot, and it needs no link between the sales bot's users and
tenants. The master sends them itself through the Bot API with the tenant's token, so a
reminder also reaches the owner of a stopped bot. A reminder is sent at most once per
(tenant, threshold, expiry date): the row in `control.subscription_reminders` is claimed
before sending. When several thresholds are due at once only the nearest one is sent.

With auto-renewal on (the sales bot's `control.sales_subscriptions`: a saved card, a charge
planned before the end), a reminder says when the card will be charged and how much instead
of "extend it": the owner is told ahead of each charge.

Suspension: once `expires_at + grace` has passed, the tenant is suspended (bot stopped,
PostgreSQL login and Redis user disabled, data kept) and operators are alerted. Extending the
subscription (`POST .../extend`) resumes it.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.loops import run_every
from database.subscription_figures import PlannedRenewal, claim_failed_renewals, planned_renewal
from master_bot.alert import AlertKind
from master_bot.deps import Deps
from master_bot.errors import MasterError
from master_bot.fleet import Clock, Fleet, utc_now
from master_bot.store import TenantRecord, TenantStatus
from master_bot.telegram import SendFailedError

log = logging.getLogger(__name__)

ACTOR = "subscription"
_TEXTS = {
    "ru": (
        "⏳ Подписка на бота «{name}» заканчивается {date} (осталось дней: {days}).\n"
        "Продлите её в боте продаж, чтобы бот продолжал работать без перерыва."
    ),
    "en": (
        "⏳ The subscription of «{name}» ends on {date} ({days} day(s) left).\n"
        "Extend it through the sales bot to keep your bot running."
    ),
}
# A tenant whose saved card will be charged before the end (issue 17): told when and how much.
_RENEWING = {
    "ru": (
        "🔄 Подписка на бота «{name}» оплачена до {date} и продлится автоматически: {charge} "
        "с карты {card} спишется {amount} ₽ за следующий период.\n"
        "Отключить автопродление или сменить карту: /subscription в боте продаж."
    ),
    "en": (
        "🔄 «{name}» is paid until {date} and renews automatically: on {charge} {amount} RUB "
        "will be charged from card {card} for the next period.\n"
        "To turn auto-renewal off or change the card: /subscription in the sales bot."
    ),
}


def due_threshold(expires_at: datetime, now: datetime, thresholds: Sequence[int]) -> int | None:
    """The nearest reminder threshold (in days) reached at `now`, None when none is due."""
    left = expires_at - now
    if left <= timedelta(0):
        return None
    reached = [t for t in thresholds if left <= timedelta(days=t)]
    return min(reached) if reached else None


def is_expired(expires_at: datetime | None, now: datetime, grace: timedelta) -> bool:
    return expires_at is not None and expires_at + grace <= now


def reminder_text(
    tenant: TenantRecord, threshold: int, renewal: PlannedRenewal | None = None
) -> str:
    """The reminder; with a charge of the saved card planned before the end, that charge."""
    assert tenant.expires_at is not None
    try:
        zone = ZoneInfo(tenant.timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    date = tenant.expires_at.astimezone(zone).strftime("%d.%m.%Y %H:%M")
    name = html.escape(tenant.business_name)
    if renewal is not None and renewal.next_charge_at < tenant.expires_at:
        amount = renewal.amount
        return _RENEWING.get(tenant.locale, _RENEWING["ru"]).format(
            name=name,
            date=date,
            charge=renewal.next_charge_at.astimezone(zone).strftime("%d.%m.%Y %H:%M"),
            card=f"•••• {html.escape(renewal.card_last4)}" if renewal.card_last4 else "—",
            amount=amount.quantize(Decimal(1)) if amount == amount.to_integral() else amount,
        )
    template = _TEXTS.get(tenant.locale, _TEXTS["ru"])
    return template.format(name=name, date=date, days=threshold)


@dataclass(slots=True)
class MonitorReport:
    reminded: list[tuple[str, int]] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class SubscriptionMonitor:
    def __init__(
        self, deps: Deps, fleet: Fleet, *, clock: Clock = utc_now, interval: float = 300.0
    ) -> None:
        self.deps = deps
        self.fleet = fleet
        self.clock = clock
        self.interval = interval

    async def run_once(self) -> MonitorReport:
        report = MonitorReport()
        config = self.deps.config
        now = self.clock()
        horizon = now + timedelta(days=max(config.reminder_days, default=0))
        grace = timedelta(days=config.grace_days)
        for tenant in await self.deps.store.expiring(horizon):
            assert tenant.expires_at is not None
            if tenant.status is TenantStatus.SUSPENDED:
                continue
            if is_expired(tenant.expires_at, now, grace):
                await self._suspend(tenant, report)
                continue
            threshold = due_threshold(tenant.expires_at, now, config.reminder_days)
            if threshold is not None:
                await self._remind(tenant, threshold, report)
        await self._renewal_alerts()
        return report

    async def _renewal_alerts(self) -> None:
        """Failed auto-renewal charges (the sales bot's orders, same database): one operator
        alert per charge, claimed in control.renewal_alerts before it is raised."""
        try:
            async with self.deps.pool.acquire() as conn:
                failed = await claim_failed_renewals(conn)
        except Exception:
            log.exception("failed renewals not read")
            return
        for charge in failed:
            await self.deps.alerts.alert(
                AlertKind.RENEWAL_FAILED,
                charge.tenant_id,
                f"{charge.tenant_id} (@{charge.bot_username}): the card was not charged "
                f"{charge.amount} {charge.currency}: {charge.reason} (order {charge.order_id});"
                " the owner was told and offered a pay link",
            )

    async def _suspend(self, tenant: TenantRecord, report: MonitorReport) -> None:
        tid = tenant.tenant_id
        try:
            await self.fleet.suspend(tid, actor=ACTOR, reason="subscription expired")
        except MasterError as exc:
            report.failed.append((tid, exc.message))
            log.warning("could not suspend %s: %s", tid, exc.message)
            return
        report.suspended.append(tid)
        await self.deps.alerts.alert(
            AlertKind.SUBSCRIPTION_EXPIRED,
            tid,
            f"{tid} (@{tenant.bot_username}) suspended: the subscription ended "
            f"{tenant.expires_at:%Y-%m-%d}",
        )

    async def _remind(self, tenant: TenantRecord, threshold: int, report: MonitorReport) -> None:
        store = self.deps.store
        tid = tenant.tenant_id
        assert tenant.expires_at is not None
        if not tenant.bot_token_enc:
            return
        if not await store.claim_reminder(tid, threshold, tenant.expires_at):
            return  # sent (or being sent) already
        token = self.deps.box.decrypt(tid, tenant.bot_token_enc)
        renewal = await self._planned_renewal(tid)
        try:
            await self.deps.telegram.send_message(
                token, tenant.owner_telegram_id, reminder_text(tenant, threshold, renewal)
            )
        except SendFailedError as exc:
            self.deps.metrics.failed("reminder")
            report.failed.append((tid, str(exc)))
            if exc.permanent:  # e.g. the owner never opened the bot: do not retry every pass
                await store.finish_reminder(tid, threshold, tenant.expires_at, error=str(exc))
            else:
                await store.release_reminder(tid, threshold, tenant.expires_at)
            log.warning("reminder %s/%sd failed: %s", tid, threshold, exc)
            return
        await store.finish_reminder(tid, threshold, tenant.expires_at, error=None)
        await store.audit(
            ACTOR,
            tid,
            "subscription.reminded",
            {"days": threshold, "expires_at": tenant.expires_at},
        )
        report.reminded.append((tid, threshold))

    async def _planned_renewal(self, tenant_id: str) -> PlannedRenewal | None:
        try:
            async with self.deps.pool.acquire() as conn:
                return await planned_renewal(conn, tenant_id)
        except Exception:  # the plain reminder is still right: the owner may extend by hand
            log.exception("planned renewal of %s not read", tenant_id)
            return None

    async def run(self) -> None:
        await run_every(self.interval, self.run_once, "subscription monitor pass")
