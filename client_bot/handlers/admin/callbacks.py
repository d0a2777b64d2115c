"""Inline-button payloads of the admin panel. Every prefix starts with `a` and differs from the
customer side's, so an admin button pressed by a customer matches no customer handler."""

from __future__ import annotations

import enum
from datetime import date

from aiogram.filters.callback_data import CallbackData


class Screen(enum.StrEnum):
    home = "h"
    settings = "s"
    services = "sv"
    schedule = "sc"
    rules = "r"
    profile = "p"
    bookings = "b"
    customers = "c"
    stats = "st"
    admins = "a"
    assistant = "ai"
    leads = "ld"
    staff = "sf"


class AdminCb(CallbackData, prefix="ad"):
    """Open a screen (and leave any input the admin was asked for)."""

    screen: Screen


class ServiceAction(enum.StrEnum):
    view = "v"
    add = "a"
    name = "n"
    price = "p"
    duration = "d"
    description = "ds"
    hide = "h"
    up = "u"
    down = "dn"


class ServiceAdminCb(CallbackData, prefix="as"):
    action: ServiceAction
    service_id: int = 0


class ScheduleAction(enum.StrEnum):
    weekday = "w"
    hours = "h"
    breaks = "b"
    add_day_off = "o"
    remove_day_off = "r"


class ScheduleCb(CallbackData, prefix="ah"):
    """`weekday` 0 = Monday; `day` = YYYYMMDD of a day off."""

    action: ScheduleAction
    weekday: int = 0
    day: int = 0


class RuleKey(enum.StrEnum):
    slot_step = "s"
    buffer = "b"
    lead_time = "l"
    horizon = "h"
    cancel_cutoff = "c"
    reminders = "r"


class RuleCb(CallbackData, prefix="ar"):
    key: RuleKey


class ProfileKey(enum.StrEnum):
    name = "n"
    welcome = "w"
    address = "a"
    phone = "p"
    map_url = "m"
    timezone = "t"
    locale = "l"


class ProfileCb(CallbackData, prefix="ap"):
    key: ProfileKey


class Locale(enum.StrEnum):
    ru = "ru"
    en = "en"


class LocaleCb(CallbackData, prefix="al"):
    locale: Locale


class BookingAction(enum.StrEnum):
    day = "d"
    pick_date = "p"
    view = "v"
    done = "ok"
    no_show = "ns"
    restore = "c"
    cancel = "x"
    csv = "csv"


class BookingAdminCb(CallbackData, prefix="ab"):
    """`day` = YYYYMMDD (0 = today); `booking_id` for one booking's actions."""

    action: BookingAction
    day: int = 0
    booking_id: int = 0


class CustomersAction(enum.StrEnum):
    page = "p"
    broadcast = "b"
    send = "s"
    drop = "d"


class CustomersCb(CallbackData, prefix="ac"):
    action: CustomersAction
    page: int = 0


class AdminsAction(enum.StrEnum):
    add = "a"
    remove = "r"


class AdminsCb(CallbackData, prefix="aa"):
    action: AdminsAction
    user_id: int = 0


class AssistantAction(enum.StrEnum):
    toggle = "t"
    faq = "f"
    tone = "n"


class AssistantCb(CallbackData, prefix="ai"):
    action: AssistantAction


class StaffAction(enum.StrEnum):
    view = "v"
    add = "a"
    name = "n"
    description = "d"
    hours = "h"  # the week screen
    weekday = "w"  # type one weekday's hours / breaks
    business_hours = "bh"
    services = "s"
    toggle_service = "t"
    service_terms = "st"
    day_off = "o"
    active = "x"
    move_bookings = "mv"  # an inactive staff member's upcoming bookings to the others
    cancel_bookings = "cx"  # ... or cancelled with a notice
    invite = "i"  # a one-time link that connects their Telegram account


class StaffAdminCb(CallbackData, prefix="af"):
    action: StaffAction
    staff_id: int = 0
    weekday: int = 0
    service_id: int = 0


class ClassAction(enum.StrEnum):
    capacity = "c"
    timetable = "t"
    add_weekly = "w"
    add_once = "o"
    remove_weekly = "rw"
    cancel_session = "cs"  # asks first
    confirm_cancel = "cc"


class ClassAdminCb(CallbackData, prefix="ag"):
    """A class's seats and timetable (`entry_id`: a weekly timetable entry or a session)."""

    action: ClassAction
    service_id: int
    entry_id: int = 0


def pack_day(value: date) -> int:
    return value.year * 10000 + value.month * 100 + value.day


def unpack_day(value: int) -> date | None:
    try:
        return date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        return None
