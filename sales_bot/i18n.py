"""Translations of the sales bot: gettext catalogs under sales_bot/locales (ru default, en).

A user's language is what they picked in the bot (kept in Redis, `sales:locale:<user id>`),
else English when their Telegram is in English, else Russian.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from aiogram.utils.i18n import gettext as _
from redis.asyncio import Redis

LOCALES_DIR = Path(__file__).with_name("locales")
LOCALES = ("ru", "en")


def build_i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale="ru", domain="messages")


def went_wrong() -> str:
    """What a user reads when a handler failed (core.errors.ErrorReply)."""
    return _("Something went wrong, please try again.")


def unavailable() -> str:
    """What a user reads when the sales bot's database or Redis is unreachable for now."""
    return _("The bot is briefly unavailable. Please try again in a minute.")


def too_many() -> str:
    """What a user reads when they sent more than the throttling allows."""
    return _("Too many requests. Please wait a few seconds.")


def locale_key(user_id: int) -> str:
    return f"sales:locale:{user_id}"


class UserLocaleMiddleware(I18nMiddleware):
    def __init__(self, i18n: I18n, redis: Redis) -> None:
        super().__init__(i18n)
        self.redis = redis

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("event_from_user")
        if user is None:
            return "ru"
        chosen = await self.redis.get(locale_key(user.id))
        if chosen:
            value = chosen.decode() if isinstance(chosen, bytes) else str(chosen)
            if value in LOCALES:
                return value
        if user.language_code and user.language_code.lower().startswith("en"):
            return "en"
        return "ru"

    async def set_locale(self, user_id: int, locale: str) -> None:
        await self.redis.set(locale_key(user_id), locale)
