"""The payment message ("Pay" + "I paid — check"), retries, and a new token after a refusal."""

from __future__ import annotations

import html
import logging

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from sales_bot import extension, keyboards
from sales_bot.callbacks import OrderCb
from sales_bot.context import SalesContext
from sales_bot.handlers.tokens import read_token
from sales_bot.kassa import KassaError
from sales_bot.orders import OrderKind, OrderStatus
from sales_bot.plans import Plan, format_rub
from sales_bot.states import NewToken
from sales_bot.store import Order
from sales_bot.text import auto_renewal_terms, bot_link
from sales_bot.vault import order_context

log = logging.getLogger(__name__)


def _summary(order: Order, ctx: SalesContext, locale: str) -> str:
    plan = ctx.catalog.get(order.plan)
    plan_name = plan.name(locale) if plan else order.plan
    if order.kind is OrderKind.EXTEND:
        head = _("Renewal of {bot}: plan {plan}, {amount} for {days} days.")
    elif order.kind is OrderKind.UPGRADE:
        head = _(
            "Upgrade of {bot} to plan {plan}: {amount} for the {days} days left of the period."
        )
    else:
        head = _("Bot {bot} for “{name}”: plan {plan}, {amount} for {days} days.")
    return head.format(
        bot=bot_link(order.bot_username),
        name=html.escape(order.business_name or ""),
        plan=html.escape(plan_name),
        amount=format_rub(order.amount),
        days=order.period_days,
    ) + "\n" + _("The receipt goes to {email}.").format(email=html.escape(order.email)) + "\n" + (
        _("Auto-renewal: on — the card you pay with is saved for the next periods.")
        if order.auto_renew else _("Auto-renewal: off.")
    )  # fmt: skip


async def ask_consent(
    message: Message, ctx: SalesContext, plan: Plan, locale: str, tenant: str = ""
) -> None:
    """The auto-renewal question at checkout: the terms in plain words, a button each."""
    await message.answer(
        _("Plan {plan}: {amount} for {days} days.").format(
            plan=html.escape(plan.name(locale)),
            amount=format_rub(plan.price),
            days=plan.period_days,
        )
        + "\n\n"
        + auto_renewal_terms(format_rub(plan.price), plan.period_days, ctx.renewal_days_before)
        + "\n\n"
        + _("Turn auto-renewal on?"),
        reply_markup=keyboards.consent(tenant),
    )


async def send_checkout(message: Message, order: Order, ctx: SalesContext, locale: str) -> None:
    """Create (or re-use) the order's payment and show the Pay button."""
    try:
        order = await extension.checkout(ctx, order)
    except KassaError as exc:
        log.warning("payment of %s not created: %s", order.order_id, exc)
        await message.answer(
            _summary(order, ctx, locale)
            + "\n\n"
            + _("The payment service didn't answer. Your order is saved — press “Try again”."),
            reply_markup=keyboards.retry_payment(order.order_id),
        )
        return
    assert order.confirmation_url is not None
    await message.answer(
        _summary(order, ctx, locale)
        + "\n\n"
        + _(
            "Press “Pay” to pay on the YooKassa page. When you're back, your bot starts by "
            "itself; if nothing happens in a minute, press “I paid — check”."
        ),
        reply_markup=keyboards.pay(
            order.order_id, order.confirmation_url, format_rub(order.amount)
        ),
    )


async def _own_order(query: CallbackQuery, ctx: SalesContext, order_id: str) -> Order | None:
    order = await ctx.store.get(order_id)
    if order is None or order.user_id != query.from_user.id:
        await query.answer(_("This order is not found."), show_alert=True)
        return None
    return order


async def retry(query: CallbackQuery, callback_data: OrderCb, ctx: SalesContext) -> None:
    order = await _own_order(query, ctx, callback_data.order)
    if order is None or not isinstance(query.message, Message):
        return
    await query.answer()
    if order.status is not OrderStatus.PENDING:
        await query.message.answer(_("This order is already closed. Send /start."))
        return
    await send_checkout(query.message, order, ctx, order.locale)


async def check(query: CallbackQuery, callback_data: OrderCb, ctx: SalesContext) -> None:
    order = await _own_order(query, ctx, callback_data.order)
    if order is None or not isinstance(query.message, Message):
        return
    try:
        order = await ctx.billing.check(order)
    except KassaError:
        await query.answer(
            _("The payment service didn't answer. Try again in a minute."), show_alert=True
        )
        return
    if order.status is OrderStatus.PENDING:
        await query.answer(
            _("The payment hasn't arrived yet. If you have paid, wait a minute and check again."),
            show_alert=True,
        )
        return
    await query.answer()
    if order.status is OrderStatus.PAID and order.fulfilled_at is not None:
        text = _("Done: {bot} is already working.").format(bot=bot_link(order.bot_username))
    elif order.status is OrderStatus.PAID:
        text = _(
            "Payment received, thank you! Setting up {bot} — it usually takes under a minute. "
            "I'll write as soon as it's ready."
        ).format(bot=bot_link(order.bot_username))
    elif order.status is OrderStatus.CANCELED:
        text = _("This payment was canceled. To try again, send /start.")
    else:
        text = _("This payment was refunded.")
    await query.message.answer(text)


async def ask_new_token(
    query: CallbackQuery, callback_data: OrderCb, state: FSMContext, ctx: SalesContext
) -> None:
    order = await _own_order(query, ctx, callback_data.order)
    if order is None or not isinstance(query.message, Message):
        return
    await query.answer()
    if order.failure is None:
        await query.message.answer(_("This order doesn't need a new token any more."))
        return
    await state.set_state(NewToken.token)
    await state.update_data(order_id=order.order_id)
    await query.message.answer(
        _(
            "Send the token of a bot that is not connected to Botfleet yet (create one in "
            "@BotFather with /newbot)."
        )
    )


async def new_token_given(message: Message, state: FSMContext, ctx: SalesContext) -> None:
    order_id = str((await state.get_data()).get("order_id", ""))
    found = await read_token(message, ctx)
    if found is None:
        return
    token, identity = found
    replaced = await ctx.store.replace_token(
        order_id,
        token_enc=ctx.vault.seal(order_context(order_id), token),
        token_sha256=identity.token_sha256,
        bot_id=identity.bot_id,
        username=identity.username,
    )
    await state.clear()
    if not replaced:
        await message.answer(_("This order doesn't need a new token any more."))
        return
    ctx.billing.on_outbox()
    await message.answer(
        _("Thank you! Setting up @{username} — I'll write as soon as it's ready.").format(
            username=html.escape(identity.username)
        )
    )


def router() -> Router:
    """A fresh router (a process may build several bots)."""
    r = Router(name="payment")
    r.callback_query.register(retry, OrderCb.filter(F.action == "retry"))
    r.callback_query.register(check, OrderCb.filter(F.action == "check"))
    r.callback_query.register(ask_new_token, OrderCb.filter(F.action == "token"))
    r.message.register(new_token_given, NewToken.token, F.text)
    return r
