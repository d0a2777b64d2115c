"""/admin: the panel's home and settings menu; /cancel leaves any input the panel asked for;
"Open the web panel" for the owner."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from client_bot import text
from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards
from client_bot.handlers.admin.callbacks import AdminCb, Screen
from client_bot.handlers.admin.screen import admin_router, day_start, local_today, show
from client_bot.handlers.admin.states import AdminInput


async def home_text(ctx: TenantContext) -> str:
    business = await ctx.business()
    start = day_start(local_today(ctx, business.zone), business.zone)
    today = await ctx.store.bookings_between(start, start + timedelta(days=1))
    customers, _blocked = await ctx.store.customer_counts()
    return _(
        "<b>⚙️ Admin panel</b> · {name}\nBookings today: {today}\nCustomers: {customers}"
    ).format(name=text.esc(business.name) or "—", today=len(today), customers=customers)


WEB_LINK_MINUTES = 15


class WebPanelCb(CallbackData, prefix="aw"):
    """Open the web panel: a fresh one-time login link for the owner."""


def _is_owner(ctx: TenantContext, user_id: int) -> bool:
    """The bot's owner: the one the platform's contract names (ADMIN_IDS), not an admin added in
    the panel; the web lets only the tenant's owner in by such a link."""
    return user_id in ctx.settings.admin_ids


def home_keyboard(ctx: TenantContext, user_id: int) -> InlineKeyboardMarkup:
    """The panel's buttons, and "Open the web panel" for the owner when the platform has one."""
    markup = keyboards.home()
    if ctx.settings.web_public_url and _is_owner(ctx, user_id):
        button = InlineKeyboardButton(
            text=_("🌐 Open the web panel"), callback_data=WebPanelCb().pack()
        )
        markup.inline_keyboard.append([button])
    return markup


async def open_panel(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.from_user is not None
    await state.clear()
    await show(message, await home_text(ctx), home_keyboard(ctx, message.from_user.id))


async def home(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show(query, await home_text(ctx), home_keyboard(ctx, query.from_user.id))


async def web_panel(query: CallbackQuery, ctx: TenantContext) -> None:
    """A one-time link to the web panel, valid for WEB_LINK_MINUTES. The bot has no platform
    key to sign one, so it keeps the SHA-256 of a random token in its own schema
    (web_login_tokens, tenant migration 0012); the web spends it there, as this tenant's role,
    and lets in the tenant's owner only, to this bot only. The token itself is only in the
    button's URL."""
    if not (ctx.settings.web_public_url and _is_owner(ctx, query.from_user.id)):
        await query.answer(_("Only the bot's owner can open the web panel."), show_alert=True)
        return
    token = secrets.token_urlsafe(32)
    # Plain SQL on the tenant's own table: the store (client_bot/store) has no method for it yet.
    await ctx.store.pool.execute(
        "INSERT INTO web_login_tokens (token_hash, telegram_id, expires_at)"
        " VALUES ($1, $2, now() + make_interval(mins => $3))",
        hashlib.sha256(token.encode()).digest(),
        query.from_user.id,
        WEB_LINK_MINUTES,
    )
    await ctx.store.pool.execute(
        "DELETE FROM web_login_tokens WHERE expires_at < now() - interval '1 day'"
    )
    url = f"{ctx.settings.web_public_url.rstrip('/')}/login/link?bot={ctx.tenant_id}&token={token}"
    kb = InlineKeyboardBuilder()
    kb.button(text=_("🌐 Open the web panel"), url=url)
    await show(
        query,
        _(
            "<b>🌐 Web panel</b>\nBookings, customers, leads, conversations and services in the"
            " browser. The button below logs you in once, within {minutes} minutes; for another"
            " time, open /admin again."
        ).format(minutes=WEB_LINK_MINUTES),
        kb.as_markup(),
    )


async def settings(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(query, _("<b>⚙️ Settings</b>\nWhat would you like to change?"), keyboards.settings())


async def cancel(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    if await state.get_state() is None:
        await show(message, _("There is nothing to cancel."), keyboards.home())
        return
    await state.clear()
    assert message.from_user is not None
    await show(
        message,
        _("Cancelled.") + "\n\n" + await home_text(ctx),
        home_keyboard(ctx, message.from_user.id),
    )


async def not_text(message: Message) -> None:
    await message.answer(_("Please send text, or /cancel to stop."))


def router() -> Router:
    r = admin_router("admin_panel")
    r.message.register(open_panel, Command("admin"))
    r.message.register(cancel, Command("cancel"))
    r.message.register(not_text, StateFilter(AdminInput), ~F.text)
    r.callback_query.register(home, AdminCb.filter(F.screen == Screen.home))
    r.callback_query.register(settings, AdminCb.filter(F.screen == Screen.settings))
    r.callback_query.register(web_panel, WebPanelCb.filter())
    return r
