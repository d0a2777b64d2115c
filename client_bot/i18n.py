"""Translations: gettext catalogs under client_bot/locales, served by aiogram's I18n.

Message ids are English; `ru` (the default) and `en` catalogs live in
`locales/<lang>/LC_MESSAGES/messages.po` and are compiled to `.mo` with `make i18n`.

A process loads the catalogs once (`shared_i18n`) for all the tenants it serves: which language
an update is answered in is the tenant's, resolved per update (`TenantLocaleMiddleware`), and a
worker sets it with `i18n.use_locale(...)`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware

if TYPE_CHECKING:
    from client_bot.context import TenantContext

LOCALES_DIR = Path(__file__).with_name("locales")
LOCALES = ("ru", "en")


def build_i18n(default_locale: str = "ru") -> I18n:
    return I18n(path=LOCALES_DIR, default_locale=default_locale, domain="messages")


@cache
def shared_i18n() -> I18n:
    """The process's one catalog set (read-only once loaded), for every tenant it serves."""
    return build_i18n()


class TenantLocaleMiddleware(I18nMiddleware):
    """The whole bot speaks the locale the business chose (profile setting): the locale of the
    tenant whose update this is (`ctx`, put in the data by the tenant's dispatcher)."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        ctx: TenantContext = data["ctx"]
        return await ctx.locale()
