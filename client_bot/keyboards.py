"""Inline keyboards of the customer side."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import TypeVar

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _

from client_bot import text
from client_bot.callbacks import (
    CalendarCb,
    ConfirmAction,
    ConfirmCb,
    MenuAction,
    MenuCb,
    MoveCb,
    MoveStep,
    MyBookingCb,
    ServiceCb,
    SessionCb,
    SlotCb,
    StaffCb,
    StaffPhotoCb,
    WaitlistAction,
    WaitlistCb,
)
from client_bot.store import Booking, ClassSession, Service, Staff, StaffOffer

M = TypeVar("M", InlineKeyboardMarkup, ReplyKeyboardMarkup)
B = TypeVar("B", bound="Buttons")

MAX_ROW = 8  # Telegram's widest row of inline buttons


class Buttons:
    """Inline buttons laid out in rows, with the calls of aiogram's `InlineKeyboardBuilder`
    (`button`, `adjust`, `attach`, `as_markup`) and the same layout, but without its deep copy
    of the whole markup on every added button: a 46-button month cost ~38,500 `deepcopy` calls
    (~20 ms of CPU) that way. See docs/profiling.md."""

    def __init__(self) -> None:
        self._rows: list[list[InlineKeyboardButton]] = []

    def button(self: B, text: str, callback_data: CallbackData | str) -> B:
        """A button at the end of the last row (a new row once that one is full)."""
        data = callback_data.pack() if isinstance(callback_data, CallbackData) else callback_data
        button = InlineKeyboardButton(text=text, callback_data=data)
        if self._rows and len(self._rows[-1]) < MAX_ROW:
            self._rows[-1].append(button)
        else:
            self._rows.append([button])
        return self

    def adjust(self: B, *sizes: int) -> B:
        """Lay the buttons out again in rows of `sizes`, the last size repeated for the rest."""
        if any(not 1 <= size <= MAX_ROW for size in sizes):
            raise ValueError(f"row sizes must be 1..{MAX_ROW}: {sizes}")
        widths = list(sizes or (MAX_ROW,))
        rows: list[list[InlineKeyboardButton]] = []
        for button in [b for row in self._rows for b in row]:
            if not rows or len(rows[-1]) >= widths[min(len(rows) - 1, len(widths) - 1)]:
                rows.append([])
            rows[-1].append(button)
        self._rows = rows
        return self

    def attach(self: B, other: Buttons) -> B:
        """The rows of `other` below these, as they are."""
        self._rows.extend(list(row) for row in other._rows)
        return self

    def as_markup(self) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[list(row) for row in self._rows])


def per_locale(build: Callable[[], M]) -> Callable[[], M]:
    """Cache a keyboard that depends only on the current locale (built once per language)."""
    cache: dict[str, M] = {}

    def cached() -> M:
        locale = get_i18n().current_locale
        markup = cache.get(locale)
        if markup is None:
            markup = cache[locale] = build()
        return markup

    return cached


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


@per_locale
def main_menu() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(_("💇 Services"), MenuCb(action=MenuAction.services)),
                _button(_("📅 Book"), MenuCb(action=MenuAction.book)),
            ],
            [
                _button(_("🗂 My bookings"), MenuCb(action=MenuAction.my)),
                _button(_("📍 Contacts"), MenuCb(action=MenuAction.contacts)),
            ],
        ]
    )


@per_locale
def home_button() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[_button(_("« Menu"), MenuCb(action=MenuAction.home))]]
    )


def services(items: Sequence[Service], locale: str) -> InlineKeyboardMarkup:
    kb = Buttons()
    for s in items:
        kb.button(
            text=f"{s.name} · {text.price(s.price, locale)}",
            callback_data=ServiceCb(service_id=s.id),
        )
    kb.button(text=_("« Menu"), callback_data=MenuCb(action=MenuAction.home))
    kb.adjust(1)
    return kb.as_markup()


def staff_choice(
    service_id: int, offers: Sequence[StaffOffer], locale: str
) -> InlineKeyboardMarkup:
    """One button per staff member (with their price when it is their own) and 📷 beside those
    with a photo, then "any"."""
    kb = Buttons()
    sizes = []
    for offer in offers:
        kb.button(
            text=f"{offer.staff.name} · {text.price(offer.price, locale)}",
            callback_data=StaffCb(service_id=service_id, staff_id=offer.staff.id),
        )
        if offer.staff.photo_file_id:
            kb.button(
                text="📷",
                callback_data=StaffPhotoCb(service_id=service_id, staff_id=offer.staff.id),
            )
        sizes.append(2 if offer.staff.photo_file_id else 1)
    kb.button(text=_("Any available"), callback_data=StaffCb(service_id=service_id, staff_id=0))
    kb.button(text=_("« Services"), callback_data=MenuCb(action=MenuAction.book))
    kb.adjust(*sizes, 1, 1)
    return kb.as_markup()


def book_with(service_id: int, staff: Staff) -> InlineKeyboardMarkup:
    """Under a staff member's photo: book with them."""
    kb = Buttons()
    kb.button(
        text=_("Book with {name}").format(name=staff.name),
        callback_data=StaffCb(service_id=service_id, staff_id=staff.id),
    )
    return kb.as_markup()


def class_sessions(
    service_id: int, sessions: Sequence[ClassSession], tz: str, locale: str
) -> InlineKeyboardMarkup:
    """One button per session: its free seats, or the waitlist of a full one."""
    kb = Buttons()
    for session in sessions:
        when = text.when(session.starts_at, tz, locale)
        kb.button(
            text=_("{when} · seats: {seats}").format(when=when, seats=session.free_seats)
            if session.free_seats
            else _("{when} · full, waitlist").format(when=when),
            callback_data=SessionCb(service_id=service_id, session_id=session.id),
        )
    kb.button(text=_("« Services"), callback_data=MenuCb(action=MenuAction.book))
    kb.adjust(1)
    return kb.as_markup()


def waitlist_join(service_id: int, session_id: int) -> InlineKeyboardMarkup:
    kb = Buttons()
    kb.button(
        text=_("📝 Get in line"),
        callback_data=WaitlistCb(
            action=WaitlistAction.get_in_line, service_id=service_id, session_id=session_id
        ),
    )
    kb.button(text=_("« Classes"), callback_data=ServiceCb(service_id=service_id))
    kb.adjust(1)
    return kb.as_markup()


def _month_key(d: date) -> int:
    return d.year * 100 + d.month


def calendar_month(
    service_id: int, month: date, free_days: Iterable[date], locale: str, staff_id: int = 0
) -> InlineKeyboardMarkup:
    """A month grid where only days with a free slot are buttons; « » move between months."""
    return month_grid(
        month,
        free_days,
        locale,
        day=lambda d: CalendarCb(service_id=service_id, day=pack_day(d), staff_id=staff_id),
        page=lambda m: CalendarCb(service_id=service_id, month=_month_key(m), staff_id=staff_id),
        noop=CalendarCb(service_id=service_id),
        back=(_("« Services"), MenuCb(action=MenuAction.book)),
    )


def pack_day(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def month_grid(
    month: date,
    free_days: Iterable[date],
    locale: str,
    *,
    day: Callable[[date], CallbackData],
    page: Callable[[date], CallbackData],
    noop: CallbackData,
    back: tuple[str, CallbackData],
) -> InlineKeyboardMarkup:
    """A month grid where only `free_days` are buttons (`day`), « » pages (`page`) between the
    months that have some, decorative cells `noop`, and a back button."""
    free = sorted(set(free_days))
    free_set = set(free)
    months = sorted({date(d.year, d.month, 1) for d in free})
    month = date(month.year, month.month, 1)
    blank = noop.pack()
    kb = Buttons()
    earlier = [m for m in months if m < month]
    later = [m for m in months if m > month]
    kb.button(text="«" if earlier else " ", callback_data=page(earlier[-1]) if earlier else blank)
    kb.button(text=text.month(month, locale).capitalize(), callback_data=blank)
    kb.button(text="»" if later else " ", callback_data=page(later[0]) if later else blank)
    widths = [3]
    for wd in range(7):
        kb.button(text=text.weekday_short(wd, locale), callback_data=blank)
    widths.append(7)
    for week in calendar.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month):
        for d in week:
            if d.month == month.month and d in free_set:
                kb.button(text=str(d.day), callback_data=day(d))
            else:
                kb.button(text="·" if d.month == month.month else " ", callback_data=blank)
        widths.append(7)
    kb.button(text=back[0], callback_data=back[1])
    widths.append(1)
    kb.adjust(*widths)
    return kb.as_markup()


def slots(
    service_id: int, starts: Sequence[datetime], month: date, staff_id: int = 0
) -> InlineKeyboardMarkup:
    kb = Buttons()
    for start in starts:
        kb.button(
            text=text.hhmm(start),
            callback_data=SlotCb(
                service_id=service_id, ts=int(start.timestamp()), staff_id=staff_id
            ),
        )
    kb.adjust(4)
    back = Buttons()
    back.button(
        text=_("« Dates"),
        callback_data=CalendarCb(service_id=service_id, month=_month_key(month), staff_id=staff_id),
    )
    kb.attach(back)
    return kb.as_markup()


@per_locale
def share_contact() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=_("📱 Share my phone number"), request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


@per_locale
def confirm() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(_("✅ Confirm"), ConfirmCb(action=ConfirmAction.confirm)),
                _button(_("✖️ Cancel"), ConfirmCb(action=ConfirmAction.cancel)),
            ]
        ]
    )


def my_bookings(items: Sequence[tuple[Booking, bool]]) -> InlineKeyboardMarkup:
    """Cancel and move buttons for each booking that may still be cancelled (a class seat is
    not moved: its time is the class's)."""
    kb = Buttons()
    for booking, cancellable in items:
        if cancellable:
            kb.button(
                text=_("✖️ Cancel #{id}").format(id=booking.id),
                callback_data=MyBookingCb(booking_id=booking.id),
            )
            if booking.session_id is None:
                kb.button(
                    text=_("🔁 Move #{id}").format(id=booking.id),
                    callback_data=MoveCb(step=MoveStep.start, booking_id=booking.id),
                )
    kb.button(text=_("« Menu"), callback_data=MenuCb(action=MenuAction.home))
    kb.adjust(1)
    return kb.as_markup()
