"""What the admins are told: new and cancelled bookings, leads, customers asking for a person.

Everything a customer or the model wrote is HTML-escaped here before it reaches an admin.

Notices are kept in the tenant's schema until Telegram delivers them (`NoticeOutbox`): an owner
who has not opened their own bot yet ("chat not found"), or a bad moment of Telegram, does not
lose them. They are delivered oldest first, each once, when the admin writes to the bot
(`AdminWroteMiddleware`) or by the periodic retry (client_bot/workers/notices.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, Message, TelegramObject
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from client_bot import text
from client_bot.booking_service import Moved
from client_bot.callbacks import HandoffAction, HandoffCb, LeadAction, LeadCb
from client_bot.context import TenantContext
from client_bot.store import Booking, Business, ChatMessage, Lead, SavedLead
from client_bot.store.notices import NoticeStore, PendingNotice

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
QUOTE_CHARS = 300  # of each message in a conversation shown to an admin


def booking_created(booking: Booking, business: Business, *, by_assistant: bool = False) -> str:
    when = text.when(booking.starts_at, business.timezone, business.locale)
    body = _("🆕 New booking #{id}: {service}, {when}\n{name}, {phone}").format(
        id=booking.id,
        service=text.esc(booking.service_name),
        when=when,
        name=text.esc(booking.customer_name),
        phone=booking.phone,
    )
    return body + ("\n" + _("🤖 Booked through the AI assistant.") if by_assistant else "")


def booking_cancelled(booking: Booking, business: Business) -> str:
    when = text.when(booking.starts_at, business.timezone, business.locale)
    return _(
        "❌ Booking #{id} cancelled by the customer: {service}, {when}\n{name}, {phone}"
    ).format(
        id=booking.id,
        service=text.esc(booking.service_name),
        when=when,
        name=text.esc(booking.customer_name),
        phone=booking.phone,
    )


def booking_moved(booking: Booking, was: datetime, business: Business, *, by_customer: bool) -> str:
    head = (
        _("🔁 Booking #{id} moved by the customer: {service}, {when} (was {was})\n{name}, {phone}")
        if by_customer
        else _("🔁 Booking #{id} moved by an admin: {service}, {when} (was {was})\n{name}, {phone}")
    )
    return head.format(
        id=booking.id,
        service=text.esc(booking.service_name),
        when=text.when(booking.starts_at, business.timezone, business.locale),
        was=text.when(was, business.timezone, business.locale),
        name=text.esc(booking.customer_name),
        phone=booking.phone,
    )


def staff_reminder(booking: Booking, business: Business) -> str:
    return _("⏰ Reminder: {when} — {service}, {name}, {phone}. Booking #{id}.").format(
        when=text.when(booking.starts_at, business.timezone, business.locale),
        service=text.esc(booking.service_name),
        name=text.esc(booking.customer_name),
        phone=booking.phone,
        id=booking.id,
    )


def lead_status_name(status: str) -> str:
    names = {
        "new": _("new"),
        "in_work": _("in work"),
        "won": _("won"),
        "lost": _("lost"),
    }
    return names.get(status, status)


def lead_card(lead: Lead, business: Business) -> str:
    lines = [
        _("Lead #{id} · {status}").format(id=lead.id, status=lead_status_name(lead.status)),
        _("Name: {name}").format(name=text.esc(lead.name)),
        _("Phone: {phone}").format(phone=text.esc(lead.phone)),
    ]
    if lead.interest:
        lines.append(_("Interested in: {interest}").format(interest=text.esc(lead.interest)))
    if lead.comment:
        lines.append(_("Comment: {comment}").format(comment=text.esc(lead.comment)))
    lines.append(
        _("Created: {when}").format(
            when=text.when(lead.created_at, business.timezone, business.locale)
        )
    )
    lines.append(_("Customer: {link}").format(link=customer_link(lead.customer_id, lead.name)))
    if lead.taken_by:
        lines.append(_("Taken by: {admin}").format(admin=lead.taken_by))
    return "\n".join(lines)


def lead_saved(saved: SavedLead, business: Business) -> str:
    head = _("🔥 New lead") if saved.created else _("✏️ The lead was updated")
    return f"<b>{head}</b>\n" + lead_card(saved.lead, business)


def take_button(lead: Lead) -> InlineKeyboardMarkup | None:
    if lead.status != "new":
        return None
    kb = InlineKeyboardBuilder()
    kb.button(text=_("🙋 Take it"), callback_data=LeadCb(action=LeadAction.take, lead_id=lead.id))
    return kb.as_markup()


def customer_link(customer_id: int, name: str) -> str:
    return f'<a href="tg://user?id={customer_id}">{text.esc(name) or customer_id}</a>'


def conversation(history: Sequence[ChatMessage], customer_name: str) -> str:
    """The last messages as a short transcript for an admin (newest last, each clipped)."""
    who = {
        "user": text.esc(customer_name) or _("Customer"),
        "assistant": _("🤖 Assistant"),
        "staff": _("👤 Manager"),
    }
    lines = []
    for m in history:
        content = m.content if len(m.content) <= QUOTE_CHARS else m.content[:QUOTE_CHARS] + "…"
        lines.append(f"<b>{who.get(m.role, m.role)}:</b> {text.esc(content)}")
    # Keep the newest messages when the whole transcript does not fit into one message.
    while lines and sum(len(line) + 1 for line in lines) > MAX_MESSAGE - 600:
        lines.pop(0)
    return "\n".join(lines)


def handoff_requested(
    customer_id: int, name: str, reason: str, history: Sequence[ChatMessage]
) -> str:
    head = _("🙋 {customer} asks for a person.").format(customer=customer_link(customer_id, name))
    if reason:
        head += "\n" + _("Reason: {reason}").format(reason=text.esc(reason[:200]))
    transcript = conversation(history, name)
    tail = _("The assistant is silent for this customer until you hand the conversation back.")
    return f"{head}\n\n{transcript}\n\n{tail}" if transcript else f"{head}\n\n{tail}"


def customer_wrote(customer_id: int, name: str, content: str) -> str:
    clipped = content if len(content) <= 3000 else content[:3000] + "…"
    return _("💬 {customer} writes:\n{text}").format(
        customer=customer_link(customer_id, name), text=text.esc(clipped)
    )


def handoff_buttons(customer_id: int) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("✍️ Reply"),
        callback_data=HandoffCb(action=HandoffAction.reply, customer_id=customer_id),
    )
    kb.button(
        text=_("🤖 Hand back to the assistant"),
        callback_data=HandoffCb(action=HandoffAction.release, customer_id=customer_id),
    )
    kb.adjust(1)
    return kb.as_markup()


LEASE_SECONDS = 120.0  # one delivery to an admin at a time; a crashed one expires after this
BATCH = 20


def _keep(exc: TelegramAPIError) -> bool:
    """Whether a failed notice waits for a later delivery (True) or is abandoned: the admin
    has not opened the bot or blocked it (they will write again), Telegram is down or busy."""
    if isinstance(exc, TelegramBadRequest):  # a notice Telegram refuses as such: abandoned
        return "chat not found" in exc.message.lower()
    return True  # Forbidden (blocked, never started), network, 5xx, flood control, …


class NoticeOutbox:
    """Notices to the admins, through the tenant's `admin_notices`: kept, then delivered."""

    def __init__(self, ctx: TenantContext, bot: Bot, *, wake_retry: bool = True) -> None:
        self.ctx = ctx
        self.bot = bot
        self.store = NoticeStore(ctx.store.pool)
        # A notice kept for later wakes the retry (client_bot/workers/notices.py); the retry's
        # own outbox does not wake itself.
        self.wake_retry = wake_retry

    async def send(self, body: str, reply_markup: InlineKeyboardMarkup | None = None) -> int:
        """Keep `body` for every admin and deliver what can be now; how many admins got it."""
        admins = sorted(await self.ctx.admin_ids())
        markup = reply_markup.model_dump_json(exclude_none=True) if reply_markup else None
        try:
            await self.store.add(admins, body, markup)
        except Exception:  # the database is the problem: still try Telegram once, directly
            log.exception("tenant %s: admin notice not kept", self.ctx.tenant_id)
            return await self.ctx.notify_admins(self.bot, body, reply_markup=reply_markup)
        delivered = 0
        for admin_id in admins:
            delivered += await self.flush(admin_id) > 0
        return delivered

    async def flush(self, admin_id: int) -> int:
        """Deliver the admin's pending notices, oldest first; how many were sent. Stops at the
        first one that must wait (the rest would fail the same way, and must not overtake it)."""
        sent = 0
        for _round in range(3):  # a notice added while the lease was held: one more round
            if not await self.store.lease(admin_id, LEASE_SECONDS):
                return sent  # somebody else is delivering to this admin right now
            try:
                sent += await self._drain(admin_id)
            finally:
                await self.store.release(admin_id)
            if not await self.store.has_pending(admin_id):
                break
        return sent

    async def _drain(self, admin_id: int) -> int:
        sent = 0
        while batch := await self.store.pending(admin_id, BATCH):
            for notice in batch:
                if not await self._deliver(notice):
                    return sent
                sent += 1
        return sent

    async def _deliver(self, notice: PendingNotice) -> bool:
        """True when the notice is done with (sent or abandoned), False when it must wait."""
        markup = (
            InlineKeyboardMarkup.model_validate_json(notice.reply_markup)
            if notice.reply_markup
            else None
        )
        try:
            await self.bot.send_message(notice.admin_id, notice.text, reply_markup=markup)
        except TelegramAPIError as exc:
            keep = _keep(exc)
            await self.store.failed(notice.id, f"{type(exc).__name__}: {exc}", give_up=not keep)
            log.log(
                logging.INFO if keep else logging.WARNING,
                "tenant %s: notice %s to admin %s %s: %s",
                self.ctx.tenant_id,
                notice.id,
                notice.admin_id,
                "kept for later" if keep else "abandoned",
                exc,
            )
            if keep and self.wake_retry:
                self.ctx.notices_waiting.set()  # the retry comes back to it soon
            return not keep
        await self.store.sent(notice.id)
        return True

    async def flush_all(self) -> int:
        """One retry pass over every current admin with pending notices; how many were sent."""
        admins = await self.ctx.admin_ids()
        sent = 0
        for admin_id in await self.store.pending_admins():
            if admin_id in admins:
                sent += await self.flush(admin_id)
        return sent


class AdminWroteMiddleware(BaseMiddleware):
    """After an admin's message (their first /start included) their pending notices follow."""

    def __init__(self, ctx: TenantContext) -> None:
        self.ctx = ctx

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            return await handler(event, data)
        finally:
            user = event.from_user if isinstance(event, Message) else None
            bot = data.get("bot")
            if user is not None and isinstance(bot, Bot):
                try:
                    if await self.ctx.is_admin(user.id):
                        await NoticeOutbox(self.ctx, bot).flush(user.id)
                except Exception:
                    log.exception("tenant %s: pending notices not delivered", self.ctx.tenant_id)


class AdminNotices:
    """Tells the tenant's admins what happened (the assistant's `Notifier`)."""

    def __init__(self, ctx: TenantContext, bot: Bot) -> None:
        self.ctx = ctx
        self.bot = bot
        self.outbox = NoticeOutbox(ctx, bot)

    async def booking_created(self, booking: Booking, *, by_assistant: bool = False) -> None:
        business = await self.ctx.business()
        body = booking_created(booking, business, by_assistant=by_assistant)
        await self.outbox.send(body)
        await tell_staff(self.ctx, self.bot, booking.staff_id, body)

    async def booking_cancelled(self, booking: Booking) -> None:
        business = await self.ctx.business()
        body = booking_cancelled(booking, business)
        await self.outbox.send(body)
        await tell_staff(self.ctx, self.bot, booking.staff_id, body)

    async def booking_moved(self, moved: Moved, *, by_customer: bool, skip: int = 0) -> None:
        """The admins hear of a customer's move (an admin's own move they saw happen); the
        staff member it is with now, and the one it was with, hear of either."""
        business = await self.ctx.business()
        booking = moved.booking
        body = booking_moved(booking, moved.was, business, by_customer=by_customer)
        if by_customer:
            await self.outbox.send(body)
        await tell_staff(self.ctx, self.bot, booking.staff_id, body, skip=skip)
        if moved.was_staff_id not in (None, booking.staff_id):
            await tell_staff(self.ctx, self.bot, moved.was_staff_id, body, skip=skip)

    async def lead_saved(self, saved: SavedLead) -> None:
        business = await self.ctx.business()
        await self.outbox.send(lead_saved(saved, business), take_button(saved.lead))

    async def handoff_requested(self, customer_id: int, name: str, reason: str) -> None:
        history = await self.ctx.store.assistant.history(customer_id, 20)
        await self.outbox.send(
            handoff_requested(customer_id, name, reason, history), handoff_buttons(customer_id)
        )

    async def customer_wrote(self, customer_id: int, name: str, content: str) -> None:
        await self.outbox.send(
            customer_wrote(customer_id, name, content), handoff_buttons(customer_id)
        )


async def tell_staff(
    ctx: TenantContext,
    bot: Bot,
    staff_id: int | None,
    body: str,
    *,
    skip: int = 0,
    admins_too: bool = False,
) -> bool:
    """Send `body` about one of their bookings to the staff member linked in Telegram, unless
    they are `skip` or an admin (whom the admins' notice reached; `admins_too` for what admins
    do not get, like reminders). Best-effort: a staff member who blocked the bot misses it."""
    if staff_id is None:
        return False
    member = await ctx.store.staff_member(staff_id)
    if member is None or member.telegram_id is None or not member.active:
        return False
    if member.telegram_id == skip or (not admins_too and await ctx.is_admin(member.telegram_id)):
        return False
    try:
        await bot.send_message(member.telegram_id, body)
    except TelegramAPIError as exc:
        log.info("tenant %s: staff member %s not told: %s", ctx.tenant_id, staff_id, exc)
        return False
    return True
