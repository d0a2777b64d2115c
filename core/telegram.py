"""The one way every process builds an aiogram `Bot`, and waits for Telegram at start."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError, TelegramNotFound, TelegramUnauthorizedError
from aiogram.types import User

from core.retry import backoff
from core.settings import BOT_TOKEN_RE, TELEGRAM_PUBLIC_API


class InvalidBotTokenError(ValueError):
    """A string that cannot be a Telegram bot token."""


class BotTokenRefusedError(RuntimeError):
    """Telegram answered, and refused the bot's token (revoked or never valid): retrying is
    useless until somebody puts a current token from @BotFather in the settings."""


def check_token_format(token: str) -> str:
    if not isinstance(token, str) or not BOT_TOKEN_RE.match(token):
        raise InvalidBotTokenError(
            "this is not a bot token: @BotFather gives one like 123456789:AbC-dEf_... "
            "(digits, a colon, then at least 20 letters, digits, '-' or '_')"
        )
    return token


def build_bot(token: str, api_url: str = TELEGRAM_PUBLIC_API, timeout: float = 30.0) -> Bot:
    """A Bot with HTML parse mode, talking to `api_url` (TELEGRAM_API_URL) with a timeout."""
    check_token_format(token)
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")), timeout=timeout)
    return Bot(
        token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
    )


async def wait_for_telegram(
    bot: Bot, who: str, *, first_delay: float = 1.0, max_delay: float = 60.0
) -> User:
    """getMe, retried with backoff while Telegram is unreachable or failing (network errors,
    5xx, flood control), so that a process started while Telegram (or the Bot API server) is
    down waits for it instead of crashing; BotTokenRefusedError when the token is refused.

    `who` names the token's setting in the log lines (the token itself is never logged)."""
    log = logging.getLogger(__name__)
    failures = 0
    while True:
        try:
            return await bot.me()
        except (TelegramUnauthorizedError, TelegramNotFound):
            raise BotTokenRefusedError(
                f"Telegram refused {who} (revoked or invalid): put a current token from "
                "@BotFather in the settings"
            ) from None
        except TelegramAPIError as exc:
            failures += 1
            delay = backoff(failures, first_delay, max_delay)
            log.warning(
                "Telegram does not answer getMe for %s (%s); retrying in %.0f s", who, exc, delay
            )
            await asyncio.sleep(delay)
