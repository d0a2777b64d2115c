"""Routers of the operator bot, in the order they are tried (fresh ones per call)."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent

from master_bot.operator.handlers import clients, common, deploy

log = logging.getLogger(__name__)


def routers() -> list[Router]:
    return [
        common.router(),
        deploy.commands_router(),
        clients.router(),
        deploy.router(),
        common.last_router(),
    ]


async def on_error(event: ErrorEvent) -> None:
    """An unexpected failure (database down, a bug): logged, and the operator is told."""
    log.error(
        "operator bot: %s while handling an update",
        type(event.exception).__name__,
        exc_info=event.exception,
    )
    update = event.update
    with suppress(TelegramAPIError):
        if update.message is not None:
            await update.message.answer("⚠️ Внутренняя ошибка мастера — подробности в его логе.")
        elif update.callback_query is not None:
            await update.callback_query.answer(
                "⚠️ Внутренняя ошибка мастера — подробности в его логе.", show_alert=True
            )
