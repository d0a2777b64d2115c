"""Translations: gettext catalogs under client_bot/locales, served by aiogram's I18n.

Message ids are English; `ru` (the default) and `en` catalogs live in
`locales/<lang>/LC_MESSAGES/messages.po` and are compiled to `.mo` with `make i18n`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware

LOCALES_DIR = Path(__file__).with_name("locales")
LOCALES = ("ru", "en")


def build_i18n(default_locale: str = "ru") -> I18n:
    return I18n(path=LOCALES_DIR, default_locale=default_locale, domain="messages")


class TenantLocaleMiddleware(I18nMiddleware):
    """The whole bot speaks the locale the business chose (profile setting)."""

    def __init__(self, i18n: I18n, locale: Callable[[], Awaitable[str]]) -> None:
        super().__init__(i18n)
        self._locale = locale

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        return await self._locale()
