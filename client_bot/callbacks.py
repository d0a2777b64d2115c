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


class CalendarCb(CallbackData, prefix="bc"):
    """Booking step 2: a day (`day` = YYYYMMDD) or, with day=0, a month page (`month` = YYYYMM)."""

    service_id: int
    day: int = 0
    month: int = 0


class SlotCb(CallbackData, prefix="bt"):
    """Booking step 3: a start time as a Unix timestamp."""

    service_id: int
    ts: int


class ConfirmAction(enum.StrEnum):
    confirm = "y"
    cancel = "n"


class ConfirmCb(CallbackData, prefix="bk"):
    action: ConfirmAction


class MyBookingCb(CallbackData, prefix="mb"):
    booking_id: int
