"""Who may reach a handler."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message

from client_bot.context import TenantContext


class IsAdmin(Filter):
    """Admins of this business: ADMIN_IDS plus those added in the panel."""

    async def __call__(self, event: Message | CallbackQuery, ctx: TenantContext) -> bool:
        user = event.from_user
        return user is not None and await ctx.is_admin(user.id)
