"""Checking a pasted bot token with getMe, through TELEGRAM_API_URL, with a throwaway Bot."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramNotFound,
    TelegramServerError,
    TelegramUnauthorizedError,
)

from core.telegram import InvalidBotTokenError, build_bot


class TokenRejectedError(Exception):
    """Telegram does not know this token (wrong or revoked)."""


class TelegramDownError(Exception):
    """Telegram could not be asked; try again later."""


@dataclass(frozen=True, slots=True)
class BotIdentity:
    bot_id: int
    username: str
    first_name: str


async def check_bot_token(token: str, api_url: str, request_timeout: float = 10.0) -> BotIdentity:
    """getMe with `token`; TokenRejectedError or TelegramDownError when it can't be confirmed."""
    try:
        bot = build_bot(token, api_url, request_timeout)
    except InvalidBotTokenError:
        raise TokenRejectedError("not a bot token") from None
    try:
        me = await bot.get_me()
    except (TelegramUnauthorizedError, TelegramNotFound):
        raise TokenRejectedError("Telegram refused the token") from None
    except (TelegramNetworkError, TelegramServerError, TimeoutError) as exc:
        raise TelegramDownError(type(exc).__name__) from None
    finally:
        await bot.session.close()
    if not me.is_bot or not me.username:
        raise TokenRejectedError("the token does not belong to a bot")
    return BotIdentity(me.id, me.username, me.first_name)
