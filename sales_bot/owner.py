"""Messages to owners outside a dialog (bot live, delays, refusals), in the order's language."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup, LinkPreviewOptions
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from core.dates import paid_until
from sales_bot import keyboards
from sales_bot.master import Tenant
from sales_bot.orders import LateUpgrade, OrderKind
from sales_bot.plans import Catalog, format_rub
from sales_bot.store import Order
from sales_bot.text import bot_link, card, date, decline_reason


class BotNotifier:
    """`billing.Notifier` through the sales bot."""

    def __init__(self, bot: Bot, i18n: I18n, catalog: Catalog | None = None) -> None:
        self.bot = bot
        self.i18n = i18n
        self.catalog = catalog

    async def _send(
        self,
        order: Order,
        build: Callable[[], str],
        markup: Callable[[], InlineKeyboardMarkup] | None = None,
    ) -> None:
        if order.user_id is None:  # a web order before its token: the web tells the owner
            return
        with self.i18n.context(), self.i18n.use_locale(order.locale):
            text = build()
            keyboard = markup() if markup is not None else None
        await self.bot.send_message(
            order.user_id,
            text,
            reply_markup=keyboard,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )

    async def live(self, order: Order, tenant: Tenant) -> None:
        username = tenant.bot_username or order.bot_username or ""

        def text() -> str:
            return _(
                "🎉 Your bot @{username} is live: https://t.me/{username}\n\n"
                "How to run it:\n"
                "1. Open @{username} and send /admin — that's your admin panel.\n"
                "2. Add your services with prices and durations, and your working hours.\n"
                "3. Share the link with your customers: they book in the bot and get reminders.\n\n"
                "Paid until {date}. Your bots and renewal: /subscription"
            ).format(username=html.escape(username), date=paid_until(tenant.expires_at))

        await self._send(order, text)

    async def extended(self, order: Order, tenant: Tenant) -> None:
        plan = self.catalog.get(order.plan) if self.catalog is not None else None

        def text() -> str:
            if order.kind is OrderKind.UPGRADE:
                return _(
                    "Done: {bot} is on plan {plan} now, with all its features. Paid until "
                    "{date}; after that the plan costs {price} for {days} days. /subscription"
                ).format(
                    bot=bot_link(tenant.bot_username or order.bot_username),
                    plan=html.escape(plan.name(order.locale) if plan else order.plan),
                    date=paid_until(tenant.expires_at),
                    price=format_rub(plan.price) if plan else "—",
                    days=plan.period_days if plan else "—",
                )
            if order.kind is OrderKind.RENEWAL:
                return _(
                    "Auto-renewal: {amount} charged from your card {card}. {bot} is paid until "
                    "{date}. The receipt went to {email}. To turn auto-renewal off: /subscription"
                ).format(
                    amount=format_rub(order.amount),
                    card=card(order.card_last4, None),
                    bot=bot_link(tenant.bot_username or order.bot_username),
                    date=paid_until(tenant.expires_at),
                    email=html.escape(order.email),
                )
            return _("Thank you! {bot} is paid until {date}.").format(
                bot=bot_link(tenant.bot_username or order.bot_username),
                date=paid_until(tenant.expires_at),
            )

        await self._send(order, text)

    async def renewal_soon(self, order: Order, payload: dict[str, Any]) -> None:
        def text() -> str:
            return _(
                "Auto-renewal of {bot}: I'm charging {amount} for {days} days from your card "
                "{card} now. Don't want it? Turn auto-renewal off in /subscription."
            ).format(
                bot=bot_link(order.bot_username),
                amount=format_rub(order.amount),
                days=order.period_days,
                card=card(payload.get("card_last4"), None),
            )

        await self._send(order, text)

    async def renewal_failed(self, order: Order, payload: dict[str, Any]) -> None:
        next_at = payload.get("next_at")

        def text() -> str:
            lines = [
                _("Auto-renewal of {bot} failed: {reason}.").format(
                    bot=bot_link(order.bot_username),
                    reason=decline_reason(str(payload.get("reason") or "")),
                )
            ]
            if payload.get("card_dropped"):
                lines.append(_("This card can't be charged any more, so auto-renewal is off."))
            elif next_at:
                lines.append(
                    _("I'll try again on {date}.").format(
                        date=date(datetime.fromisoformat(str(next_at)))
                    )
                )
            else:
                lines.append(_("I won't try again."))
            lines.append(_("To keep the bot running, pay with the button below (any card)."))
            return "\n".join(lines)

        def markup() -> InlineKeyboardMarkup:
            return keyboards.pay_renewal(order.tenant_id or "", format_rub(order.amount))

        await self._send(order, text, markup)

    async def upgrade_refunded(self, order: Order, tenant: Tenant) -> None:
        paid = self.catalog.get(order.plan) if self.catalog is not None else None
        now = self.catalog.get(tenant.plan) if self.catalog is not None else None

        if order.failure in frozenset(LateUpgrade):
            await self._late_upgrade_refunded(order, tenant, LateUpgrade(order.failure or ""))
            return

        def text() -> str:
            bot = bot_link(tenant.bot_username or order.bot_username)
            upgrade = html.escape(paid.name(order.locale) if paid else order.plan)
            if tenant.plan != order.plan_from:  # a later payment covers the plan it is on
                return _(
                    "The payment of {amount} for plan {plan} of {bot} was refunded. {bot} stays "
                    "on plan {current}: it is paid for by a later payment. /subscription"
                ).format(
                    amount=format_rub(order.amount), plan=upgrade, bot=bot,
                    current=html.escape(now.name(order.locale) if now else tenant.plan),
                )  # fmt: skip
            return _(
                "The payment of {amount} for plan {plan} of {bot} was refunded, so {bot} is back "
                "on plan {current}: paid until {date}, then {price} for {days} days. /subscription"
            ).format(
                amount=format_rub(order.amount),
                plan=upgrade,
                bot=bot,
                current=html.escape(now.name(order.locale) if now else tenant.plan),
                date=paid_until(tenant.expires_at),
                price=format_rub(now.price) if now else "—",
                days=now.period_days if now else "—",
            )

        await self._send(order, text)

    async def _late_upgrade_refunded(self, order: Order, tenant: Tenant, late: LateUpgrade) -> None:
        """An upgrade paid too late for the period it was priced for: not applied, refunded;
        a button leads to the same upgrade priced for the period the owner is in now."""
        paid = self.catalog.get(order.plan) if self.catalog is not None else None
        current = self.catalog.get(tenant.plan) if self.catalog is not None else None

        def text() -> str:
            if late is LateUpgrade.RENEWED:
                why = _("the subscription had moved into a new period since its price was counted")
            else:
                why = _("the period its price was counted for had ended")
            return _(
                "Your payment of {amount} for moving {bot} to plan {plan} came after {why}, so "
                "the plan was not changed and the payment is refunded in full: YooKassa returns "
                "the money to your card (it usually takes a few days). {bot} stays on plan "
                "{current}. To move to plan {plan} now, press the button: the price is counted "
                "for the days left of your current period."
            ).format(
                amount=format_rub(order.amount),
                bot=bot_link(tenant.bot_username or order.bot_username),
                plan=html.escape(paid.name(order.locale) if paid else order.plan),
                why=why,
                current=html.escape(current.name(order.locale) if current else tenant.plan),
            )

        def markup() -> InlineKeyboardMarkup:
            name = paid.name(order.locale) if paid else order.plan
            return keyboards.fresh_upgrade(order.tenant_id or "", order.plan, name)

        await self._send(order, text, markup)

    async def setting_up(self, order: Order) -> None:
        def text() -> str:
            return _(
                "Payment received. We're setting up {bot} — it's taking a bit longer than usual. "
                "I'll write here as soon as it's live."
            ).format(bot=bot_link(order.bot_username))

        await self._send(order, text)

    async def token_refused(self, order: Order, code: str) -> None:
        def text() -> str:
            if code == "bot_token_in_use":
                reason = _("this bot is already connected to another business")
            else:
                reason = _("Telegram no longer accepts its token (it was revoked?)")
            return _(
                "Your payment is received, but we can't start {bot}: {reason}. Send the token of "
                "another bot and we'll set it up right away."
            ).format(bot=bot_link(order.bot_username), reason=reason)

        await self._send(order, text, lambda: keyboards.new_token(order.order_id))

    async def suspended(self, order: Order) -> None:
        def text() -> str:
            return _(
                "The payment for {bot} was refunded, so the bot is paused. Your data is kept; "
                "to resume, renew with /subscription."
            ).format(bot=bot_link(order.bot_username))

        await self._send(order, text)
