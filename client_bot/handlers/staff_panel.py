"""Staff in Telegram: an admin's one-time invite link (`/start staff_<code>`) links a staff member
to the account that opens it; linked staff see their own day (/staff: today, tomorrow) with the
names and phones of their own bookings' customers, and mark their own visits done or no-show.

Every button is re-checked against who presses it: a staff member's button for a booking that
is not theirs (stale after a move, or forged) gets a clear refusal and nothing changes. Owner
and admins see everyone in the admin panel (/admin → Bookings).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from client_bot import booking_service, keyboards, text
from client_bot.booking_service import INVITE_PREFIX
from client_bot.callbacks import StaffDayCb, StaffVisitCb, VisitAction
from client_bot.context import TenantContext
from client_bot.handlers.admin.bookings import status_label
from client_bot.notices import NoticeOutbox
from client_bot.store import Booking, Staff


def _pack(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def _unpack(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None


def _not_staff() -> str:
    return _("You are not linked as a staff member of this business.")


async def join(
    message: Message, command: CommandObject, ctx: TenantContext, state: FSMContext, bot: Bot
) -> None:
    """`/start staff_<code>`: the invite links the account to its staff member, once."""
    assert message.from_user is not None
    await state.clear()
    code = (command.args or "").removeprefix(INVITE_PREFIX)
    member = await booking_service.redeem_invite(ctx, code, message.from_user.id)
    if member is None:
        await message.answer(
            _(
                "This invite link does not work: it was used already or has expired. Ask the"
                " admin for a new one."
            ),
            reply_markup=keyboards.main_menu(),
        )
        return
    await message.answer(
        _("✅ Welcome, {name}! You are linked as a staff member: /staff shows your day.").format(
            name=text.esc(member.name)
        )
    )
    await NoticeOutbox(ctx, bot).send(
        _("🔗 {name} linked their Telegram as a staff member.").format(name=text.esc(member.name))
    )
    await show_day(message, ctx, member, None)


async def _day_view(
    ctx: TenantContext, member: Staff, day: date, note: str = ""
) -> tuple[str, InlineKeyboardMarkup]:
    business = await ctx.business()
    start = datetime.combine(day, time(0), tzinfo=business.zone)
    items = await ctx.store.staff_bookings_between(member.id, start, start + timedelta(days=1))
    lines = [
        _("<b>🗓 {name} · {day}</b>").format(
            name=text.esc(member.name), day=text.day_long(day, business.locale)
        )
    ]
    kb = InlineKeyboardBuilder()
    for b in items:
        begins = text.hhmm(b.starts_at.astimezone(business.zone))
        lines.append(
            f"{begins}–{text.hhmm(b.ends_at.astimezone(business.zone))} · "
            f"{text.esc(b.service_name)} · {text.esc(b.customer_name)}, {text.esc(b.phone)}"
            f" — {status_label(b.status)}"
        )
        kb.button(
            text=f"{begins} · {b.customer_name}",
            callback_data=StaffVisitCb(action=VisitAction.view, booking_id=b.id),
        )
    if not items:
        lines.append(_("No bookings on this day."))
    today = ctx.now().astimezone(business.zone).date()
    kb.button(text=_("Today"), callback_data=StaffDayCb(day=_pack(today)))
    kb.button(text=_("Tomorrow"), callback_data=StaffDayCb(day=_pack(today + timedelta(days=1))))
    kb.adjust(*([1] * len(items)), 2)
    return (note + "\n\n" if note else "") + "\n".join(lines), kb.as_markup()


async def show_day(
    event: Message | CallbackQuery,
    ctx: TenantContext,
    member: Staff,
    day: date | None,
    note: str = "",
) -> None:
    business = await ctx.business()
    body, markup = await _day_view(
        ctx, member, day or ctx.now().astimezone(business.zone).date(), note
    )
    target = event.message if isinstance(event, CallbackQuery) else event
    if isinstance(target, Message):
        await target.answer(body, reply_markup=markup)


async def _member(event: Message | CallbackQuery, ctx: TenantContext) -> Staff | None:
    """The active staff member the presser is linked as (else they are told they are not)."""
    assert event.from_user is not None
    member = await ctx.store.staff_by_telegram(event.from_user.id)
    if member is None:
        if isinstance(event, CallbackQuery):
            await event.answer(_not_staff(), show_alert=True)
        else:
            await event.answer(_not_staff())
    return member


async def my_day(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    member = await _member(message, ctx)
    if member is not None:
        await show_day(message, ctx, member, None)


async def open_day(query: CallbackQuery, callback_data: StaffDayCb, ctx: TenantContext) -> None:
    member = await _member(query, ctx)
    if member is None:
        return
    await query.answer()
    await show_day(query, ctx, member, _unpack(callback_data.day))


async def _own(
    query: CallbackQuery, ctx: TenantContext, member: Staff, booking_id: int
) -> Booking | None:
    """The booking when it is the staff member's own; anything else is refused, unchanged."""
    b = await ctx.store.booking(booking_id)
    if b is None or b.staff_id != member.id:
        await query.answer(
            _("This booking is not yours: only its specialist and the admins can open it."),
            show_alert=True,
        )
        return None
    return b


def _visit_kb(b: Booking, day: date) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    if b.status == "confirmed":
        kb.button(
            text=_("✅ Done"), callback_data=StaffVisitCb(action=VisitAction.done, booking_id=b.id)
        )
        kb.button(
            text=_("🚫 No-show"),
            callback_data=StaffVisitCb(action=VisitAction.no_show, booking_id=b.id),
        )
    kb.button(text=_("« My day"), callback_data=StaffDayCb(day=_pack(day)))
    kb.adjust(2, 1)
    return kb.as_markup()


async def show_visit(query: CallbackQuery, ctx: TenantContext, b: Booking, note: str = "") -> None:
    business = await ctx.business()
    body = _(
        "<b>Booking #{id}</b>\nService: {service}\nWhen: {when}\nCustomer: {name}, {phone}\n"
        "Status: {status}"
    ).format(
        id=b.id,
        service=text.esc(b.service_name),
        when=text.when(b.starts_at, business.timezone, business.locale),
        name=text.esc(b.customer_name),
        phone=text.esc(b.phone),
        status=status_label(b.status),
    )
    day = b.starts_at.astimezone(business.zone).date()
    if isinstance(query.message, Message):
        await query.message.answer(
            (note + "\n\n" if note else "") + body, reply_markup=_visit_kb(b, day)
        )


async def visit(query: CallbackQuery, callback_data: StaffVisitCb, ctx: TenantContext) -> None:
    member = await _member(query, ctx)
    if member is None:
        return
    b = await _own(query, ctx, member, callback_data.booking_id)
    if b is None:
        return
    if callback_data.action is VisitAction.view:
        await query.answer()
        await show_visit(query, ctx, b)
        return
    status = "done" if callback_data.action is VisitAction.done else "no_show"
    updated = await ctx.store.set_staff_booking_status(b.id, member.id, status)
    if updated is None:  # not confirmed any more, or moved to someone else meanwhile
        current = await _own(query, ctx, member, b.id)
        if current is not None:
            await query.answer(_("This booking is no longer active."), show_alert=True)
            await show_visit(query, ctx, current)
        return
    await query.answer(_("✅ Saved."))
    await show_visit(query, ctx, updated, _("✅ Saved."))


def router() -> Router:
    """A fresh router for one tenant; before the customers' /start, so an invite is taken."""
    r = Router(name="staff_panel")
    r.message.register(join, CommandStart(deep_link=True, magic=F.args.startswith(INVITE_PREFIX)))
    r.message.register(my_day, Command("staff"))
    r.callback_query.register(open_day, StaffDayCb.filter())
    r.callback_query.register(visit, StaffVisitCb.filter())
    return r
