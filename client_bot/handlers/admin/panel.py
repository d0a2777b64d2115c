"""/admin: the panel's home and settings menu; /cancel leaves any input the panel asked for."""

from __future__ import annotations

from datetime import timedelta

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

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


async def open_panel(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show(message, await home_text(ctx), keyboards.home())


async def home(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show(query, await home_text(ctx), keyboards.home())


async def settings(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(query, _("<b>⚙️ Settings</b>\nWhat would you like to change?"), keyboards.settings())


async def cancel(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    if await state.get_state() is None:
        await show(message, _("There is nothing to cancel."), keyboards.home())
        return
    await state.clear()
    await show(message, _("Cancelled.") + "\n\n" + await home_text(ctx), keyboards.home())


async def not_text(message: Message) -> None:
    await message.answer(_("Please send text, or /cancel to stop."))


def router() -> Router:
    r = admin_router("admin_panel")
    r.message.register(open_panel, Command("admin"))
    r.message.register(cancel, Command("cancel"))
    r.message.register(not_text, StateFilter(AdminInput), ~F.text)
    r.callback_query.register(home, AdminCb.filter(F.screen == Screen.home))
    r.callback_query.register(settings, AdminCb.filter(F.screen == Screen.settings))
    return r
