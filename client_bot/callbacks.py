"""Inline-button payloads (aiogram CallbackData): short prefixes, int/enum fields."""

from __future__ import annotations

import enum

from aiogram.filters.callback_data import CallbackData


class MenuAction(enum.StrEnum):
    services = "s"
    book = "b"
    my = "m"
    contacts = "c"
    home = "h"


class MenuCb(CallbackData, prefix="m"):
    action: MenuAction


class ServiceCb(CallbackData, prefix="bs"):
    """Booking step 1: a service was picked."""

    service_id: int


class StaffCb(CallbackData, prefix="bp"):
    """Booking step 1½: a staff member was picked (0 = any available)."""

    service_id: int
    staff_id: int = 0


class StaffPhotoCb(CallbackData, prefix="bf"):
    """Booking step 1½: show a staff member's photo (then book with them from it)."""

    service_id: int
    staff_id: int


class CalendarCb(CallbackData, prefix="bc"):
    """Booking step 2: a day (`day` = YYYYMMDD) or, with day=0, a month page (`month` = YYYYMM),
    with the staff member chosen (0 = any available)."""

    service_id: int
    day: int = 0
    month: int = 0
    staff_id: int = 0


class SlotCb(CallbackData, prefix="bt"):
    """Booking step 3: a start time as a Unix timestamp, with the staff member (0 = any)."""

    service_id: int
    ts: int
    staff_id: int = 0


class SessionCb(CallbackData, prefix="bg"):
    """Booking a class: a session was picked."""

    service_id: int
    session_id: int


class WaitlistAction(enum.StrEnum):
    get_in_line = "j"  # a full session: get in line
    take = "t"  # a freed seat offered: book it
    decline = "d"  # give the offered seat (or the place in line) up


class WaitlistCb(CallbackData, prefix="bw"):
    action: WaitlistAction
    service_id: int = 0
    session_id: int = 0
    entry_id: int = 0


class ConfirmAction(enum.StrEnum):
    confirm = "y"
    cancel = "n"


class ConfirmCb(CallbackData, prefix="bk"):
    action: ConfirmAction


class MyBookingCb(CallbackData, prefix="mb"):
    booking_id: int


# --- admin buttons under notifications (new lead, a customer asking for a person) ---------------
# They live here, not in the admin panel's package, because notifications are sent from the
# customer side too; like every admin payload their prefixes start with `a`, and the handlers
# are admin-only.
class LeadStatus(enum.StrEnum):
    """Lead statuses as stored (short enough for a button payload)."""

    new = "new"
    in_work = "in_work"
    won = "won"
    lost = "lost"


class LeadAction(enum.StrEnum):
    page = "p"
    view = "v"
    status = "s"
    take = "t"
    csv = "c"
    note = "n"  # type a note on the lead


class LeadCb(CallbackData, prefix="av"):
    action: LeadAction
    lead_id: int = 0
    page: int = 0
    status: LeadStatus = LeadStatus.new


class HandoffAction(enum.StrEnum):
    reply = "r"  # type an answer to the customer
    release = "b"  # hand the conversation back to the assistant


class HandoffCb(CallbackData, prefix="ao"):
    action: HandoffAction
    customer_id: int


# --- moving a booking to another time (and, for admins, to another staff member) ---------------
class MoveStep(enum.StrEnum):
    start = "s"  # the move begins: admins pick a staff member, customers a day
    staff = "p"  # a staff member picked (`staff_id`, 0 = whoever is free)
    month = "m"  # a calendar page (`value` = YYYYMM)
    day = "d"  # a day (`value` = YYYYMMDD)
    time = "t"  # the new start (`value` = a Unix timestamp): move now
    noop = "n"  # a decorative calendar cell


class MoveCb(CallbackData, prefix="mv"):
    """A customer moving their own booking (with its staff member, 0 = anyone free)."""

    step: MoveStep
    booking_id: int
    staff_id: int = 0
    value: int = 0


class MoveAdminCb(CallbackData, prefix="am"):
    """An admin moving any booking, also to another staff member (admin-only handlers)."""

    step: MoveStep
    booking_id: int
    staff_id: int = 0
    value: int = 0


# --- staff in Telegram: their own day and visits --------------------------------------------------
class StaffDayCb(CallbackData, prefix="sd"):
    """A staff member's own day (`day` = YYYYMMDD, 0 = today)."""

    day: int = 0


class VisitAction(enum.StrEnum):
    view = "v"
    done = "ok"
    no_show = "ns"


class StaffVisitCb(CallbackData, prefix="sk"):
    """A staff member's own booking: open it, mark it done or no-show."""

    action: VisitAction
    booking_id: int
