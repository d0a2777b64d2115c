"""A person takes over from the AI assistant: an admin replies to a customer through the bot
and hands the conversation back when done. While a handoff is on, the assistant is silent for
that customer and what the customer writes goes to the admins."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.callbacks import HandoffAction, HandoffCb
from client_bot.context import TenantContext
from client_bot.handlers.admin import parse
from client_bot.handlers.admin.screen import TYPED, admin_router, prompt, show
from client_bot.handlers.admin.states import AdminInput
from client_bot.notices import handoff_buttons

log = logging.getLogger(__name__)
REPLY_MAX = 3500


async def ask_reply(query: CallbackQuery, callback_data: HandoffCb, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.handoff_reply,
        _("Type your answer to the customer; it goes out from the bot. /cancel to stop."),
        customer_id=callback_data.customer_id,
    )


async def send_reply(message: Message, ctx: TenantContext, state: FSMContext, bot: Bot) -> None:
    assert message.text is not None
    customer_id = int((await state.get_data())["customer_id"])
    try:
        body = parse.text_value(message.text, REPLY_MAX)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    # A person answering means a person has the conversation (also after a hand-back).
    await ctx.store.assistant.start_handoff(customer_id, "manager replied")
    try:
        await bot.send_message(customer_id, "👤 " + text.esc(body))
    except TelegramAPIError as exc:
        log.info("tenant %s: reply to %s not delivered: %s", ctx.tenant_id, customer_id, exc)
        await show(message, _("⚠️ Not delivered: the customer has blocked the bot or left."))
        return
    await ctx.store.assistant.add_message(customer_id, "staff", body)
    await show(
        message,
        _("✅ Delivered. The assistant stays silent for this customer until you hand back."),
        handoff_buttons(customer_id),
    )


async def release(
    query: CallbackQuery, callback_data: HandoffCb, ctx: TenantContext, state: FSMContext, bot: Bot
) -> None:
    await state.clear()
    customer_id = callback_data.customer_id
    if not await ctx.store.assistant.end_handoff(customer_id):
        await query.answer(_("This customer is already with the assistant."), show_alert=True)
        return
    await show(query, _("🤖 The assistant answers this customer again."))
    try:
        await bot.send_message(
            customer_id,
            _("Thank you for waiting! I am the assistant again: ask me anything or use the menu."),
        )
    except TelegramAPIError as exc:
        log.info("tenant %s: %s not told about the hand-back: %s", ctx.tenant_id, customer_id, exc)


def router() -> Router:
    r = admin_router("admin_handoff")
    r.callback_query.register(ask_reply, HandoffCb.filter(F.action == HandoffAction.reply))
    r.callback_query.register(release, HandoffCb.filter(F.action == HandoffAction.release))
    r.message.register(send_reply, AdminInput.handoff_reply, TYPED)
    return r
