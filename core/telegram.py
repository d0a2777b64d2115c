"""The one way every process builds an aiogram `Bot`."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode

from core.settings import BOT_TOKEN_RE, TELEGRAM_PUBLIC_API


class InvalidBotTokenError(ValueError):
    """A string that cannot be a Telegram bot token."""


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
