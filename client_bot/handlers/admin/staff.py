"""Staff: add, rename, describe, a photo, their own weekly hours and breaks (or the business's),
their days off, the services they perform at their own price and duration, deactivate."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import time

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from client_bot import booking_service, text
from client_bot.context import TenantContext
from client_bot.handlers.admin import parse
from client_bot.handlers.admin.callbacks import AdminCb, Screen, StaffAction, StaffAdminCb
from client_bot.handlers.admin.screen import TYPED, admin_router, local_today, prompt, show
from client_bot.handlers.admin.states import AdminInput
from client_bot.store import Staff

log = logging.getLogger(__name__)

STAFF_NAME_MAX = 100
STAFF_DESCRIPTION_MAX = 500
DAYS_OFF_SHOWN = 10
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # what Telegram takes as a photo upload


class StaffPhotoCb(CallbackData, prefix="afp"):
    """Set or remove a staff member's photo."""

    staff_id: int


class StaffPhotoInput(StatesGroup):
    """Waiting for a photo (not text, so not one of AdminInput's states). Data: staff_id."""

    photo = State()


def _intervals(items: Sequence[tuple[time, time]]) -> str:
    return ", ".join(
        f"{s:%H:%M}–{'24:00' if e == parse.MIDNIGHT else f'{e:%H:%M}'}" for s, e in items
    )


def _cb(action: StaffAction, staff_id: int = 0, **kwargs: int) -> StaffAdminCb:
    return StaffAdminCb(action=action, staff_id=staff_id, **kwargs)


def _back(kb: InlineKeyboardBuilder, staff_id: int | None = None) -> None:
    if staff_id is None:
        kb.button(text=_("« Settings"), callback_data=AdminCb(screen=Screen.settings))
    else:
        kb.button(text=_("« Staff"), callback_data=AdminCb(screen=Screen.staff))


# --- the list -----------------------------------------------------------------------------------
async def show_list(event: Message | CallbackQuery, ctx: TenantContext, note: str = "") -> None:
    items = await ctx.store.staff(include_inactive=True)
    lines = [_("<b>👤 Staff</b> (customers choose among the active ones)")]
    for n, member in enumerate(items, start=1):
        hours = _("own hours") if member.own_hours else _("business hours")
        services = _("all services") if member.all_services else _("some services")
        line = f"{n}. {text.esc(member.name)} — {hours} · {services}"
        lines.append(line + ("" if member.active else _(" · inactive")))
    kb = InlineKeyboardBuilder()
    for member in items:
        kb.button(
            text=("" if member.active else "🚫 ") + member.name,
            callback_data=_cb(StaffAction.view, member.id),
        )
    kb.button(text=_("➕ Add a staff member"), callback_data=_cb(StaffAction.add))
    _back(kb)
    kb.adjust(1)
    await show(event, (note + "\n\n" if note else "") + "\n".join(lines), kb.as_markup())


async def open_list(query: CallbackQuery, ctx: TenantContext, state: FSMContext) -> None:
    await state.clear()
    await show_list(query, ctx)


# --- one staff member -----------------------------------------------------------------------------
async def _member_or_list(
    event: Message | CallbackQuery, ctx: TenantContext, staff_id: int
) -> Staff | None:
    member = await ctx.store.staff_member(staff_id)
    if member is None:
        await show_list(event, ctx, _("This staff member no longer exists."))
    return member


async def show_member(
    event: Message | CallbackQuery, ctx: TenantContext, member: Staff, note: str = ""
) -> None:
    business = await ctx.business()
    week = (await ctx.store.staff_weeks([member.id]))[member.id]
    lines = [f"<b>{text.esc(member.name)}</b>"]
    if member.description:
        lines.append(text.esc(member.description))
    if member.own_hours:
        lines.append(_("Hours (own):"))
        for weekday in range(7):
            hours = week.hours.get(weekday, [])
            breaks = [(s, e) for wd, s, e in week.breaks if wd == weekday]
            line = f"{text.weekday_short(weekday, business.locale)}: " + (
                _intervals(hours) if hours else _("closed")
            )
            if hours and breaks:
                line += _(" (breaks: {breaks})").format(breaks=_intervals(breaks))
            lines.append(line)
    else:
        lines.append(_("Hours: the business's (🕒 Schedule)"))
    services = await ctx.store.services(include_hidden=True)
    terms = await ctx.store.staff_terms(member.id)
    performed = [s for s in services if member.all_services or s.id in terms]
    lines.append(_("Services:") + (" " + _("all") if member.all_services else ""))
    for s in performed:
        price, minutes = terms.get(s.id, (None, None))
        lines.append(
            f"· {text.esc(s.name)} — {text.price(price or s.price, business.locale)}, "
            + _("{minutes} min").format(minutes=minutes or s.duration_min)
        )
    today = local_today(ctx, business.zone)
    days_off = sorted(d for d in week.days_off if d >= today)[:DAYS_OFF_SHOWN]
    if days_off:
        lines.append(
            _("Days off: {days}").format(
                days=", ".join(text.day(d, business.locale) for d in days_off)
            )
        )
    lines.append(
        _("Photo: added (customers see it when choosing a specialist)")
        if member.photo_file_id
        else _("Photo: none")
    )
    lines.append(
        _("Telegram: linked (they see their own day with /staff)")
        if member.telegram_id is not None
        else _("Telegram: not linked")
    )
    if not member.active:
        lines.append(_("🚫 Inactive: customers cannot choose them."))
    await show(event, (note + "\n\n" if note else "") + "\n".join(lines), _member_kb(member))


def _member_kb(member: Staff) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("✏️ Name"), callback_data=_cb(StaffAction.name, member.id))
    kb.button(text=_("✏️ Description"), callback_data=_cb(StaffAction.description, member.id))
    kb.button(text=_("🕒 Hours"), callback_data=_cb(StaffAction.hours, member.id))
    kb.button(text=_("💇 Services"), callback_data=_cb(StaffAction.services, member.id))
    kb.button(text=_("🏖 Days off"), callback_data=_cb(StaffAction.day_off, member.id))
    kb.button(
        text=_("🚫 Deactivate") if member.active else _("✅ Activate"),
        callback_data=_cb(StaffAction.active, member.id),
    )
    kb.button(text=_("🔗 Telegram invite"), callback_data=_cb(StaffAction.invite, member.id))
    kb.button(text=_("🖼 Photo"), callback_data=StaffPhotoCb(staff_id=member.id))
    _back(kb, member.id)
    kb.adjust(2, 2, 2, 2, 1)
    return kb.as_markup()


async def view(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is not None:
        await show_member(query, ctx, member)
        if not member.active:  # bookings left to decide about
            await offer_their_bookings(query, ctx, member)


async def ask_new(query: CallbackQuery, state: FSMContext) -> None:
    await prompt(
        query,
        state,
        AdminInput.staff_add,
        _(
            "Send the new staff member as one message:\n<code>Name; description</code>\n"
            "For example: <code>Olga; colourist</code>. The description may be left out."
            " /cancel to stop."
        ),
        AdminCb(screen=Screen.staff),
    )


async def add(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    name, _sep, description = message.text.partition(";")
    try:
        name = parse.text_value(name, STAFF_NAME_MAX)
        description = parse.text_value(description, STAFF_DESCRIPTION_MAX, optional=True)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    member = await ctx.store.add_staff(name, description)
    await show_member(
        message, ctx, member, _("✅ Staff member added: on the business's hours, all services.")
    )


async def ask_edit(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    question = (
        _("Send the new name of «{name}».")
        if callback_data.action is StaffAction.name
        else _("Send the new description of «{name}», or - to remove it.")
    )
    await prompt(
        query,
        state,
        AdminInput.staff_edit,
        question.format(name=text.esc(member.name)) + "\n" + _("/cancel to stop."),
        _cb(StaffAction.view, member.id),
        staff_id=member.id,
        key=callback_data.action.value,
    )


async def edit(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    data = await state.get_data()
    try:
        if data["key"] == StaffAction.name.value:
            field, value = "name", parse.text_value(message.text, STAFF_NAME_MAX)
        else:
            field = "description"
            value = parse.text_value(message.text, STAFF_DESCRIPTION_MAX, optional=True)
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    await state.clear()
    member = await ctx.store.update_staff(int(data["staff_id"]), field, value)
    if member is None:
        await show_list(message, ctx, _("This staff member no longer exists."))
        return
    await show_member(message, ctx, member, _("✅ Saved."))


# --- photo ----------------------------------------------------------------------------------------
async def ask_photo(
    query: CallbackQuery, callback_data: StaffPhotoCb, ctx: TenantContext, state: FSMContext
) -> None:
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    await prompt(
        query,
        state,
        StaffPhotoInput.photo,
        _(
            "Send a photo of «{name}»: customers see it when they choose a specialist."
            " Send - to remove the current photo. /cancel to stop."
        ).format(name=text.esc(member.name)),
        _cb(StaffAction.view, member.id),
        staff_id=member.id,
    )


async def _photo_of_image_file(message: Message, bot: Bot) -> str | None:
    """An image sent as a file: uploaded again as a photo (a document's file id is not a
    photo's), returning the photo's file id; None (the admin told why) when it cannot be."""
    assert message.document is not None
    if (message.document.file_size or 0) > PHOTO_MAX_BYTES:
        await message.answer(_("This image is over 10 MB. Please send a smaller one."))
        return None
    try:
        data = await bot.download(message.document.file_id)
        assert data is not None
        sent = await message.answer_photo(
            BufferedInputFile(data.read(), filename=message.document.file_name or "photo.jpg"),
            caption=_("✅ This is the photo customers will see."),
        )
    except TelegramAPIError as exc:
        log.info("staff photo from a file refused: %s", exc)
        await message.answer(_("Telegram does not take this file as a photo. Please send a photo."))
        return None
    return sent.photo[-1].file_id if sent.photo else None


async def set_photo(message: Message, bot: Bot, ctx: TenantContext, state: FSMContext) -> None:
    staff_id = int((await state.get_data())["staff_id"])
    document = message.document
    file_id: str | None
    if message.photo:
        file_id = message.photo[-1].file_id
        note = _("✅ Photo saved.")
    elif document is not None and (document.mime_type or "").startswith("image/"):
        file_id = await _photo_of_image_file(message, bot)
        if file_id is None:
            return
        note = _("✅ Photo saved.")
    elif message.text is not None and parse.is_blank(message.text):
        file_id, note = None, _("✅ Photo removed.")
    else:
        await message.answer(_("Please send a photo, or - to remove it, or /cancel to stop."))
        return
    await state.clear()
    member = await ctx.store.update_staff(staff_id, "photo_file_id", file_id)
    if member is None:
        await show_list(message, ctx, _("This staff member no longer exists."))
        return
    await show_member(message, ctx, member, note)


async def toggle_active(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    if member.active and len(await ctx.store.staff()) == 1:
        await show_member(query, ctx, member, _("The last active staff member stays active."))
        return
    updated = await ctx.store.update_staff(member.id, "active", not member.active)
    assert updated is not None
    if updated.active:
        await show_member(query, ctx, updated, _("✅ Active again."))
        return
    await show_member(query, ctx, updated, _("🚫 Deactivated: customers no longer see them."))
    await offer_their_bookings(query, ctx, updated)


async def offer_their_bookings(
    event: Message | CallbackQuery, ctx: TenantContext, member: Staff
) -> None:
    """An inactive staff member with upcoming bookings: the admin moves them to the others or
    cancels them with a notice (until then they stay, nothing is lost)."""
    upcoming = await ctx.store.upcoming_of_staff(member.id, ctx.now())
    if not upcoming:
        return
    if isinstance(event, CallbackQuery):  # answered already by the screen before this one
        if not isinstance(event.message, Message):
            return
        event = event.message
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("🔀 Move to the other staff"),
        callback_data=_cb(StaffAction.move_bookings, member.id),
    )
    kb.button(
        text=_("✖️ Cancel them with a notice"),
        callback_data=_cb(StaffAction.cancel_bookings, member.id),
    )
    kb.adjust(1)
    await show(
        event,
        _(
            "⚠️ {name} still has {n} upcoming bookings. Move them to the other staff (whoever"
            " is free at that time; the customers are told), or cancel them with a notice?"
        ).format(name=text.esc(member.name), n=len(upcoming)),
        kb.as_markup(),
    )


async def _tell(bot: Bot, ctx: TenantContext, customer_id: int, body: str) -> bool:
    try:
        await bot.send_message(customer_id, body)
    except TelegramAPIError as exc:
        log.info("tenant %s: customer %s not told: %s", ctx.tenant_id, customer_id, exc)
        return False
    return True


async def move_bookings(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext,
    bot: Bot,
) -> None:  # fmt: skip
    await state.clear()
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    business = await ctx.business()
    moved, stuck = await booking_service.move_to_others(ctx, member.id)
    for booking in moved:
        await _tell(
            bot,
            ctx,
            booking.customer_id,
            _(
                "ℹ️ Your booking #{id} ({service}, {when}) is now with {staff}: {old} is not"
                " available. The time stays the same."
            ).format(
                id=booking.id,
                service=text.esc(booking.service_name),
                when=text.when(booking.starts_at, business.timezone, business.locale),
                staff=text.esc(booking.staff_name or ""),
                old=text.esc(member.name),
            ),
        )
    note = _("🔀 Moved: {moved}. Nobody free for: {stuck}.").format(
        moved=len(moved), stuck=", ".join(f"#{b.id}" for b in stuck) or "—"
    )
    await show_member(query, ctx, member, note)
    await offer_their_bookings(query, ctx, member)


async def cancel_bookings(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext,
    bot: Bot,
) -> None:  # fmt: skip
    await state.clear()
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    business = await ctx.business()
    cancelled = 0
    for booking in await ctx.store.upcoming_of_staff(member.id, ctx.now()):
        done = await ctx.store.cancel_booking(booking.id, by="admin", note=member.name)
        if done is None:  # cancelled meanwhile (by the customer, another admin)
            continue
        cancelled += 1
        await _tell(
            bot,
            ctx,
            done.customer_id,
            _("❌ Your booking #{id} ({service}, {when}) has been cancelled.").format(
                id=done.id,
                service=text.esc(done.service_name),
                when=text.when(done.starts_at, business.timezone, business.locale),
            ),
        )
    await show_member(
        query, ctx, member, _("✖️ Cancelled: {n}; the customers were told.").format(n=cancelled)
    )


async def invite(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext,
    bot: Bot,
) -> None:  # fmt: skip
    """A one-time link for the staff member to open in their own Telegram (only its hash is
    kept; it expires). Whoever opens it first becomes that staff member in the bot."""
    await state.clear()
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    if not member.active:
        await show_member(
            query, ctx, member, _("Activate them first: an inactive one is not linked.")
        )
        return
    code = await booking_service.create_invite(ctx, member.id, query.from_user.id)
    if code is None:
        await show_list(query, ctx, _("This staff member no longer exists."))
        return
    me = await bot.me()
    business = await ctx.business()
    link = f"https://t.me/{me.username}?start={booking_service.INVITE_PREFIX}{code}"
    until = ctx.now() + booking_service.INVITE_TTL
    await show(
        query,
        _(
            "🔗 Send this link to {name}; opened in their Telegram, it links them as this staff"
            " member (once, until {until}):\n{link}\n\nThey will see only their own bookings."
        ).format(
            name=text.esc(member.name),
            until=text.when(until, business.timezone, business.locale),
            link=link,
        ),
        _member_kb(member),
    )


# --- hours ----------------------------------------------------------------------------------------
async def open_hours(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    locale = (await ctx.business()).locale
    kb = InlineKeyboardBuilder()
    for weekday in range(7):
        kb.button(
            text=text.weekday_short(weekday, locale),
            callback_data=_cb(StaffAction.weekday, member.id, weekday=weekday),
        )
    if member.own_hours:
        kb.button(
            text=_("🔁 Use the business's hours"),
            callback_data=_cb(StaffAction.business_hours, member.id),
        )
    kb.button(text=_("« Back"), callback_data=_cb(StaffAction.view, member.id))
    kb.adjust(7, 1, 1)
    await show(
        query,
        _("<b>{name}</b>: pick a weekday to set their own hours and breaks.").format(
            name=text.esc(member.name)
        ),
        kb.as_markup(),
    )


async def ask_weekday(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    weekday = callback_data.weekday % 7
    name = text.weekday_long(weekday, (await ctx.business()).locale).capitalize()
    await prompt(
        query,
        state,
        AdminInput.staff_week,
        _(
            "<b>{name}</b>, {weekday}: send the hours and, after a slash, the breaks, like"
            " <code>10:00-19:00 / 13:00-14:00</code>, or <code>-</code> for a day off."
            " /cancel to stop."
        ).format(name=text.esc(member.name), weekday=name),
        _cb(StaffAction.view, member.id),
        staff_id=member.id,
        weekday=weekday,
    )


async def set_weekday(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    hours_raw, _slash, breaks_raw = message.text.partition("/")
    try:
        hours = parse.intervals(hours_raw)
        breaks = parse.intervals(breaks_raw, until_midnight=False) if hours else []
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    data = await state.get_data()
    await state.clear()
    staff_id, weekday = int(data["staff_id"]), int(data["weekday"])
    await ctx.store.set_staff_hours(staff_id, weekday, hours)
    await ctx.store.set_staff_breaks(staff_id, weekday, breaks)
    member = await _member_or_list(message, ctx, staff_id)
    if member is not None:
        await show_member(message, ctx, member, _("✅ Saved."))


async def business_hours(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    await ctx.store.use_business_hours(callback_data.staff_id)
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is not None:
        await show_member(query, ctx, member, _("✅ On the business's hours again."))


# --- services -------------------------------------------------------------------------------------
async def show_services(
    event: Message | CallbackQuery, ctx: TenantContext, member: Staff, note: str = ""
) -> None:
    services = await ctx.store.services(include_hidden=True)
    terms = await ctx.store.staff_terms(member.id)
    kb = InlineKeyboardBuilder()
    for s in services:
        if s.is_class:
            continue
        performs = member.all_services or s.id in terms
        kb.button(
            text=("✅ " if performs else "▫️ ") + s.name,
            callback_data=_cb(StaffAction.toggle_service, member.id, service_id=s.id),
        )
        kb.button(
            text=_("💰 Price, time"),
            callback_data=_cb(StaffAction.service_terms, member.id, service_id=s.id),
        )
    kb.button(text=_("« Back"), callback_data=_cb(StaffAction.view, member.id))
    kb.adjust(*([2] * sum(1 for s in services if not s.is_class)), 1)
    body = _(
        "<b>{name}</b>: ✅ marks the services they perform; tap to switch."
        " 💰 sets their own price and duration."
    ).format(name=text.esc(member.name))
    await show(event, (note + "\n\n" if note else "") + body, kb.as_markup())


async def open_services(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is not None:
        await show_services(query, ctx, member)


async def toggle_service(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    await state.clear()
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    service = await ctx.store.service(callback_data.service_id)
    if service is None:
        await show_services(query, ctx, member, _("This service no longer exists."))
        return
    performs = member.all_services or service.id in await ctx.store.staff_terms(member.id)
    await ctx.store.set_staff_performs(member.id, service.id, not performs)
    updated = await ctx.store.staff_member(member.id)
    assert updated is not None
    await show_services(query, ctx, updated, _("✅ Saved."))


async def ask_terms(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    service = await ctx.store.service(callback_data.service_id)
    if member is None or service is None:
        return
    await prompt(
        query,
        state,
        AdminInput.staff_terms,
        _(
            "«{service}» by {name}: send their price and minutes, like <code>1800; 75</code>,"
            " or <code>-</code> for the service's own. /cancel to stop."
        ).format(service=text.esc(service.name), name=text.esc(member.name)),
        _cb(StaffAction.services, member.id),
        staff_id=member.id,
        service_id=service.id,
    )


async def set_terms(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    raw = message.text
    try:
        if parse.is_blank(raw):
            price, minutes = None, None
        else:
            price_raw, _sep, minutes_raw = raw.partition(";")
            price = parse.price(price_raw)
            minutes = parse.duration(minutes_raw) if minutes_raw.strip() else None
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    data = await state.get_data()
    await state.clear()
    staff_id, service_id = int(data["staff_id"]), int(data["service_id"])
    if await ctx.store.service(service_id) is None:
        await show_list(message, ctx, _("This service no longer exists."))
        return
    await ctx.store.set_staff_service(staff_id, service_id, price=price, duration_min=minutes)
    member = await _member_or_list(message, ctx, staff_id)
    if member is not None:
        await show_services(message, ctx, member, _("✅ Saved."))


# --- days off -------------------------------------------------------------------------------------
async def ask_day_off(
    query: CallbackQuery, callback_data: StaffAdminCb, ctx: TenantContext, state: FSMContext
) -> None:
    member = await _member_or_list(query, ctx, callback_data.staff_id)
    if member is None:
        return
    await prompt(
        query,
        state,
        AdminInput.staff_day_off,
        _(
            "Send a day off of {name}, like <code>31.12.2026</code>; a day already listed is"
            " removed. /cancel to stop."
        ).format(name=text.esc(member.name)),
        _cb(StaffAction.view, member.id),
        staff_id=member.id,
    )


async def toggle_day_off(message: Message, ctx: TenantContext, state: FSMContext) -> None:
    assert message.text is not None
    business = await ctx.business()
    try:
        day = parse.future_day(message.text, local_today(ctx, business.zone))
    except parse.InputError as exc:
        await message.answer(str(exc))
        return
    staff_id = int((await state.get_data())["staff_id"])
    await state.clear()
    week = (await ctx.store.staff_weeks([staff_id])).get(staff_id)
    if week is not None and day in week.days_off:
        await ctx.store.remove_staff_day_off(staff_id, day)
        note = _("✅ {day} is a working day again.")
    else:
        await ctx.store.add_staff_day_off(staff_id, day)
        note = _("✅ {day} is a day off now.")
    member = await _member_or_list(message, ctx, staff_id)
    if member is not None:
        await show_member(
            message, ctx, member, note.format(day=text.day_long(day, business.locale))
        )


def router() -> Router:
    r = admin_router("admin_staff")
    r.callback_query.register(open_list, AdminCb.filter(F.screen == Screen.staff))
    actions: dict[StaffAction, Callable[..., Awaitable[None]]] = {
        StaffAction.view: view,
        StaffAction.add: ask_new,
        StaffAction.name: ask_edit,
        StaffAction.description: ask_edit,
        StaffAction.hours: open_hours,
        StaffAction.weekday: ask_weekday,
        StaffAction.business_hours: business_hours,
        StaffAction.services: open_services,
        StaffAction.toggle_service: toggle_service,
        StaffAction.service_terms: ask_terms,
        StaffAction.day_off: ask_day_off,
        StaffAction.active: toggle_active,
        StaffAction.move_bookings: move_bookings,
        StaffAction.cancel_bookings: cancel_bookings,
        StaffAction.invite: invite,
    }
    for action, handler in actions.items():
        r.callback_query.register(handler, StaffAdminCb.filter(F.action == action))
    r.callback_query.register(ask_photo, StaffPhotoCb.filter())
    r.message.register(set_photo, StaffPhotoInput.photo, ~F.text.startswith("/"))
    r.message.register(add, AdminInput.staff_add, TYPED)
    r.message.register(edit, AdminInput.staff_edit, TYPED)
    r.message.register(set_weekday, AdminInput.staff_week, TYPED)
    r.message.register(set_terms, AdminInput.staff_terms, TYPED)
    r.message.register(toggle_day_off, AdminInput.staff_day_off, TYPED)
    return r
