"""Routers of the client bot, in the order they are tried. Each call builds fresh routers, so
one process can host several tenants."""

from __future__ import annotations

from aiogram import Router

from client_bot.handlers import booking, fallback, my_bookings, start


def customer_routers() -> list[Router]:
    return [start.router(), booking.router(), my_bookings.router()]


def last_routers() -> list[Router]:
    """Catch-alls: free text (the AI assistant or a pointer to the menu), stale buttons."""
    return [fallback.router()]
