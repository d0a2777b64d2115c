"""Free text and voice messages go to the AI assistant (only registered when it is configured).

Thin: the turn itself is `client_bot.assistant.Assistant`; here we show "typing…", download and
transcribe voice messages, and turn the outcome into what the customer reads.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message, User
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.i18n import gettext as _

from client_bot import keyboards, text
from client_bot.assistant import Assistant, ModelUnavailableError, Outcome, Refusal, Reply
from client_bot.booking_service import Booker
from client_bot.context import TenantContext
from client_bot.handlers.fallback import free_text as menu_hint

log = logging.getLogger(__name__)

MAX_VOICE_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download
QUOTE_CHARS = 200


def booker(user: User) -> Booker:
    return Booker(user.id, user.first_name, user.username, user.language_code)


def quote(transcript: str) -> str:
    short = transcript if len(transcript) <= QUOTE_CHARS else transcript[:QUOTE_CHARS] + "…"
    return f"<blockquote>🎙 {text.esc(short)}</blockquote>"


async def deliver(message: Message, reply: Reply, ctx: TenantContext) -> None:
    if reply.outcome is Outcome.ANSWER:
        # The model's words are shown as plain text: escaped, never interpreted as markup.
        await message.answer(text.esc(reply.text))
        return
    if reply.outcome is Outcome.RELAYED:
        return  # a person has the conversation; the assistant stays silent
    if reply.outcome is Outcome.OFF:
        await menu_hint(message)
        return
    if reply.outcome is Outcome.RATE:
        await refuse(message, Refusal.RATE, ctx)
        return
    if reply.outcome is Outcome.BUDGET:
        await refuse(message, Refusal.BUDGET, ctx)
        return
    # FALLBACK: the model did not answer; the customer's message is stored all the same.
    note = ""
    if reply.booked is not None:
        business = await ctx.business()
        note = (
            _(
                "✅ You are booked: <b>{service}</b>, {when}.\nBooking number: #{id}. See you!"
            ).format(
                service=text.esc(reply.booked.service_name),
                when=text.when(reply.booked.starts_at, business.timezone, business.locale),
                id=reply.booked.id,
            )
            + "\n\n"
        )
    await message.answer(
        note
        + _(
            "Sorry, I cannot answer right now. Please try again in a few minutes, or use the menu:"
        ),
        reply_markup=keyboards.main_menu(),
    )


async def refuse(message: Message, refusal: Refusal, ctx: TenantContext) -> None:
    if refusal is Refusal.RATE:
        await message.answer(
            _("You are writing faster than I can answer 🙂 Please wait a minute and write again.")
        )
        return
    business = await ctx.business()
    phone = (
        "\n" + _("Or call us: {phone}").format(phone=text.esc(business.phone))
        if business.phone
        else ""
    )
    resting = _(
        "The assistant has answered a lot of questions today and is resting until tomorrow. "
        "You can still book and see everything in the menu:"
    )
    await message.answer(resting + phone, reply_markup=keyboards.main_menu())


async def on_text(message: Message, ctx: TenantContext, assistant: Assistant, bot: Bot) -> None:
    assert message.text is not None and message.from_user is not None
    async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id):
        reply = await assistant.reply(booker(message.from_user), message.text)
    await deliver(message, reply, ctx)


async def on_voice(message: Message, ctx: TenantContext, assistant: Assistant, bot: Bot) -> None:
    assert message.voice is not None and message.from_user is not None
    voice = message.voice
    if not await assistant.enabled():
        await menu_hint(message)
        return
    if voice.file_size is not None and voice.file_size > MAX_VOICE_BYTES:
        await too_big(message)
        return
    who = booker(message.from_user)
    refusal = await assistant.admit(who)
    if refusal is not None:
        await refuse(message, refusal, ctx)
        return
    async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id):
        try:
            file = await bot.get_file(voice.file_id)
            audio = await bot.download(file)
        except TelegramBadRequest as exc:
            log.info("tenant %s: voice not downloaded: %s", ctx.tenant_id, exc)
            if "too big" in str(exc):
                await too_big(message)
            else:
                await message.answer(_("I could not get this voice message. Please send it again."))
            return
        assert audio is not None
        try:
            transcript = await assistant.transcribe(audio.read())
        except ModelUnavailableError:
            await message.answer(
                _("Sorry, I cannot listen to voice messages right now. Please write in text:")
            )
            return
    if not transcript:
        await message.answer(_("I could not make out any words. Please say it again or write it."))
        return
    await message.answer(quote(transcript))
    async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id):
        reply = await assistant.reply(who, transcript, counted=True)
    await deliver(message, reply, ctx)


async def too_big(message: Message) -> None:
    await message.answer(
        _("This voice message is too long for me (over 20 MB). Please send a shorter one or write.")
    )


def router() -> Router:
    """A fresh router for one tenant (a process may host several)."""
    r = Router(name="assistant")
    r.message.register(on_text, F.text & ~F.text.startswith("/"))
    r.message.register(on_voice, F.voice)
    return r
