"""Buying a bot: plan, business name, category, time zone, bot token, email, payment."""

from __future__ import annotations

import html
import logging

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from core.categories import CATEGORIES
from sales_bot import keyboards
from sales_bot.billing import Draft
from sales_bot.callbacks import (
    BotOkCb,
    CategoryCb,
    ConsentCb,
    EmailCb,
    MenuCb,
    PlanCb,
    TimezoneCb,
)
from sales_bot.context import SalesContext
from sales_bot.forms import TIMEZONES, clean_business_name, clean_email
from sales_bot.handlers.payment import ask_consent, send_checkout
from sales_bot.handlers.tokens import instructions, read_token
from sales_bot.states import Onboarding
from sales_bot.text import category_name

log = logging.getLogger(__name__)


def _draft_context(user_id: int) -> str:
    return f"draft:{user_id}"


async def buy(query: CallbackQuery, state: FSMContext, ctx: SalesContext, i18n: I18n) -> None:
    await state.clear()
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            _("Choose a plan:"), reply_markup=keyboards.plans(ctx.catalog, i18n.current_locale)
        )


async def plan_chosen(
    query: CallbackQuery, callback_data: PlanCb, state: FSMContext, ctx: SalesContext, i18n: I18n
) -> None:
    plan = ctx.catalog.get(callback_data.plan)
    if plan is None:
        await query.answer(_("This plan is no longer sold. Send /start."), show_alert=True)
        return
    await query.answer()
    await state.clear()
    await state.set_state(Onboarding.name)
    await state.update_data(plan=plan.id)
    if query.message is not None:
        await query.message.answer(
            _("Plan <b>{plan}</b>. What is your business called? (as customers should see it)")
            .format(plan=html.escape(plan.name(i18n.current_locale)))
        )  # fmt: skip


async def name_given(message: Message, state: FSMContext) -> None:
    name = clean_business_name(message.text or "")
    if name is None:
        await message.answer(_("Please send the name as text, up to 100 characters."))
        return
    await state.update_data(business_name=name)
    await state.set_state(Onboarding.category)
    await message.answer(
        _("What does “{name}” do?").format(name=html.escape(name)),
        reply_markup=keyboards.categories(),
    )


async def category_chosen(
    query: CallbackQuery, callback_data: CategoryCb, state: FSMContext
) -> None:
    if callback_data.category not in CATEGORIES:
        await query.answer()
        return
    await query.answer(category_name(callback_data.category))
    await state.update_data(category=callback_data.category)
    await state.set_state(Onboarding.timezone)
    if query.message is not None:
        await query.message.answer(
            _("Which time zone do you work in? Bookings and reminders use it."),
            reply_markup=keyboards.timezones(),
        )


async def timezone_chosen(
    query: CallbackQuery, callback_data: TimezoneCb, state: FSMContext
) -> None:
    if not 0 <= callback_data.index < len(TIMEZONES):
        await query.answer()
        return
    await query.answer()
    await state.update_data(timezone=TIMEZONES[callback_data.index])
    await state.set_state(Onboarding.token)
    if query.message is not None:
        await query.message.answer(instructions())


async def token_given(message: Message, state: FSMContext, ctx: SalesContext) -> None:
    assert message.from_user is not None
    found = await read_token(message, ctx)
    if found is None:
        return
    token, identity = found
    await state.update_data(
        token_enc=ctx.vault.seal(_draft_context(message.from_user.id), token),
        bot_id=identity.bot_id,
        bot_username=identity.username,
    )
    await state.set_state(Onboarding.confirm_bot)
    await message.answer(
        _("Found your bot @{username} ({name}). Is this the right one?").format(
            username=html.escape(identity.username), name=html.escape(identity.first_name)
        ),
        reply_markup=keyboards.confirm_bot(),
    )


async def bot_confirmed(
    query: CallbackQuery, callback_data: BotOkCb, state: FSMContext, ctx: SalesContext
) -> None:
    await query.answer()
    if query.message is None:
        return
    if not callback_data.ok:
        await state.update_data(token_enc=None, bot_id=None, bot_username=None)
        await state.set_state(Onboarding.token)
        await query.message.answer(_("OK, send the token of the right bot."))
        return
    await state.set_state(Onboarding.email)
    last = await ctx.store.last_email(query.from_user.id)
    await query.message.answer(
        _("Last step: your email for the receipt (we send it as the law on receipts requires)."),
        reply_markup=keyboards.reuse_email(last) if last else None,
    )


async def email_given(message: Message, state: FSMContext, ctx: SalesContext, i18n: I18n) -> None:
    email = clean_email(message.text or "")
    if email is None:
        await message.answer(
            _("This doesn't look like an email address (e.g. name@example.com). Try again.")
        )
        return
    await _consent(message, email, state, ctx, i18n)


async def email_reused(
    query: CallbackQuery, state: FSMContext, ctx: SalesContext, i18n: I18n
) -> None:
    await query.answer()
    email = await ctx.store.last_email(query.from_user.id)
    if email and isinstance(query.message, Message):
        await _consent(query.message, email, state, ctx, i18n)


async def _consent(
    message: Message, email: str, state: FSMContext, ctx: SalesContext, i18n: I18n
) -> None:
    """Before the payment: what auto-renewal means, and the owner's yes or no."""
    plan = ctx.catalog.get(str((await state.get_data()).get("plan")))
    if plan is None:
        await state.clear()
        await message.answer(_("Something got lost on the way, sorry. Send /start to begin again."))
        return
    await state.update_data(email=email)
    await state.set_state(Onboarding.consent)
    await ask_consent(message, ctx, plan, i18n.current_locale)


async def consent_given(
    query: CallbackQuery, callback_data: ConsentCb, state: FSMContext, ctx: SalesContext,
    i18n: I18n,
) -> None:  # fmt: skip
    await query.answer()
    email = str((await state.get_data()).get("email") or "")
    if email and isinstance(query.message, Message):
        await _order(
            query.message, query.from_user.id, email, state, ctx, i18n,
            auto_renew=callback_data.on,
        )  # fmt: skip


async def _order(
    message: Message, user_id: int, email: str, state: FSMContext, ctx: SalesContext, i18n: I18n,
    *, auto_renew: bool,
) -> None:  # fmt: skip
    data = await state.get_data()
    plan = ctx.catalog.get(str(data.get("plan")))
    if plan is None or not data.get("token_enc") or not data.get("business_name"):
        await state.clear()
        await message.answer(_("Something got lost on the way, sorry. Send /start to begin again."))
        return
    token = ctx.vault.open(_draft_context(user_id), str(data["token_enc"]))
    order = await ctx.billing.open_new(
        Draft(
            user_id=user_id,
            locale=i18n.current_locale,
            plan=plan,
            email=email,
            business_name=str(data["business_name"]),
            category=str(data.get("category") or "other"),
            timezone=str(data.get("timezone") or "Europe/Moscow"),
            bot_id=int(data["bot_id"]),
            bot_username=str(data["bot_username"]),
            token=token,
            auto_renew=auto_renew,
        )
    )
    await state.clear()
    log.info("order %s opened (plan %s, auto-renewal %s)", order.order_id, plan.id, auto_renew)
    await send_checkout(message, order, ctx, i18n.current_locale)


def router() -> Router:
    """A fresh router (a process may build several bots)."""
    r = Router(name="buy")
    r.callback_query.register(buy, MenuCb.filter(F.action == "buy"))
    r.callback_query.register(plan_chosen, PlanCb.filter())
    r.message.register(name_given, Onboarding.name, F.text)
    r.callback_query.register(category_chosen, Onboarding.category, CategoryCb.filter())
    r.callback_query.register(timezone_chosen, Onboarding.timezone, TimezoneCb.filter())
    r.message.register(token_given, Onboarding.token, F.text)
    r.callback_query.register(bot_confirmed, Onboarding.confirm_bot, BotOkCb.filter())
    r.message.register(email_given, Onboarding.email, F.text)
    r.callback_query.register(email_reused, Onboarding.email, EmailCb.filter(F.reuse))
    r.callback_query.register(consent_given, Onboarding.consent, ConsentCb.filter(F.tenant == ""))
    return r
