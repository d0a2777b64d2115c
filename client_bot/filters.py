"""Who may reach a handler, and filters cheap enough for every update.

aiogram runs a filter that is a plain (synchronous) callable in a worker thread
(`asyncio.to_thread`) each time an update is tried against it: a bare `F.text` or a bare
`State` costs a thread hop per handler tried. On the customers' path, use `Magic(F....)` and
`StateFilter(...)` instead, which aiogram awaits on the event loop (docs/profiling.md).
"""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message, TelegramObject
from magic_filter import MagicFilter

from client_bot.context import TenantContext


class IsAdmin(Filter):
    """Admins of this business: ADMIN_IDS plus those added in the panel."""

    async def __call__(self, event: Message | CallbackQuery, ctx: TenantContext) -> bool:
        user = event.from_user
        return user is not None and await ctx.is_admin(user.id)


class Magic(Filter):
    """A magic filter (`Magic(F.contact)`, `Magic(F.text & ~F.text.startswith("/"))`) checked on
    the event loop, not in a thread as a bare `F...` is."""

    def __init__(self, magic: MagicFilter) -> None:
        self.magic = magic

    async def __call__(self, event: TelegramObject) -> bool:
        return bool(self.magic.resolve(event))
