"""The business's admin panel (/admin), reachable only by admins.

The panel's routers hang under one parent router that filters messages and buttons with
`IsAdmin()`: a customer's update is checked once and falls through to the customer routers,
instead of being tried against every admin router (each also filters with `IsAdmin()`, from
`screen.admin_router`, so none is open when used on its own).
"""

from __future__ import annotations

from aiogram import Router

from client_bot.filters import IsAdmin
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
    """Fresh routers for one tenant (a process may host several): one parent, admins only, with
    the panel's first, so /admin and /cancel win over any input state."""
    parent = Router(name="admin")
    parent.message.filter(IsAdmin())
    parent.callback_query.filter(IsAdmin())
    parent.include_routers(
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
    )
    return [parent]
