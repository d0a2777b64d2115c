"""The assistant on the web: the same `Assistant.reply` turn the bot runs, for web customers.

Web customers get ids of their own, negative (Telegram's are positive), derived from the
channel and the caller's id for them: an integrator's `user_id` on `POST /api/chat`, a
visitor id the widget keeps in the browser. So their conversations, leads, bookings and rate
limits sit beside the bot's in the tenant's tables without ever meeting a Telegram user's.
"""

from __future__ import annotations

import hashlib

from aiogram.types import InlineKeyboardMarkup

from client_bot import notices
from client_bot.assistant import Reply
from client_bot.booking_service import Booker
from client_bot.context import TenantContext
from client_bot.store import Booking, SavedLead
from client_bot.store.notices import NoticeStore
from web.tenants import TenantRuntime

API = "api"
WIDGET = "widget"


def web_customer_id(channel: str, user_key: str) -> int:
    """A stable negative id for (channel, caller's id), in -(2**62) .. -1."""
    digest = hashlib.sha256(f"botfleet-web:{channel}:{user_key}".encode()).digest()
    return -(int.from_bytes(digest[:8], "big") % (2**62) + 1)


class QueuedNotices:
    """The assistant's notifier on the web: notices to the admins go into the tenant's
    admin_notices, which the tenant's own bot delivers (it holds the bot token; the web does
    not). Rendered by the bot's own notice functions, in the turn's locale."""

    def __init__(self, ctx: TenantContext) -> None:
        self.ctx = ctx
        self.store = NoticeStore(ctx.store.pool)

    async def _queue(self, body: str, markup: InlineKeyboardMarkup | None = None) -> None:
        admins = sorted(await self.ctx.admin_ids())
        await self.store.add(
            admins, body, markup.model_dump_json(exclude_none=True) if markup else None
        )

    async def booking_created(self, booking: Booking, *, by_assistant: bool = False) -> None:
        business = await self.ctx.business()
        await self._queue(notices.booking_created(booking, business, by_assistant=by_assistant))

    async def booking_cancelled(self, booking: Booking) -> None:
        business = await self.ctx.business()
        await self._queue(notices.booking_cancelled(booking, business))

    async def lead_saved(self, saved: SavedLead) -> None:
        business = await self.ctx.business()
        await self._queue(notices.lead_saved(saved, business), notices.take_button(saved.lead))

    async def handoff_requested(self, customer_id: int, name: str, reason: str) -> None:
        history = await self.ctx.store.assistant.history(customer_id, 20)
        await self._queue(
            notices.handoff_requested(customer_id, name, reason, history),
            notices.handoff_buttons(customer_id),
        )

    async def customer_wrote(self, customer_id: int, name: str, content: str) -> None:
        await self._queue(
            notices.customer_wrote(customer_id, name, content),
            notices.handoff_buttons(customer_id),
        )


class AssistantOff(Exception):
    """The tenant's plan has no assistant, or the platform has no model key."""


async def chat_turn(
    runtime: TenantRuntime, channel: str, user_key: str, name: str, text: str
) -> tuple[int, Reply]:
    """One turn of the tenant's assistant for a web customer: (customer id, reply)."""
    if runtime.assistant is None:
        raise AssistantOff(runtime.tenant_id)
    ctx = runtime.ctx
    ctx.refresh()  # what an admin changed in the bot meanwhile
    customer_id = web_customer_id(channel, user_key)
    await ctx.store.touch_customer(customer_id, name, None, None)
    locale = await ctx.locale()
    with ctx.i18n.context(), ctx.i18n.use_locale(locale):
        reply = await runtime.assistant.reply(Booker(customer_id, name), text)
    return customer_id, reply
