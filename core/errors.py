"""The one shape of a bot's last line of defence: an exception no handler caught is logged
(redacted) and the user is told, briefly and in their language, that something went wrong —
never silence. A pressed button is answered too, so the client stops its spinner.

    ErrorReply(went_wrong, name="sales bot", i18n=i18n, locale=locale_of).register(dp)

`text` is the bot's own message (a function, so each bot's catalog extracts and translates it);
`unavailable`, when given, is said instead when the cause is an outage of PostgreSQL or Redis
(`is_outage`): "try again shortly" rather than "something went wrong", logged as a warning
without a traceback (the outage itself is what to look at, not this update);
it is called inside `i18n` set to the locale `locale` resolves. Resolving the locale may fail for
the same reason the handler did (the database is down): the message then comes in the default
locale. Register the bot's I18n middleware with `exclude={"error"}` so that it does not stand
in front of this handler with the same failure.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import CallbackQuery, ErrorEvent, Message, Update, User
from aiogram.utils.i18n import I18n
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.logs import redact

log = logging.getLogger(__name__)

LocaleOf = Callable[[ErrorEvent, dict[str, Any]], Awaitable[str]]

# A dependency that cannot be reached or refuses sessions for now: not a bug of the handler.
OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted
    TimeoutError,
    socket.gaierror,  # the host's name does not resolve
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,  # closed mid-query (08xxx)
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # login disabled (suspension)
    asyncpg.exceptions.OperatorInterventionError,  # shut down, terminated, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    # A pooled connection whose session the server ended while it sat idle (a suspension
    # terminates the tenant's sessions) can be handed out before asyncpg has seen the socket
    # close; its next query fails with "cannot switch to state …; another operation (2) is in
    # progress" (MagicStack/asyncpg#784). The pool drops it on release.
    asyncpg.exceptions.InternalClientError,
)

_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def is_outage(exc: BaseException) -> bool:
    """True when `exc`, or an exception it was raised from, is a PostgreSQL or Redis outage."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OUTAGES) or (
            isinstance(current, OSError) and current.errno in _UNREACHABLE
        ):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _user(update: Update) -> User | None:
    for event in (update.message, update.edited_message, update.callback_query):
        if event is not None:
            return event.from_user
    return None


class ErrorReply:
    """An aiogram error handler: log the exception, tell the user, answer a pressed button."""

    def __init__(
        self,
        text: Callable[[], str],
        *,
        name: str,
        unavailable: Callable[[], str] | None = None,
        i18n: I18n | None = None,
        locale: LocaleOf | None = None,
        show_alert: bool = False,
    ) -> None:
        self.text = text
        self.unavailable = unavailable
        self.name = name  # who logs: "sales bot", "tenant client_001", …
        self.i18n = i18n
        self.locale = locale
        self.show_alert = show_alert

    def register(self, router: Router) -> None:
        router.errors.register(self.handle, ExceptionTypeFilter(Exception))

    async def handle(self, event: ErrorEvent, **data: Any) -> bool:
        exc = event.exception
        update = event.update
        user = _user(update)
        extra = {"update_id": update.update_id, "user_id": user.id if user else None}
        outage = self.unavailable is not None and is_outage(exc)
        if outage:
            log.warning(
                "%s: update %s not handled, a dependency is unavailable: %s: %s",
                self.name,
                update.update_id,
                type(exc).__name__,
                redact(str(exc)),
                extra=extra,
            )
        else:
            log.error(
                "%s: %s while handling update %s: %s",
                self.name,
                type(exc).__name__,
                update.update_id,
                redact(str(exc)),
                exc_info=exc,  # the traceback is redacted by core.logs' filter on the handler
                extra=extra,
            )
        text = await self._text(event, data, self.unavailable if outage else None)
        if update.callback_query is not None:
            await self._answer(update.callback_query, text)
        message = update.message or update.edited_message
        if message is None and update.callback_query is not None:
            pressed = update.callback_query.message
            message = pressed if isinstance(pressed, Message) else None
        if message is not None:
            try:
                await message.answer(text, parse_mode=None)
            except TelegramAPIError as send_exc:  # blocked, or Telegram is the problem
                log.warning("%s: the user was not told of the error: %s", self.name, send_exc)
        return True  # handled: aiogram does not log it a second time

    async def _text(
        self, event: ErrorEvent, data: dict[str, Any], text: Callable[[], str] | None = None
    ) -> str:
        text = text or self.text
        if self.i18n is None:
            return text()
        locale = self.i18n.default_locale
        if self.locale is not None:
            try:
                locale = await self.locale(event, data)
            except Exception as exc:  # the same outage, most likely: speak the default
                log.warning("%s: locale unknown (%s), using %s", self.name, exc, locale)
        with self.i18n.context(), self.i18n.use_locale(locale):
            return text()

    async def _answer(self, query: CallbackQuery, text: str) -> None:
        try:
            await query.answer(text, show_alert=self.show_alert)
        except TelegramAPIError as exc:  # answered already by the handler, or too old
            log.info("%s: callback query not answered: %s", self.name, exc)
