"""/start, plans, FAQ, contact, language."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from sales_bot import keyboards
from sales_bot.callbacks import LangCb, MenuCb
from sales_bot.context import SalesContext
from sales_bot.plans import format_rub
from sales_bot.text import plans_text


def welcome(ctx: SalesContext, locale: str) -> str:
    cheapest = min(ctx.catalog, key=lambda p: p.monthly_price)
    return (
        _(
            "<b>Botfleet</b> — your own Telegram bot for your business, ready in a minute.\n\n"
            "Customers book your services in the bot, get reminders and ask questions; "
            "you manage services, hours, bookings and broadcasts right in Telegram.\n\n"
            "Plans from {price} a month."
        ).format(price=format_rub(cheapest.monthly_price))
        + "\n\n"
        + plans_text(ctx.catalog, locale)
    )


async def start(message: Message, state: FSMContext, ctx: SalesContext, i18n: I18n) -> None:
    await state.clear()
    await message.answer(
        welcome(ctx, i18n.current_locale), reply_markup=keyboards.home(i18n.current_locale)
    )


async def home(query: CallbackQuery, state: FSMContext, ctx: SalesContext, i18n: I18n) -> None:
    await state.clear()
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            welcome(ctx, i18n.current_locale), reply_markup=keyboards.home(i18n.current_locale)
        )


async def show_plans(query: CallbackQuery, ctx: SalesContext, i18n: I18n) -> None:
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            plans_text(ctx.catalog, i18n.current_locale), reply_markup=keyboards.back_home()
        )


async def faq(query: CallbackQuery) -> None:
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            _(
                "<b>FAQ</b>\n\n"
                "<b>What do I need?</b> A Telegram account. You create the bot in @BotFather "
                "(we show how) and send us its token.\n\n"
                "<b>How fast is it?</b> Your bot starts within a minute after the payment.\n\n"
                "<b>How do I manage it?</b> Send /admin in your new bot: services, hours, "
                "bookings, customers, broadcasts.\n\n"
                "<b>How do I pay?</b> By card or SBP through YooKassa; the receipt comes to "
                "your email.\n\n"
                "<b>What happens when the period ends?</b> We remind you beforehand; if you "
                "don't renew, the bot pauses and your data is kept. Renew with /subscription."
            ),
            reply_markup=keyboards.back_home(),
        )


async def contact(query: CallbackQuery, ctx: SalesContext) -> None:
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            _("Questions? Write to {contact} — we answer within a working day.").format(
                contact=html.escape(ctx.support_contact)
            ),
            reply_markup=keyboards.back_home(),
        )


async def language(
    query: CallbackQuery, callback_data: LangCb, ctx: SalesContext, i18n: I18n
) -> None:
    locale = callback_data.locale if callback_data.locale in ("ru", "en") else "ru"
    await ctx.locales.set_locale(query.from_user.id, locale)
    await query.answer()
    with i18n.use_locale(locale):
        if query.message is not None:
            await query.message.answer(welcome(ctx, locale), reply_markup=keyboards.home(locale))


async def help_(message: Message) -> None:
    await message.answer(
        _("/start — about Botfleet and plans\n/subscription — your bots, expiry and renewal")
    )


async def anything(message: Message) -> None:
    await message.answer(_("I didn't get that. Send /start to see the menu."))


async def stale_button(query: CallbackQuery) -> None:
    await query.answer(_("This button is out of date. Send /start."), show_alert=True)


def router() -> Router:
    """A fresh router (a process may build several bots)."""
    r = Router(name="start")
    r.message.register(start, CommandStart())
    r.callback_query.register(home, MenuCb.filter(F.action == "home"))
    r.callback_query.register(show_plans, MenuCb.filter(F.action == "plans"))
    r.callback_query.register(faq, MenuCb.filter(F.action == "faq"))
    r.callback_query.register(contact, MenuCb.filter(F.action == "contact"))
    r.callback_query.register(language, LangCb.filter())
    r.message.register(help_, Command("help"))
    return r


def fallback() -> Router:
    """A fresh router (a process may build several bots)."""
    r = Router(name="fallback")
    r.message.register(anything)
    r.callback_query.register(stale_button)
    return r
