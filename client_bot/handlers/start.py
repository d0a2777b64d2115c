"""/start, the main menu, services and contacts."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import keyboards, text
from client_bot.callbacks import MenuAction, MenuCb
from client_bot.context import TenantContext, end_dialog


async def welcome_text(ctx: TenantContext) -> str:
    business = await ctx.business()
    title = f"<b>{text.esc(business.name)}</b>\n\n" if business.name else ""
    welcome = (
        text.esc(business.welcome_text)
        if business.welcome_text
        else _("Hello! Here you can see our services and book a visit.")
    )
    return title + welcome


async def start(
    message: Message, ctx: TenantContext, state: FSMContext, raw_state: str | None = None
) -> None:
    user = message.from_user
    if user is not None:
        await ctx.store.touch_customer(user.id, user.first_name, user.username, user.language_code)
    await end_dialog(state, raw_state)
    await message.answer(await welcome_text(ctx), reply_markup=keyboards.main_menu())


async def home(
    query: CallbackQuery, ctx: TenantContext, state: FSMContext, raw_state: str | None = None
) -> None:
    await end_dialog(state, raw_state)
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(await welcome_text(ctx), reply_markup=keyboards.main_menu())


async def services_text(ctx: TenantContext) -> str:
    business = await ctx.business()
    items = await ctx.visible_services()
    if not items:
        return _("The list of services is being prepared. Please come back a bit later.")
    lines = [_("<b>Our services</b>")]
    for s in items:
        lines.append(
            _("\n<b>{name}</b> — {price}, {minutes} min").format(
                name=text.esc(s.name),
                price=text.price(s.price, business.locale),
                minutes=s.duration_min,
            )
        )
        if s.description:
            lines.append(text.esc(s.description))
    return "\n".join(lines)


async def show_services(query: CallbackQuery, ctx: TenantContext) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(await services_text(ctx), reply_markup=keyboards.home_button())


async def contacts_text(ctx: TenantContext) -> str:
    business = await ctx.business()
    schedule = await ctx.store.work_schedule()
    lines = [_("<b>Contacts</b>")]
    if business.address:
        lines.append(_("Address: {address}").format(address=text.esc(business.address)))
    if business.phone:
        lines.append(_("Phone: {phone}").format(phone=text.esc(business.phone)))
    if business.map_url:
        lines.append(_('<a href="{url}">Open the map</a>').format(url=text.esc(business.map_url)))
    lines.append(_("\n<b>Opening hours</b>"))
    for weekday in range(7):
        intervals = schedule.hours.get(weekday, [])
        hours = (
            ", ".join(f"{s:%H:%M}–{e:%H:%M}" for s, e in intervals) if intervals else _("closed")
        )
        lines.append(f"{text.weekday_short(weekday, business.locale)}: {hours}")
    return "\n".join(lines)


async def show_contacts(query: CallbackQuery, ctx: TenantContext) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(await contacts_text(ctx), reply_markup=keyboards.home_button())


def router() -> Router:
    """A fresh router for one tenant (a process may host several)."""
    r = Router(name="start")
    r.message.register(start, CommandStart())
    r.callback_query.register(home, MenuCb.filter(F.action == MenuAction.home))
    r.callback_query.register(show_services, MenuCb.filter(F.action == MenuAction.services))
    r.callback_query.register(show_contacts, MenuCb.filter(F.action == MenuAction.contacts))
    return r
