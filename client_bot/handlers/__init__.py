"""Routers of the client bot, in the order they are tried. Each call builds fresh routers, so
one process can host several tenants."""

from __future__ import annotations

from aiogram import Router

from client_bot.handlers import (
    assistant,
    booking,
    fallback,
    my_bookings,
    reschedule,
    staff_panel,
    start,
)


def customer_routers() -> list[Router]:
    return [
        staff_panel.router(),  # before /start: a staff invite link is a /start with a payload
        start.router(),
        booking.router(),
        my_bookings.router(),
        reschedule.router(),
    ]


def last_routers(*, assistant_on: bool = False) -> list[Router]:
    """Catch-alls: free text and voice (the AI assistant when configured, else a pointer to the
    menu), stale buttons."""
    return [*([assistant.router()] if assistant_on else []), fallback.router()]
