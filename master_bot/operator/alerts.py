"""Alerts to operators through the operator bot: one queue, one sender, failures only logged.

`alert()` only enqueues, so provisioning, the reconciler and the subscription monitor never
wait for Telegram and never see its errors. A single worker sends in order to every operator;
an operator who never opened the bot cannot be written to (Telegram's rule) and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiogram import Bot

from core.logs import redact
from master_bot.alert import AlertKind
from master_bot.operator import keyboards, text

log = logging.getLogger(__name__)

Alert = tuple[AlertKind, str | None, str]


class OperatorAlerter:
    def __init__(
        self,
        bot: Bot,
        operator_ids: Iterable[int],
        *,
        timeout: float = 15.0,
        queue_size: int = 1000,
    ) -> None:
        self.bot = bot
        self.operators = sorted(set(operator_ids))
        self.timeout = timeout
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    async def alert(self, kind: AlertKind, tenant_id: str | None, text: str) -> None:
        if not self.operators or self._closed:
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="operator-alerts")
        try:
            self._queue.put_nowait((kind, tenant_id, text))
        except asyncio.QueueFull:
            log.warning("operator alert dropped (queue full): %s %s", kind.value, tenant_id)

    async def _work(self) -> None:
        while True:
            kind, tenant_id, detail = await self._queue.get()
            try:
                await self._send(kind, tenant_id, detail)
            finally:
                self._queue.task_done()

    async def _send(self, kind: AlertKind, tenant_id: str | None, detail: str) -> None:
        message = text.alert(kind, tenant_id, detail)
        markup = keyboards.open_card(tenant_id) if tenant_id else None
        for chat_id in self.operators:
            try:
                await asyncio.wait_for(
                    self.bot.send_message(chat_id, message, reply_markup=markup), self.timeout
                )
            except Exception as exc:  # an alert must never take the sender down
                log.warning(
                    "alert %s to operator %s failed: %s",
                    kind.value,
                    chat_id,
                    redact(f"{type(exc).__name__}: {exc}"),
                )

    async def drain(self, within: float = 10.0) -> None:
        """Wait until every queued alert has been sent (or given up on)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), within)

    async def close(self, within: float = 5.0) -> None:
        self._closed = True
        if self._worker is not None:
            await self.drain(within)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
