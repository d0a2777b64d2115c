"""Only operators get through: everyone else is refused politely and the attempt is logged."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User

from core.logs import redact
from master_bot.operator import text

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def actor_of(user_id: int) -> str:
    """The audit actor of an operator's actions."""
    return f"operator:{user_id}"


def _attempt(update: Update) -> str:
    """What the stranger tried, for the log: the command name only, never free text."""
    if update.message is not None:
        words = (update.message.text or "").split(maxsplit=1)
        if words and words[0].startswith("/"):
            return f"command {redact(words[0][:40])}"
        return "message"
    if update.callback_query is not None:
        return "button"
    return update.event_type


class OperatorsOnly(BaseMiddleware):
    """An outer middleware on updates: sets `actor` for operators, refuses everyone else."""

    def __init__(self, operator_ids: Iterable[int]) -> None:
        self.operators = frozenset(operator_ids)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and user.id in self.operators:
            data["actor"] = actor_of(user.id)
            return await handler(event, data)
        if user is None or not isinstance(event, Update):
            log.info("operator bot: ignored an update without a user")
            return None
        log.warning(
            "operator bot: refused %s from user %s (@%s), not in OPERATOR_IDS",
            _attempt(event),
            user.id,
            user.username or "-",
        )
        refusal = text.REFUSAL.format(user_id=user.id)
        if event.message is not None:
            await event.message.answer(refusal)
        elif event.callback_query is not None:
            await event.callback_query.answer("⛔ Только для операторов платформы", show_alert=True)
        return None
