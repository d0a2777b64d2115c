"""The business's admin panel (/admin), reachable only by admins.

Every router comes from `screen.admin_router`, which filters messages and buttons with
`IsAdmin()`: a customer's /admin or admin button falls through to the customer routers.
"""

from __future__ import annotations

from aiogram import Router

from client_bot.handlers.admin import (
    admins,
    assistant,
    bookings,
    classes,
    customers,
    handoff,
    leads,
    panel,
    profile,
    rules,
    schedule,
    services,
    staff,
    stats,
)


def admin_routers() -> list[Router]:
    """Fresh routers for one tenant (a process may host several); the panel's first, so /admin
    and /cancel win over any input state."""
    return [
        panel.router(),
        services.router(),
        classes.router(),
        staff.router(),
        schedule.router(),
        rules.router(),
        profile.router(),
        bookings.router(),
        customers.router(),
        stats.router(),
        admins.router(),
        assistant.router(),
        leads.router(),
        handoff.router(),
    ]
