"""Reading a pasted bot token: format, getMe, "already used" — one answer per problem."""

from __future__ import annotations

import contextlib
import html

from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from core.telegram import BotIdentity
from sales_bot.bot_token import Problem, TokenRefused, accept_token
from sales_bot.context import SalesContext
from sales_bot.forms import extract_token


def instructions() -> str:
    return _(
        "Now create the bot of your business in Telegram:\n\n"
        "1. Open @BotFather and send /newbot.\n"
        "2. Send the name customers will see, e.g. <i>Salon Romashka</i>.\n"
        "3. Send a username that ends in <i>bot</i>, e.g. <i>romashka_salon_bot</i>.\n"
        "4. BotFather answers with a token like <code>123456789:AAH…</code> — copy it and send "
        "it to me.\n\n"
        "We keep the token encrypted and use it only to run your bot."
    )


async def read_token(message: Message, ctx: SalesContext) -> tuple[str, BotIdentity] | None:
    """The token in `message` and its bot, or None after telling the user what is wrong."""
    if extract_token(message.text or "") is not None:
        # The token is a secret: take it out of the chat history (best effort).
        with contextlib.suppress(TelegramAPIError):
            await message.delete()
    try:
        return await accept_token(ctx, message.text or "")
    except TokenRefused as refused:
        await message.answer(_refusal(refused))
        return None


def _refusal(refused: TokenRefused) -> str:
    if refused.problem is Problem.FORMAT:
        return _(
            "This doesn't look like a bot token. A token looks like "
            "<code>123456789:AAH…</code> — copy the whole line from @BotFather and send it."
        )
    if refused.problem is Problem.OWN:
        return _("That's my own token 🙂 Send the token of your new bot.")
    if refused.problem is Problem.REJECTED:
        return _(
            "Telegram doesn't accept this token: it is wrong or was revoked. In @BotFather "
            "send /mybots → your bot → API Token, copy the current token and send it here."
        )
    if refused.problem is Problem.UNAVAILABLE:
        return _("I couldn't reach Telegram to check the token. Please send it again in a minute.")
    return _(
        "The bot @{username} is already connected to Botfleet. Create a new bot in "
        "@BotFather (/newbot) and send its token."
    ).format(username=html.escape(refused.username))
