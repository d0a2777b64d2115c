"""Broadcasts to every customer who started the bot.

Throttled below Telegram's ~30 messages/second per bot; a 429 waits `retry_after` and retries
the same customer; a 403 marks the customer blocked. Each recipient is claimed ('sending') in
the database before the call, so after a restart nobody gets the message twice: in-flight
recipients of an interrupted run are counted as failed, the rest continue.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.utils.i18n import gettext as _

from client_bot.context import TenantContext
from client_bot.store.store import BroadcastState

log = logging.getLogger(__name__)


class BroadcastWorker:
    def __init__(
        self,
        ctx: TenantContext,
        bot: Bot,
        *,
        rate: float = 25.0,
        progress_every: float = 1.0,
        max_retries: int = 5,
    ) -> None:
        self.ctx = ctx
        self.bot = bot
        self.interval = 1.0 / rate
        self.progress_every = progress_every
        self.max_retries = max_retries
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def start(self, broadcast_id: int) -> asyncio.Task[None]:
        task = self.tasks.get(broadcast_id)
        if task is None or task.done():
            task = asyncio.create_task(self.run(broadcast_id), name=f"broadcast-{broadcast_id}")
            self.tasks[broadcast_id] = task
        return task

    async def resume_all(self) -> None:
        """After a restart: finish every running broadcast without resending anyone."""
        for broadcast_id in await self.ctx.store.running_broadcasts():
            abandoned = await self.ctx.store.abandon_in_flight(broadcast_id)
            if abandoned:
                log.warning(
                    "broadcast %s: %d in-flight recipients not resent", broadcast_id, abandoned
                )
            self.start(broadcast_id)

    async def run(self, broadcast_id: int) -> None:
        state = await self.ctx.store.broadcast_state(broadcast_id)
        if state is None:
            return
        last_progress = 0.0
        while True:
            # One recipient at a time: 'sending' is set right before its own send, so a restart
            # abandons at most the one customer whose delivery is uncertain.
            recipients = await self.ctx.store.claim_recipients(broadcast_id, 1)
            if not recipients:
                break
            for customer_id in recipients:
                started = time.monotonic()
                status, error = await self._send(customer_id, state.text)
                await self.ctx.store.finish_recipient(broadcast_id, customer_id, status, error)
                if status == "blocked":
                    await self.ctx.store.mark_blocked(customer_id)
                if time.monotonic() - last_progress >= self.progress_every:
                    last_progress = time.monotonic()
                    await self._progress(broadcast_id, final=False)
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        await self.ctx.store.finish_broadcast(broadcast_id)
        await self._progress(broadcast_id, final=True)

    async def _send(self, customer_id: int, body: str) -> tuple[str, str | None]:
        for _attempt in range(self.max_retries):
            try:
                await self.bot.send_message(customer_id, body)
                return "sent", None
            except TelegramRetryAfter as exc:
                log.info("broadcast throttled by Telegram: waiting %ss", exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError:
                return "blocked", None
            except TelegramBadRequest as exc:
                return "failed", exc.message
            except TelegramAPIError as exc:
                return "failed", str(exc)
        return "failed", "too many retries"

    async def _progress(self, broadcast_id: int, *, final: bool) -> None:
        state = await self.ctx.store.broadcast_state(broadcast_id)
        if state is None or state.progress_chat_id is None:
            return
        business = await self.ctx.business()
        with self.ctx.i18n.context(), self.ctx.i18n.use_locale(business.locale):
            body = report(state, final=final)
        try:
            if final:
                await self.bot.send_message(state.progress_chat_id, body)
            elif state.progress_message_id is not None:
                await self.bot.edit_message_text(
                    body, chat_id=state.progress_chat_id, message_id=state.progress_message_id
                )
        except TelegramAPIError as exc:  # "message is not modified" and the like
            log.debug("broadcast %s progress not shown: %s", broadcast_id, exc)


def report(state: BroadcastState, *, final: bool) -> str:
    c = state.counts
    done = c.get("sent", 0) + c.get("blocked", 0) + c.get("failed", 0)
    if final:
        return _(
            "📣 Broadcast #{id} finished.\nSent: {sent}\nBlocked the bot: {blocked}\nFailed: {failed}"
        ).format(
            id=state.id,
            sent=c.get("sent", 0),
            blocked=c.get("blocked", 0),
            failed=c.get("failed", 0),
        )
    return _("📣 Broadcast #{id}: {done} of {total} processed…").format(
        id=state.id, done=done, total=state.total
    )
