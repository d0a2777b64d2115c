"""/admin → Leads: the list, one lead with its status (new, in work, won, lost) and notes, CSV;
and the "take it" button under a new lead's notification. Notes are the same rows the owner's
web shows and writes (`LeadNotes`, tenant migration 0013)."""

from __future__ import annotations

import csv
import io

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.callbacks import LeadAction, LeadCb
from client_bot.context import TenantContext
from client_bot.handlers.admin import keyboards, parse
from client_bot.handlers.admin.callbacks import AdminCb, Screen
from client_bot.handlers.admin.screen import TYPED, admin_router, prompt, show
from client_bot.handlers.admin.states import AdminInput
from client_bot.notices import lead_card, lead_status_name
from client_bot.store import NOTE_MAX, Business, Lead, LeadNotes

PAGE = 10
NOTES_SHOWN = 5


async def lead_screen(ctx: TenantContext, lead: Lead, business: Business) -> str:
    """The lead's card with its last notes (from /admin and from the web alike)."""
    notes = await LeadNotes(ctx.store.pool).of_lead(lead.id, NOTES_SHOWN)
    if not notes:
        return lead_card(lead, business)
    lines = [lead_card(lead, business), "", _("<b>📝 Notes</b>")]
    for note in notes:
        when = text.when(note.created_at, business.timezone, business.locale)
        lines.append(f"{when} · {note.author_id}: {text.esc(note.body)}")
    return "\n".join(lines)


async def show_leads(event: Message | CallbackQuery, ctx: TenantContext, page: int = 0) -> None:
    business = await ctx.business()
    total, _items = await ctx.store.assistant.leads(limit=1)
    pages = max(1, -(-total // PAGE))
    page = min(max(page, 0), pages - 1)
    total, items = await ctx.store.assistant.leads(limit=PAGE, offset=page * PAGE)
    lines = [_("<b>🔥 Leads: {total}</b>").format(total=total)]
    if pages > 1:
        lines.append(_("Page {page} of {pages}").format(page=page + 1, pages=pages))
    for lead in items:
        parts = [f"#{lead.id}", text.esc(lead.name), text.esc(lead.phone)]
        if lead.interest:
            parts.append(text.esc(lead.interest[:60]))
        parts.append(text.when(lead.created_at, business.timezone, business.locale))
        lines.append(" · ".join(parts) + f" — {lead_status_name(lead.status)}")
    if not items:
        lines.append(
            _("No leads yet. The AI assistant saves one when a customer leaves a name and phone.")
        )
    await show(event, "\n".join(lines), keyboards.leads(items, page, pages))


async def open_leads(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_leads(query, ctx)


async def open_page(query: CallbackQuery, callback_data: LeadCb, ctx: TenantContext) -> None:
    await show_leads(query, ctx, callback_data.page)


async def view_lead(query: CallbackQuery, callback_data: LeadCb, ctx: TenantContext) -> None:
    lead = await ctx.store.assistant.lead(callback_data.lead_id)
    if lead is None:
        await query.answer(_("Lead not found."), show_alert=True)
        return
    business = await ctx.business()
    await show(
        query, await lead_screen(ctx, lead, business), keyboards.lead(lead, callback_data.page)
    )


async def set_status(query: CallbackQuery, callback_data: LeadCb, ctx: TenantContext) -> None:
    lead = await ctx.store.assistant.set_lead_status(
        callback_data.lead_id, callback_data.status.value, by=query.from_user.id, now=ctx.now()
    )
    if lead is None:
        await query.answer(_("Lead not found."), show_alert=True)
        return
    business = await ctx.business()
    await show(
        query,
        _("✅ Status: {status}").format(status=lead_status_name(lead.status))
        + "\n\n"
        + await lead_screen(ctx, lead, business),
        keyboards.lead(lead, callback_data.page),
    )


async def ask_note(
    query: CallbackQuery, callback_data: LeadCb, ctx: TenantContext, state: FSMContext
) -> None:
    if await ctx.store.assistant.lead(callback_data.lead_id) is None:
        await query.answer(_("Lead not found."), show_alert=True)
        return
    await prompt(
        query,
        state,
        AdminInput.lead_note,
        _("Type a note on lead #{id} (at most {limit} characters). /cancel to stop.").format(
            id=callback_data.lead_id, limit=NOTE_MAX
        ),
        lead_id=callback_data.lead_id,
        page=callback_data.page,
    )


async def save_note(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None and message.from_user is not None
    data = await state.get_data()
    try:
        body = parse.text_value(message.text, NOTE_MAX)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    lead_id, page = int(data["lead_id"]), int(data.get("page", 0))
    note = await LeadNotes(ctx.store.pool).add(lead_id, message.from_user.id, body, "telegram")
    lead = await ctx.store.assistant.lead(lead_id)
    if note is None or lead is None:
        await message.answer(_("Lead not found."))
        return
    business = await ctx.business()
    await show(
        message,
        _("✅ Note saved.") + "\n\n" + await lead_screen(ctx, lead, business),
        keyboards.lead(lead, page),
    )


async def take(query: CallbackQuery, callback_data: LeadCb, ctx: TenantContext) -> None:
    """The "take it" button under a new lead's notification."""
    lead, mine = await ctx.store.assistant.take_lead(
        callback_data.lead_id, query.from_user.id, ctx.now()
    )
    if lead is None:
        await query.answer(_("Lead not found."), show_alert=True)
        return
    if not mine:
        await query.answer(
            _("This lead is already {status} (admin {admin}).").format(
                status=lead_status_name(lead.status), admin=lead.taken_by or "—"
            ),
            show_alert=True,
        )
        return
    await query.answer(_("The lead is yours."))
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
        business = await ctx.business()
        await query.message.answer(
            _("⏳ You took lead #{id}. Call {phone}; set the outcome in /admin → Leads.").format(
                id=lead.id, phone=text.esc(lead.phone)
            )
            + "\n\n"
            + lead_card(lead, business),
            reply_markup=keyboards.lead(lead, 0),
        )


def leads_csv(items: list[Lead], business: Business) -> bytes:
    """Semicolon-separated UTF-8 with a BOM, like the bookings export."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            _("Number"),
            _("Created"),
            _("Customer's name"),
            _("Phone"),
            _("Interested in"),
            _("Comment"),
            _("Status"),
            _("Taken by"),
            _("Telegram id"),
        ]
    )
    zone = business.zone
    for lead in items:
        writer.writerow(
            [
                lead.id,
                lead.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                _csv_text(lead.name),
                _csv_text(lead.phone),
                _csv_text(lead.interest),
                _csv_text(lead.comment),
                lead_status_name(lead.status),
                lead.taken_by or "",
                lead.customer_id,
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def _csv_text(value: str) -> str:
    """Text a customer or the model wrote must not become a spreadsheet formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") and not value[1:2].isdigit() else value


async def export_csv(query: CallbackQuery, ctx: TenantContext) -> None:
    business = await ctx.business()
    items = await ctx.store.assistant.all_leads()
    await query.answer()
    document = BufferedInputFile(leads_csv(items, business), filename="leads.csv")
    if isinstance(query.message, Message):
        await query.message.answer_document(document, caption=_("Leads: {n}").format(n=len(items)))


def router() -> Router:
    r = admin_router("admin_leads")
    r.callback_query.register(open_leads, AdminCb.filter(F.screen == Screen.leads))
    r.callback_query.register(open_page, LeadCb.filter(F.action == LeadAction.page))
    r.callback_query.register(view_lead, LeadCb.filter(F.action == LeadAction.view))
    r.callback_query.register(set_status, LeadCb.filter(F.action == LeadAction.status))
    r.callback_query.register(take, LeadCb.filter(F.action == LeadAction.take))
    r.callback_query.register(export_csv, LeadCb.filter(F.action == LeadAction.csv))
    r.callback_query.register(ask_note, LeadCb.filter(F.action == LeadAction.note))
    r.message.register(save_note, AdminInput.lead_note, TYPED)
    return r
