"""Checking a bot token an owner gives: its form, getMe through TELEGRAM_API_URL, not our own
bot, not connected to Botfleet already. One answer per problem, the same for both doors that
take a token: the dialog (`handlers/tokens.py` words it in the chat) and the owner's web
(`purchase.py` answers it with a code the web words).
"""

from __future__ import annotations

import enum
import logging

from aiogram.exceptions import TelegramAPIError

from core.telegram import (
    BotIdentity,
    TelegramUnavailableError,
    TokenRejectedError,
    build_bot,
    check_bot_token,
)
from sales_bot.context import SalesContext
from sales_bot.forms import extract_token

log = logging.getLogger(__name__)


class Problem(enum.StrEnum):
    FORMAT = "bad_format"  # not a token at all
    OWN = "own_token"  # the sales bot's own token
    REJECTED = "token_rejected"  # Telegram does not accept it (wrong or revoked)
    UNAVAILABLE = "telegram_unavailable"  # Telegram can't say now: try again
    TAKEN = "token_in_use"  # its bot is connected to Botfleet already


class TokenRefused(Exception):
    def __init__(self, problem: Problem, username: str = "") -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.username = username


async def accept_token(ctx: SalesContext, text: str) -> tuple[str, BotIdentity]:
    """The token in `text` (people paste it with words around) and its bot; TokenRefused."""
    token = extract_token(text)
    if token is None:
        raise TokenRefused(Problem.FORMAT)
    if ctx.own_bot_id and token.partition(":")[0] == str(ctx.own_bot_id):
        raise TokenRefused(Problem.OWN)
    try:
        identity = await check_bot_token(token, ctx.telegram_api_url, ctx.telegram_timeout)
    except TokenRejectedError:
        raise TokenRefused(Problem.REJECTED) from None
    except TelegramUnavailableError:
        raise TokenRefused(Problem.UNAVAILABLE) from None
    if await ctx.store.token_taken(identity.token_sha256):
        raise TokenRefused(Problem.TAKEN, identity.username)
    return token, identity


async def first_private_sender(ctx: SalesContext, token: str) -> int | None:
    """Who wrote to the new bot first in a private chat (pressed Start): its owner, who just
    made it in @BotFather. The updates are read, not confirmed, so the bot itself still gets
    that /start when it starts. None: nobody yet. TokenRefused(UNAVAILABLE) when Telegram
    can't say now (also while something else polls the token)."""
    bot = build_bot(token, ctx.telegram_api_url, timeout=ctx.telegram_timeout)
    try:
        updates = await bot.get_updates(timeout=0, allowed_updates=["message"])
    except TelegramAPIError as exc:
        log.warning("getUpdates of a new bot failed: %s", type(exc).__name__)
        raise TokenRefused(Problem.UNAVAILABLE) from None
    finally:
        await bot.session.close()
    for update in updates:
        message = update.message
        sender = message.from_user if message is not None else None
        if message is not None and message.chat.type == "private" and sender and not sender.is_bot:
            return sender.id
    return None
