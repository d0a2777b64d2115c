"""The one bot runtime: how every bot process (sales, operators', client bots and hubs)
assembles aiogram, so the three bots share one shape and one set of guarantees.

    runtime = BotRuntime(
        routers(),                      # the bot's routers, tried in order
        storage=RedisStorage(...),      # FSM storage (MemoryStorage where state must not persist)
        on_error=ErrorReply(...).handle,  # core/errors.py: the user is answered, never silence
        gate=OperatorsOnly(...),        # optional: an outer middleware every update passes first
        locale=UserLocaleMiddleware(...),  # optional: the bot's I18n middleware
        throttling=ThrottlingMiddleware(...),  # optional: flood protection per user (Redis)
        ctx=...,                        # workflow data handed to every handler
    )
    runtime.watch(bot)                  # count Telegram's refusals of this bot's calls
    await runtime.poll(bot)             # long polling until runtime.stop()

Order of the update's path, the same in every bot:
1. aiogram's own error and user-context middlewares;
2. the metrics (core/metrics.py): every update timed, its errors counted by kind;
3. the gate (tenant resolution in a hub, "operators only" in the operators' bot);
4. the locale (registered with `exclude={"error"}`: the error handler resolves the locale
   itself, with a fallback, when the locale's own source is what failed);
5. the routers, with throttling as an inner middleware on messages and button presses (inner,
   so it sees the handler's `throttling` flag);
6. on an exception no handler caught: `on_error` (registered for every `Exception`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher, Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.utils.i18n import I18nMiddleware

from core.metrics import BotMetrics

log = logging.getLogger(__name__)

ErrorHandler = Callable[..., Awaitable[Any]]
Middleware = BaseMiddleware | Callable[..., Awaitable[Any]]


class BotRuntime:
    """Dispatcher + FSM storage + I18n + throttling + error reply + metrics, wired one way."""

    def __init__(
        self,
        routers: Sequence[Router],
        *,
        storage: BaseStorage,
        on_error: ErrorHandler,
        gate: Middleware | None = None,
        locale: I18nMiddleware | None = None,
        throttling: Middleware | None = None,
        events_isolation: BaseEventIsolation | None = None,
        metrics: BotMetrics | None = None,
        **data: Any,
    ) -> None:
        self.dp = Dispatcher(storage=storage, events_isolation=events_isolation, **data)
        self.metrics = metrics or BotMetrics()  # GET /metrics: core.metrics.serve_metrics
        self.metrics.setup(self.dp)
        if gate is not None:
            self.dp.update.outer_middleware(gate)
        if locale is not None:
            locale.setup(self.dp, exclude={"error"})
        self.dp.errors.register(on_error, ExceptionTypeFilter(Exception))
        self.dp.include_routers(*routers)
        if throttling is not None:
            self.dp.message.middleware(throttling)
            self.dp.callback_query.middleware(throttling)
        self.allowed_updates = self.dp.resolve_used_update_types()
        self._watched: set[int] = set()

    @property
    def storage(self) -> BaseStorage:
        return self.dp.storage

    def watch(self, bot: Bot) -> None:
        """Count Telegram's refusals of `bot`'s calls; once per session (a hub's bots share
        one)."""
        if id(bot.session) not in self._watched:
            self._watched.add(id(bot.session))
            self.metrics.watch(bot.session)

    async def poll(self, bot: Bot, *, handle_signals: bool = False) -> None:
        """aiogram's long polling of `bot` until `stop()`. The bot's session stays open: its
        owner closes it."""
        await self.dp.start_polling(
            bot,
            handle_signals=handle_signals,
            close_bot_session=False,
            allowed_updates=self.allowed_updates,
        )

    async def stop(self) -> None:
        with suppress(RuntimeError):  # not polling
            await self.dp.stop_polling()

    async def close(self) -> None:
        await self.dp.storage.close()
