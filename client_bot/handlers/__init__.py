"""Routers of the client bot, in the order they are tried.

A process builds them once (`client_bot.app.SharedDispatcher`) and they serve every tenant it
runs: a router holds no tenant's state (no closures over a tenant, no startup hooks). What a
handler needs of its tenant comes in the update's data (`ctx`, `broadcasts`, `assistant`,
`waitlist`), resolved from the bot the update came to.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Filter
from aiogram.types import TelegramObject

from client_bot.assistant import Assistant
from client_bot.handlers import (
    assistant,
    booking,
    fallback,
    my_bookings,
    onboarding,
    reschedule,
    staff_panel,
    start,
)


class AssistantOn(Filter):
    """The tenant has the AI assistant (OPENAI_API_KEY and the plan's feature)."""

    async def __call__(self, event: TelegramObject, assistant: Assistant | None = None) -> bool:
        return assistant is not None


def customer_routers() -> list[Router]:
    return [
        onboarding.router(),  # the setup message's buttons: admins', refused to anyone else
        staff_panel.router(),  # before /start: a staff invite link is a /start with a payload
        start.router(),
        booking.router(),
        my_bookings.router(),
        reschedule.router(),
    ]


def last_routers() -> list[Router]:
    """Catch-alls: free text and voice (the AI assistant for a tenant that has it, else a
    pointer to the menu), stale buttons."""
    ai = Router(name="assistant on")
    ai.message.filter(AssistantOn())
    ai.callback_query.filter(AssistantOn())
    ai.include_router(assistant.router())
    return [ai, fallback.router()]
