"""What the admins are told: new and cancelled bookings, leads, customers asking for a person.

Everything a customer or the model wrote is HTML-escaped here before it reaches an admin.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from client_bot import text
from client_bot.callbacks import HandoffAction, HandoffCb, LeadAction, LeadCb
from client_bot.context import TenantContext
from client_bot.store import Booking, Business, ChatMessage, Lead, SavedLead

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


class AdminNotices:
    """Tells the tenant's admins what happened (the assistant's `Notifier`)."""

    def __init__(self, ctx: TenantContext, bot: Bot) -> None:
        self.ctx = ctx
        self.bot = bot

    async def booking_created(self, booking: Booking, *, by_assistant: bool = False) -> None:
        business = await self.ctx.business()
        await self.ctx.notify_admins(
            self.bot, booking_created(booking, business, by_assistant=by_assistant)
        )

    async def booking_cancelled(self, booking: Booking) -> None:
        business = await self.ctx.business()
        await self.ctx.notify_admins(self.bot, booking_cancelled(booking, business))

    async def lead_saved(self, saved: SavedLead) -> None:
        business = await self.ctx.business()
        await self.ctx.notify_admins(
            self.bot, lead_saved(saved, business), reply_markup=take_button(saved.lead)
        )

    async def handoff_requested(self, customer_id: int, name: str, reason: str) -> None:
        history = await self.ctx.store.assistant.history(customer_id, 20)
        await self.ctx.notify_admins(
            self.bot,
            handoff_requested(customer_id, name, reason, history),
            reply_markup=handoff_buttons(customer_id),
        )

    async def customer_wrote(self, customer_id: int, name: str, content: str) -> None:
        await self.ctx.notify_admins(
            self.bot,
            customer_wrote(customer_id, name, content),
            reply_markup=handoff_buttons(customer_id),
        )
