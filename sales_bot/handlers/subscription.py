"""/subscription: the owner's bots with plan, status and expiry; "Extend" pays another period."""

from __future__ import annotations

import asyncio
import html

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from sales_bot.callbacks import ExtendCb
from sales_bot.context import SalesContext
from sales_bot.handlers.payment import send_checkout
from sales_bot.master import MasterError, Tenant
from sales_bot.plans import format_rub
from sales_bot.store import Order
from sales_bot.text import bot_link, date, status_name


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
    lines: list[str] = []
    kb = InlineKeyboardBuilder()
    tenants = await asyncio.gather(*(_tenant(ctx, o.tenant_id or "") for o in orders))
    for order, tenant in zip(orders, tenants, strict=True):
        plan = ctx.catalog.get(tenant.plan if tenant else order.plan) or ctx.catalog.get(order.plan)
        plan_name = plan.name(i18n.current_locale) if plan else order.plan
        lines.append(_card(order, tenant, plan_name))
        if plan is not None and (tenant is None or tenant.status != "deleted"):
            kb.button(
                text=_("Extend {bot} — {amount}").format(
                    bot=f"@{order.bot_username}", amount=format_rub(plan.price)
                ),
                callback_data=ExtendCb(tenant=order.tenant_id or ""),
            )
    for order in waiting:
        if order.kind.value == "new":
            lines.append(_("{bot}: being set up.").format(bot=bot_link(order.bot_username)))
    kb.adjust(1)
    markup: InlineKeyboardMarkup | None = kb.as_markup() if kb.buttons else None
    await message.answer("\n\n".join(lines), reply_markup=markup)


def _card(order: Order, tenant: Tenant | None, plan_name: str) -> str:
    head = f"<b>{bot_link(order.bot_username)}</b> — {html.escape(order.business_name or '')}"
    if tenant is None:
        return head + "\n" + _("Status is unavailable right now, try again later.")
    return "\n".join(
        [
            head,
            _("Plan: {plan}").format(plan=html.escape(plan_name)),
            _("Status: {status}").format(status=status_name(tenant.status)),
            _("Paid until: {date}").format(date=date(tenant.expires_at)),
        ]
    )


async def extend(
    query: CallbackQuery, callback_data: ExtendCb, ctx: SalesContext, i18n: I18n
) -> None:
    orders = await ctx.store.tenants_of(query.from_user.id)
    owned = next((o for o in orders if o.tenant_id == callback_data.tenant), None)
    if owned is None or not isinstance(query.message, Message):
        await query.answer(_("This bot is not found."), show_alert=True)
        return
    await query.answer()
    tenant = await _tenant(ctx, callback_data.tenant)
    plan = ctx.catalog.get(tenant.plan if tenant else owned.plan) or ctx.catalog.get(owned.plan)
    email = await ctx.store.last_email(query.from_user.id)
    if plan is None or email is None:
        await query.message.answer(_("This plan is no longer sold. Send /start."))
        return
    order = await ctx.billing.open_extension(
        user_id=query.from_user.id, locale=i18n.current_locale, plan=plan, email=email, tenant=owned
    )
    await send_checkout(query.message, order, ctx, i18n.current_locale)


def router() -> Router:
    """A fresh router (a process may build several bots)."""
    r = Router(name="subscription")
    r.message.register(subscription, Command("subscription"))
    r.callback_query.register(extend, ExtendCb.filter())
    return r
