"""What a new owner is told once their bot has set itself up from the category (issue 14, item 5).

The bot's first start seeds an empty business from BUSINESS_CATEGORY (`Store.seed_business`);
that start also keeps ONE admin notice (client_bot/notices.py: kept until Telegram delivers it,
so an owner who has not opened the bot yet gets it on their first /start) listing what was set
up, with "All correct" and buttons to the panel's services, hours and staff screens.

The buttons carry a short digest of what the message listed: "All correct" pressed after the
setup changed (an admin edited it meanwhile) shows the setup as it is now instead of confirming
what is no longer true. Only admins may press them; anyone else is told so and nothing opens.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from datetime import time

from aiogram import Router
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from client_bot import text
from client_bot.context import TenantContext
from client_bot.handlers.admin import parse, schedule, services, staff
from client_bot.handlers.admin.screen import show
from client_bot.store import Service, Staff
from client_bot.store.models import WorkSchedule
from client_bot.store.notices import NoticeStore

DIGEST_CHARS = 10  # of a SHA-256 hex digest: enough to tell one setup from an edited one


class SetupAction(enum.StrEnum):
    confirm = "ok"
    services = "sv"
    hours = "h"
    staff = "sf"


class SetupCb(CallbackData, prefix="aS"):
    """A button of the setup message; `v` is the digest of the setup it listed."""

    action: SetupAction
    v: str


def _span(days: Sequence[int], locale: str) -> str:
    first, last = text.weekday_short(days[0], locale), text.weekday_short(days[-1], locale)
    return first if len(days) == 1 else f"{first}–{last}" if len(days) > 2 else f"{first}, {last}"


def _intervals(items: Sequence[tuple[time, time]]) -> str:
    return ", ".join(
        f"{s:%H:%M}–{'24:00' if e == parse.MIDNIGHT else f'{e:%H:%M}'}" for s, e in items
    )


def week_lines(week: WorkSchedule, locale: str) -> list[str]:
    """Runs of weekdays with the same hours and breaks: "Mon–Fri: 10:00–20:00"."""
    runs: list[tuple[list[int], str]] = []
    for weekday in range(7):
        hours = week.hours.get(weekday, [])
        breaks = [(s, e) for wd, s, e in week.breaks if wd == weekday]
        line = _intervals(hours) if hours else _("closed")
        if hours and breaks:
            line += _(" (breaks: {breaks})").format(breaks=_intervals(breaks))
        if runs and runs[-1][1] == line:
            runs[-1][0].append(weekday)
        else:
            runs.append(([weekday], line))
    return [f"{_span(days, locale)}: {line}" for days, line in runs]


async def _setup(
    ctx: TenantContext,
) -> tuple[list[Service], WorkSchedule, list[Staff], list[tuple[int, int, time]]]:
    store = ctx.store
    timetable = [
        (int(r["service_id"]), int(r["weekday"]), r["starts"]) for r in await store.timetable()
    ]
    return await store.services(), await store.work_schedule(), await store.staff(), timetable


def _digest(
    items: Sequence[Service],
    week: WorkSchedule,
    people: Sequence[Staff],
    timetable: Sequence[tuple[int, int, time]],
) -> str:
    shown = repr(
        (
            [(s.id, s.name, str(s.price), s.duration_min, s.capacity) for s in items],
            sorted(week.hours.items()),
            week.breaks,
            [(m.id, m.name) for m in people],
            timetable,
        )
    )
    return hashlib.sha256(shown.encode()).hexdigest()[:DIGEST_CHARS]


async def setup_message(ctx: TenantContext, head: str) -> tuple[str, InlineKeyboardMarkup]:
    """What the business has now (services, hours, staff, classes) under `head`, and the
    buttons; in the current i18n locale."""
    items, week, people, timetable = await _setup(ctx)
    locale = (await ctx.business()).locale
    lines = [head, "", _("<b>Services</b>")]
    for s in items:
        line = _("• {name} — {price}, {minutes} min").format(
            name=text.esc(s.name), price=text.price(s.price, locale), minutes=s.duration_min
        )
        if s.is_class:
            sessions = ", ".join(
                f"{text.weekday_short(wd, locale)} {starts:%H:%M}"
                for service_id, wd, starts in timetable
                if service_id == s.id
            )
            line += _(", a class of {seats} seats").format(seats=s.capacity)
            line += f": {sessions}" if sessions else ""
        lines.append(line)
    lines += ["", _("<b>Hours</b>"), *week_lines(week, locale)]
    lines += ["", _("<b>Staff</b>"), ", ".join(text.esc(m.name) for m in people) or "—"]
    lines += [
        "",
        _("Is everything right? Fix anything with the buttons below, or later in /admin."),
    ]
    version = _digest(items, week, people, timetable)
    kb = InlineKeyboardBuilder()
    kb.button(
        text=_("✅ All correct"), callback_data=SetupCb(action=SetupAction.confirm, v=version)
    )
    kb.button(text=_("✏️ Services"), callback_data=SetupCb(action=SetupAction.services, v=version))
    kb.button(text=_("✏️ Hours"), callback_data=SetupCb(action=SetupAction.hours, v=version))
    kb.button(text=_("✏️ Staff"), callback_data=SetupCb(action=SetupAction.staff, v=version))
    kb.adjust(1, 3)
    return "\n".join(lines), kb.as_markup()


async def tell_owner(ctx: TenantContext) -> None:
    """Keep the setup message for the admins (the owner); the notice retry and their first
    /start deliver it. Call with the i18n context in the business's locale."""
    body, markup = await setup_message(
        ctx,
        _(
            "<b>🎉 Your bot is ready for bookings</b>\nI have set it up for your kind of business,"
            " and customers can book already. Please check:"
        ),
    )
    await NoticeStore(ctx.store.pool).add(
        sorted(await ctx.admin_ids()), body, markup.model_dump_json(exclude_none=True)
    )


async def _drop_buttons(query: CallbackQuery) -> None:
    """The pressed message keeps no "All correct" that could be pressed again."""
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)


async def pressed(
    query: CallbackQuery, callback_data: SetupCb, ctx: TenantContext, state: FSMContext
) -> None:
    if not await ctx.is_admin(query.from_user.id):
        await query.answer(_("Only the bot's admins can change its setup."), show_alert=True)
        return
    action = callback_data.action
    if action is not SetupAction.confirm:
        await state.clear()
        screens = {
            SetupAction.services: services.show_services,
            SetupAction.hours: schedule.show_schedule,
            SetupAction.staff: staff.show_list,
        }
        await screens[action](query, ctx)
        return
    await _drop_buttons(query)
    if _digest(*await _setup(ctx)) != callback_data.v:  # edited since: show it as it is now
        head = _("<b>The setup has changed since that message.</b> This is it now:")
        await show(query, *await setup_message(ctx, head))
        return
    await show(
        query,
        _(
            "👍 Done: customers can book now. Services, hours and staff can be changed"
            " any time in /admin."
        ),
    )


def router() -> Router:
    """Not an admin router: a non-admin's press is answered here, not by "out of date"."""
    r = Router(name="onboarding")
    r.callback_query.register(pressed, SetupCb.filter())
    return r
