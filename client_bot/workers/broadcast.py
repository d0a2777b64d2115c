"""Broadcasts to every customer who started the bot.

Throttled below Telegram's ~30 messages/second per bot. One recipient at a time is claimed
('sending') in the database right before its own send, so after a crash nobody gets the message
twice: the one recipient whose delivery is uncertain (in flight at a kill -9) is counted as
failed, the rest continue. Nobody stays claimed while the worker waits: a 429 (its
`retry_after`) or an unreachable Telegram gives the recipient back ('pending') before the wait.
A graceful stop (the task cancelled) lets the send under way finish and be recorded first.

A broadcast survives outages: when PostgreSQL (or Telegram) is unreachable, the failed step is
logged and retried with backoff, and the broadcast goes on where it stopped; an outcome the
database could not take yet is kept in memory and written first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.utils.i18n import gettext as _

from client_bot.context import TenantContext
from client_bot.store import BroadcastState

log = logging.getLogger(__name__)

STOP_GRACE = 15.0  # seconds a graceful stop waits for the send under way to be recorded
RETRY_MIN = 0.5  # first wait after a failed step (an outage), doubled up to RETRY_MAX
RETRY_MAX = 10.0


@dataclass
class _Run:
    """One broadcast being delivered by this process."""

    id: int
    text: str | None = None
    failures: int = 0  # failed steps in a row
    attempts: dict[int, int] = field(default_factory=dict)  # give-backs per recipient
    # An outcome (customer, status, error) the database has not taken yet; status 'pending'
    # gives the recipient back.
    unrecorded: tuple[int, str, str | None] | None = None
    last_progress: float = 0.0


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
        """Deliver until every recipient is done, through outages (see the module's doc)."""
        run = _Run(broadcast_id)
        while True:
            try:
                await self._deliver_all(run)
                return
            except Exception as exc:
                run.failures += 1
                delay = min(RETRY_MAX, RETRY_MIN * 2 ** (run.failures - 1))
                log.warning(
                    "tenant %s: broadcast %s interrupted (%s: %s), resuming in %.1f s",
                    self.ctx.tenant_id,
                    broadcast_id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _deliver_all(self, run: _Run) -> None:
        if run.text is None:
            state = await self.ctx.store.broadcast_state(run.id)
            if state is None:
                return
            run.text = state.text
        await self._record(run)  # what an outage kept from the database, first
        while True:
            started = time.monotonic()
            # Claim, send and record as one step that a stop lets finish: a recipient is never
            # left claimed (or its delivery uncertain) by a cancelled task.
            step = asyncio.ensure_future(self._step(run, run.text))
            try:
                wait = await asyncio.shield(step)
            except asyncio.CancelledError:
                with suppress(Exception):
                    await asyncio.wait_for(step, STOP_GRACE)
                raise
            if wait is None:
                break
            run.failures = 0
            if time.monotonic() - run.last_progress >= self.progress_every:
                run.last_progress = time.monotonic()
                await self._progress(run.id, final=False)
            await asyncio.sleep(max(wait, self.interval - (time.monotonic() - started)))
        await self.ctx.store.finish_broadcast(run.id)
        await self._progress(run.id, final=True)

    async def _step(self, run: _Run, body: str) -> float | None:
        """Claim the next recipient and deliver to them; None when nobody is left."""
        claimed = await self.ctx.store.claim_recipients(run.id, 1)
        if not claimed:
            return None
        return await self._attempt(run, claimed[0], body)

    async def _attempt(self, run: _Run, customer_id: int, body: str) -> float:
        """Send to one claimed recipient and record the outcome; seconds to wait before the
        next send (a recipient given back waits there, unclaimed)."""
        error: str | None = None
        try:
            await self.bot.send_message(customer_id, body)
            status = "sent"
        except TelegramRetryAfter as exc:
            log.info("broadcast throttled by Telegram: waiting %ss", exc.retry_after)
            return await self._give_back(run, customer_id, float(exc.retry_after), "flood control")
        except (TelegramNetworkError, TelegramServerError) as exc:  # Telegram will be back
            wait = min(RETRY_MAX, RETRY_MIN * 2 ** run.attempts.get(customer_id, 0))
            return await self._give_back(run, customer_id, wait, str(exc))
        except TelegramForbiddenError:
            status = "blocked"
        except TelegramBadRequest as exc:
            status, error = "failed", exc.message
        except TelegramAPIError as exc:
            status, error = "failed", str(exc)
        run.unrecorded = (customer_id, status, error)
        await self._record(run)
        return 0.0

    async def _give_back(self, run: _Run, customer_id: int, wait: float, why: str) -> float:
        tries = run.attempts[customer_id] = run.attempts.get(customer_id, 0) + 1
        if tries >= self.max_retries:
            run.unrecorded = (customer_id, "failed", f"too many retries ({why})")
            await self._record(run)
            return 0.0
        run.unrecorded = (customer_id, "pending", None)
        await self._record(run)
        return wait

    async def _record(self, run: _Run) -> None:
        if run.unrecorded is None:
            return
        customer_id, status, error = run.unrecorded
        await self.ctx.store.finish_recipient(run.id, customer_id, status, error)
        if status == "blocked":
            await self.ctx.store.mark_blocked(customer_id)
        run.unrecorded = None

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
