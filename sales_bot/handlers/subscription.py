"""/subscription: the owner's bots with plan, status and expiry; auto-renewal (next charge date
and amount, on/off in one tap, remove the card); the list of payments; "Extend" pays another
period (and, with auto-renewal chosen there, saves a new card); "Change card" says so and leads
to the same payment (YooKassa saves the card a payment is made with);
"Change the plan": a higher plan now for the rest of the period at the price difference (an
'upgrade' order, paid on the YooKassa page), a lower one from the next period (stored, charged
and switched at renewal). A payment in the list opens its 54-FZ receipt, read from YooKassa
(`GET /receipts`, through the SDK with the gateway's retries)."""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import datetime

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from core.dates import DATE_ZONE, paid_until
from database.subscriptions import Subscription
from sales_bot import extension
from sales_bot.callbacks import (
    AutoRenewCb,
    CardCb,
    ChangeCardCb,
    ChangePlanCb,
    ConsentCb,
    ExtendCb,
    PaymentsCb,
    ReceiptCb,
)
from sales_bot.context import SalesContext
from sales_bot.handlers.payment import ask_consent, send_checkout
from sales_bot.kassa import KassaError, KassaUnavailableError, ReceiptView
from sales_bot.master import MasterError, Tenant
from sales_bot.orders import LateUpgrade, OrderKind, OrderStatus
from sales_bot.plans import Plan, format_rub
from sales_bot.store import Order
from sales_bot.text import bot_link, card, date, decline_reason, status_name

log = logging.getLogger(__name__)


async def _tenant(ctx: SalesContext, tenant_id: str) -> Tenant | None:
    try:
        return await asyncio.wait_for(ctx.master.get(tenant_id), 10)
    except (MasterError, TimeoutError):
        return None


async def subscription(message: Message, ctx: SalesContext, i18n: I18n) -> None:
    assert message.from_user is not None
    orders = await ctx.store.tenants_of(message.from_user.id)
    waiting = await ctx.store.open_orders(message.from_user.id)
    if not orders and not waiting:
        await message.answer(_("You have no bots yet. Send /start and press “Buy a bot”."))
        return
    subs = await ctx.store.subscriptions_of(message.from_user.id)
    lines: list[str] = []
    kb = InlineKeyboardBuilder()
    tenants = await asyncio.gather(*(_tenant(ctx, o.tenant_id or "") for o in orders))
    for order, tenant in zip(orders, tenants, strict=True):
        plan = ctx.catalog.get(tenant.plan if tenant else order.plan) or ctx.catalog.get(order.plan)
        plan_name = plan.name(i18n.current_locale) if plan else order.plan
        sub = subs.get(order.tenant_id or "")
        following = _next_period_plan(ctx, plan, sub)
        lines.append(_card(order, tenant, plan_name) + "\n" + _renewal(sub, ctx, i18n))
        tenant_id = order.tenant_id or ""
        bot = f"@{order.bot_username}"
        if plan is not None and (tenant is None or tenant.status != "deleted"):
            kb.button(
                text=_("Extend {bot} — {amount}").format(
                    bot=bot, amount=format_rub((following or plan).price)
                ),
                callback_data=ExtendCb(tenant=tenant_id),
            )
        if plan is not None and tenant is not None and tenant.status in ("active", "stopped"):
            kb.button(
                text=_("Change the plan of {bot}").format(bot=bot),
                callback_data=ChangePlanCb(tenant=tenant_id, plan=""),
            )
        if sub is not None and sub.auto_renew:
            kb.button(
                text=_("Turn auto-renewal off for {bot}").format(bot=bot),
                callback_data=AutoRenewCb(tenant=tenant_id, on=False),
            )
        elif sub is not None and sub.method_enc is not None:
            kb.button(
                text=_("Turn auto-renewal on for {bot}").format(bot=bot),
                callback_data=AutoRenewCb(tenant=tenant_id, on=True),
            )
        if sub is not None and plan is not None and (tenant is None or tenant.status != "deleted"):
            kb.button(
                text=_("Change card {card}").format(card=card(sub.card_last4, None))
                if sub.method_enc is not None
                else _("Add a card for auto-renewal of {bot}").format(bot=bot),
                callback_data=ChangeCardCb(tenant=tenant_id),
            )
        if sub is not None and sub.method_enc is not None:
            kb.button(
                text=_("Remove card {card}").format(card=card(sub.card_last4, None)),
                callback_data=CardCb(tenant=tenant_id),
            )
        kb.button(
            text=_("Payments of {bot}").format(bot=bot), callback_data=PaymentsCb(tenant=tenant_id)
        )
    for order in waiting:
        if order.kind is OrderKind.NEW:
            lines.append(_("{bot}: being set up.").format(bot=bot_link(order.bot_username)))
    kb.adjust(1)
    markup: InlineKeyboardMarkup | None = kb.as_markup() if kb.buttons else None
    await message.answer("\n\n".join(lines), reply_markup=markup)


def _next_period_plan(
    ctx: SalesContext, current: Plan | None, sub: Subscription | None
) -> Plan | None:
    """The plan the next period is paid on when the owner chose a downgrade, else None."""
    if sub is None or sub.next_plan is None or (current and current.id == sub.next_plan):
        return None
    return ctx.catalog.get(sub.next_plan)


def _card(order: Order, tenant: Tenant | None, plan_name: str) -> str:
    head = f"<b>{bot_link(order.bot_username)}</b> — {html.escape(order.business_name or '')}"
    if tenant is None:
        return head + "\n" + _("Status is unavailable right now, try again later.")
    return "\n".join(
        [
            head,
            _("Plan: {plan}").format(plan=html.escape(plan_name)),
            _("Status: {status}").format(status=status_name(tenant.status)),
            _("Paid until: {date}").format(date=paid_until(tenant.expires_at)),
        ]
    )


def _renewal(sub: Subscription | None, ctx: SalesContext, i18n: I18n) -> str:
    text = _auto_renewal(sub)
    if sub is not None and sub.next_plan is not None and sub.next_amount is not None:
        plan = ctx.catalog.get(sub.next_plan)
        text += "\n" + _("From {date}: plan {plan}, {amount} for {days} days.").format(
            date=paid_until(sub.paid_until) if sub.paid_until else "—",
            plan=html.escape(plan.name(i18n.current_locale) if plan else sub.next_plan),
            amount=format_rub(sub.next_amount),
            days=sub.next_period_days,
        )
    return text


def _auto_renewal(sub: Subscription | None) -> str:
    if sub is None or not sub.auto_renew:
        text = _("Auto-renewal: off.")
        if sub is not None and sub.method_enc is not None:
            text += " " + _("Saved card: {card}.").format(
                card=card(sub.card_last4, sub.card_expiry)
            )
        return text
    lines = [_("Auto-renewal: on, card {card}.").format(card=card(sub.card_last4, sub.card_expiry))]
    if sub.next_charge_at is not None:
        lines.append(
            _("Next charge: {date}, {amount}.").format(
                date=date(sub.next_charge_at), amount=format_rub(sub.amount)
            )
        )
    if sub.last_failure:
        lines.append(
            _("The last charge failed: {reason}.").format(reason=decline_reason(sub.last_failure))
        )
    return "\n".join(lines)


async def switch(query: CallbackQuery, callback_data: AutoRenewCb, ctx: SalesContext) -> None:
    sub = await ctx.store.set_auto_renew(callback_data.tenant, query.from_user.id, callback_data.on)
    if sub is None or not isinstance(query.message, Message):
        await query.answer(_("This bot is not found."), show_alert=True)
        return
    await query.answer()
    bot = bot_link(sub.bot_username)
    if sub.auto_renew:
        text = _("Auto-renewal of {bot} is on: next charge {date}, {amount} from card {card}.").format(
            bot=bot, date=date(sub.next_charge_at), amount=format_rub(sub.amount),
            card=card(sub.card_last4, None),
        )  # fmt: skip
    elif callback_data.on:
        text = _(
            "There is no saved card for {bot}. To turn auto-renewal on, press “Extend” in "
            "/subscription and choose auto-renewal when you pay."
        ).format(bot=bot)
    else:
        text = _(
            "Auto-renewal of {bot} is off: nothing will be charged. The bot works until {date}."
        ).format(bot=bot, date=paid_until(sub.paid_until))
    await query.message.answer(text)


async def remove_card(query: CallbackQuery, callback_data: CardCb, ctx: SalesContext) -> None:
    sub = await ctx.store.remove_card(callback_data.tenant, query.from_user.id)
    if sub is None or not isinstance(query.message, Message):
        await query.answer(_("This bot is not found."), show_alert=True)
        return
    await query.answer()
    await query.message.answer(
        _(
            "The card is removed and auto-renewal of {bot} is off: nothing will be charged. "
            "The bot works until {date}."
        ).format(bot=bot_link(sub.bot_username), date=paid_until(sub.paid_until))
    )


def _payment_line(order: Order) -> str:
    kind = {
        OrderKind.NEW: _("first payment"),
        OrderKind.EXTEND: _("renewal"),
        OrderKind.RENEWAL: _("auto-renewal"),
        OrderKind.UPGRADE: _("plan upgrade"),
    }[order.kind]
    if order.status is OrderStatus.PAID:
        outcome = _("paid")
    elif order.status is OrderStatus.REFUNDED and order.failure in frozenset(LateUpgrade):
        outcome = _("refunded: paid too late")
    elif order.status is OrderStatus.REFUNDED:
        outcome = _("refunded")
    elif order.status is OrderStatus.PENDING:
        outcome = _("in progress")
    elif order.cancel_reason in ("opted_out", "card_removed"):
        outcome = _("not charged: auto-renewal was turned off")
    elif order.kind is OrderKind.RENEWAL:
        outcome = _("declined: {reason}").format(reason=decline_reason(order.cancel_reason or ""))
    else:
        outcome = _("not paid")
    when = order.paid_at or order.created_at
    return f"{date(when)} — {format_rub(order.amount)} — {kind}: {outcome}"


async def payments(query: CallbackQuery, callback_data: PaymentsCb, ctx: SalesContext) -> None:
    if not isinstance(query.message, Message):
        return
    orders = await ctx.store.payments_of(callback_data.tenant, query.from_user.id)
    await query.answer()
    if not orders:
        await query.message.answer(_("No payments yet."))
        return
    emails = sorted({o.email for o in orders if o.status is not OrderStatus.CANCELED})
    text = "\n".join(
        [_("Payments of {bot}:").format(bot=bot_link(orders[0].bot_username))]
        + [_payment_line(o) for o in orders]
    )
    kb = InlineKeyboardBuilder()
    for order in orders:
        if order.payment_id is not None and order.status in _WITH_RECEIPTS:
            kb.button(
                text=_("🧾 Receipt: {date} — {amount}").format(
                    date=date(order.paid_at or order.created_at), amount=format_rub(order.amount)
                ),
                callback_data=ReceiptCb(order=order.order_id),
            )
    if emails:
        text += "\n\n" + _("YooKassa sent the receipts to {email}.").format(
            email=html.escape(", ".join(emails))
        )
    if kb.buttons:
        text += " " + _("Press a payment to see its receipt.")
    kb.adjust(1)
    await query.message.answer(text, reply_markup=kb.as_markup() if kb.buttons else None)


_WITH_RECEIPTS = extension.WITH_RECEIPTS


async def receipt(query: CallbackQuery, callback_data: ReceiptCb, ctx: SalesContext) -> None:
    """The 54-FZ receipt(s) of one of the owner's payments, as YooKassa has them now."""
    if not isinstance(query.message, Message):
        await query.answer(_("This payment is not found."), show_alert=True)
        return
    try:  # the owner's web reads them by the same calls (extension.internal_routes)
        order = await extension.owned_payment(ctx, query.from_user.id, callback_data.order)
    except extension.NotOwned:
        await query.answer(_("This payment is not found."), show_alert=True)
        return
    await query.answer()
    try:
        receipts = await extension.receipts_of(ctx, order)
    except KassaUnavailableError as exc:
        log.warning("receipts of %s: %s", order.order_id, exc)
        await query.message.answer(
            _("YooKassa isn't answering right now, so I can't show the receipt. Try again in a "
              "few minutes.")
        )  # fmt: skip
        return
    except KassaError as exc:
        log.error("receipts of %s: %s", order.order_id, exc)
        await query.message.answer(
            _("YooKassa refused to show the receipt of this payment. Write to us: {contact}").format(
                contact=html.escape(ctx.support_contact)
            )
        )  # fmt: skip
        return
    head = _("Payment of {date}, {amount} — {bot}").format(
        date=date(order.paid_at or order.created_at),
        amount=format_rub(order.amount),
        bot=bot_link(order.bot_username),
    )
    sale = [r for r in receipts if r.type == "payment"]
    parts = [_receipt_text(r) for r in sale] or [_receipt_pending()]
    parts += [_receipt_text(r) for r in receipts if r.type == "refund"]
    await query.message.answer("\n\n".join([f"<b>{head}</b>", *parts]))


def _receipt_pending() -> str:
    return _(
        "The receipt is not registered yet: YooKassa is passing it to the tax service. "
        "Try again in a few minutes."
    )


def _receipt_text(receipt: ReceiptView) -> str:
    """One receipt with its 54-FZ details, or why they are not there yet."""
    title = (
        _("Receipt (54-FZ): refund") if receipt.type == "refund" else _("Receipt (54-FZ): payment")
    )
    if receipt.status == "pending":
        return f"{title}\n{_receipt_pending()}"
    if receipt.status != "succeeded":
        return f"{title}\n" + _(
            "YooKassa could not register this receipt. Write to us if you need it now."
        )
    lines = [title, _("Amount: {amount}").format(amount=format_rub(receipt.total))]
    lines += [
        f"• {html.escape(item.description)} — {item.quantity.normalize():f} × "
        f"{format_rub(item.amount)}"
        for item in receipt.items
    ]
    if receipt.registered_at is not None:
        moment = receipt.registered_at.astimezone(DATE_ZONE).strftime("%d.%m.%Y %H:%M")
        lines.append(_("Date: {moment} (Moscow time)").format(moment=moment))
    lines += [
        _("Fiscal storage (FN): {value}").format(value=html.escape(receipt.fiscal_storage_number or "—")),
        _("Fiscal document (FD): {value}").format(value=html.escape(receipt.fiscal_document_number or "—")),
        _("Fiscal attribute (FP): {value}").format(value=html.escape(receipt.fiscal_attribute or "—")),
        _("Status: registered"),
    ]  # fmt: skip
    return "\n".join(lines)


async def _owned(ctx: SalesContext, user_id: int, tenant_id: str) -> Order | None:
    orders = await ctx.store.tenants_of(user_id)
    return next((o for o in orders if o.tenant_id == tenant_id), None)


async def extend(
    query: CallbackQuery, callback_data: ExtendCb, ctx: SalesContext, i18n: I18n
) -> None:
    await _offer_extension(query, callback_data.tenant, ctx, i18n, new_card=False)


async def change_card(
    query: CallbackQuery, callback_data: ChangeCardCb, ctx: SalesContext, i18n: I18n
) -> None:
    """A card is saved by a payment made with it (YooKassa saves the method it paid with): the
    owner pays the next period with the new card and agrees to auto-renewal; the new card then
    replaces the old one, which is never charged again."""
    await _offer_extension(query, callback_data.tenant, ctx, i18n, new_card=True)


async def _offer_extension(
    query: CallbackQuery, tenant_id: str, ctx: SalesContext, i18n: I18n, *, new_card: bool
) -> None:
    owned = await _owned(ctx, query.from_user.id, tenant_id)
    if owned is None or not isinstance(query.message, Message):
        await query.answer(_("This bot is not found."), show_alert=True)
        return
    await query.answer()
    tenant = await _tenant(ctx, tenant_id)
    plan = ctx.catalog.get(tenant.plan if tenant else owned.plan) or ctx.catalog.get(owned.plan)
    sub = (await ctx.store.subscriptions_of(query.from_user.id)).get(tenant_id)
    plan = _next_period_plan(ctx, plan, sub) or plan
    if plan is None:
        await query.message.answer(_("This plan is no longer sold. Send /start."))
        return
    if new_card:
        await query.message.answer(
            _(
                "A card is saved by paying with it. Pay the next period of {bot} ({amount} for "
                "{days} days) with the new card and choose auto-renewal: the new card replaces "
                "the old one, and the old one is not charged any more."
            ).format(
                bot=bot_link(owned.bot_username), amount=format_rub(plan.price),
                days=plan.period_days,
            )
        )  # fmt: skip
    await ask_consent(query.message, ctx, plan, i18n.current_locale, tenant=tenant_id)


async def extend_consent(
    query: CallbackQuery, callback_data: ConsentCb, ctx: SalesContext, i18n: I18n
) -> None:
    if not isinstance(query.message, Message):
        await query.answer(_("This bot is not found."), show_alert=True)
        return
    try:
        made = await extension.open_extension(
            ctx, query.from_user.id, callback_data.tenant, i18n.current_locale,
            auto_renew=callback_data.on,
        )  # fmt: skip
    except extension.NotOwned:
        await query.answer(_("This bot is not found."), show_alert=True)
        return
    except extension.PlanGone:
        await query.answer()
        await query.message.answer(_("This plan is no longer sold. Send /start."))
        return
    await query.answer()
    await send_checkout(query.message, made.order, ctx, i18n.current_locale)


async def change_plan(
    query: CallbackQuery, callback_data: ChangePlanCb, ctx: SalesContext, i18n: I18n
) -> None:
    """The plans to move to (`plan` empty), or the move itself: an upgrade is paid now, a
    downgrade is stored for the next period, the current plan cancels a stored downgrade."""
    owned = await _owned(ctx, query.from_user.id, callback_data.tenant)
    if owned is None or not isinstance(query.message, Message):
        await query.answer(_("This bot is not found."), show_alert=True)
        return
    await query.answer()
    tenant = await _tenant(ctx, callback_data.tenant)
    current = ctx.catalog.get(tenant.plan) if tenant else None
    if tenant is None or current is None or tenant.expires_at is None:
        await query.message.answer(_("Status is unavailable right now, try again later."))
        return
    locale = i18n.current_locale
    if not callback_data.plan:
        await _plan_choice(query.message, ctx, tenant.tenant_id, current, tenant.expires_at, locale)
        return
    try:  # the owner's web changes it by the same call (extension.internal_routes)
        move = await extension.change_plan(
            ctx, query.from_user.id, tenant.tenant_id, callback_data.plan, locale
        )
    except extension.PlanGone:
        await query.message.answer(_("This plan is no longer sold. Send /start."))
        return
    except extension.NotMovable:
        await query.message.answer(_("Status is unavailable right now, try again later."))
        return
    except extension.NotOwned:
        await query.message.answer(_("This bot is not found."))
        return
    bot = bot_link(owned.bot_username)
    target = move.target
    if move.kind == "kept":
        await query.message.answer(
            _("{bot} stays on plan {plan}.").format(bot=bot, plan=html.escape(current.name(locale)))
        )
        return
    if move.order is not None:
        if move.order.status is OrderStatus.PAID:
            await query.message.answer(
                _("This upgrade is paid already: the plan is being changed.")
            )
            return
        await send_checkout(query.message, move.order, ctx, locale)
        return
    await query.message.answer(
        _(
            "From {date} {bot} moves to plan {plan}: {amount} for {days} days. Until then "
            "everything of plan {current} keeps working; nothing is charged now."
        ).format(
            date=paid_until(tenant.expires_at),
            bot=bot,
            plan=html.escape(target.name(locale)),
            amount=format_rub(target.price),
            days=target.period_days,
            current=html.escape(current.name(locale)),
        )
    )


async def _plan_choice(
    message: Message, ctx: SalesContext, tenant_id: str, current: Plan, end: datetime, locale: str
) -> None:
    kb = InlineKeyboardBuilder()
    lines = [
        _("Plan now: {plan}. Choose another one:").format(plan=html.escape(current.name(locale)))
    ]
    for change in extension.plan_changes(ctx, current, end):  # as the owner's web lists them
        plan = change.to
        if change.upgrade:
            lines.append(
                _(
                    "{plan}: now, {amount} for the {days} days left; then {price} for {period} days."
                ).format(
                    plan=html.escape(plan.name(locale)),
                    amount=format_rub(change.amount),
                    days=change.days_left,
                    price=format_rub(plan.price),
                    period=plan.period_days,
                )
            )
        else:
            lines.append(
                _("{plan}: from {date}, {price} for {period} days.").format(
                    plan=html.escape(plan.name(locale)),
                    date=paid_until(end),
                    price=format_rub(plan.price),
                    period=plan.period_days,
                )
            )
        kb.button(
            text=plan.name(locale), callback_data=ChangePlanCb(tenant=tenant_id, plan=plan.id)
        )
    kb.button(
        text=_("Keep {plan}").format(plan=current.name(locale)),
        callback_data=ChangePlanCb(tenant=tenant_id, plan=current.id),
    )
    kb.adjust(1)
    await message.answer("\n".join(lines), reply_markup=kb.as_markup())


def router() -> Router:
    """A fresh router (a process may build several bots)."""
    r = Router(name="subscription")
    r.message.register(subscription, Command("subscription"))
    # The owner's web "Renew / pay" opens t.me/<sales bot>?start=subscription (web/subscription.py).
    r.message.register(subscription, CommandStart(deep_link=True, magic=F.args == "subscription"))
    r.callback_query.register(extend, ExtendCb.filter())
    r.callback_query.register(extend_consent, ConsentCb.filter(F.tenant != ""))
    r.callback_query.register(switch, AutoRenewCb.filter())
    r.callback_query.register(remove_card, CardCb.filter())
    r.callback_query.register(change_card, ChangeCardCb.filter())
    r.callback_query.register(payments, PaymentsCb.filter())
    r.callback_query.register(receipt, ReceiptCb.filter())
    r.callback_query.register(change_plan, ChangePlanCb.filter())
    return r
