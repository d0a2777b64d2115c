"""Everything one tenant's handlers need, built once per tenant (dense mode builds several)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.utils.i18n import I18n

from client_bot.booking import Schedule
from client_bot.clock import Clock
from client_bot.store import AssistantSettings, Business, Service, Staff, StaffOffer, Store
from core.settings import ClientBotSettings

log = logging.getLogger(__name__)


@dataclass
class TenantContext:
    settings: ClientBotSettings
    store: Store
    clock: Clock
    i18n: I18n
    _business: Business | None = field(default=None, repr=False)
    _admins: set[int] | None = field(default=None, repr=False)
    _schedule: Schedule | None = field(default=None, repr=False)
    _services: dict[int, Service] | None = field(default=None, repr=False)
    _assistant: AssistantSettings | None = field(default=None, repr=False)
    _staff: list[Staff] | None = field(default=None, repr=False)
    _offers: dict[int, list[StaffOffer]] = field(default_factory=dict, repr=False)
    # Set when a booking's reminders were written: wakes the sleeping reminder worker at once.
    reminders_changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # Set when a notice to an admin had to be kept for later: wakes the notice retry at once.
    notices_waiting: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    # The owner's web (another process) changes the same rows (services, hours, ...): what is
    # cached here is dropped after this many seconds, so its edits reach the bot within that.
    max_age: float = field(default=30.0, repr=False)
    _cached_at: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.store.on_change = self.refresh

    @property
    def tenant_id(self) -> str:
        return self.settings.tenant_id

    def _expire(self) -> None:
        now = time.monotonic()
        if now - self._cached_at > self.max_age:
            self.refresh()
            self._cached_at = now

    async def business(self) -> Business:
        """The profile and rules, cached in the process; `refresh()` after an admin edit."""
        self._expire()
        if self._business is None:
            self._business = await self.store.business()
        return self._business

    async def locale(self) -> str:
        return (await self.business()).locale

    async def schedule(self) -> Schedule:
        """Hours, breaks, days off and rules for slot computation (cached like the profile)."""
        self._expire()
        if self._schedule is None:
            business = await self.business()
            self._schedule = (await self.store.work_schedule()).schedule(business)
        return self._schedule

    async def _all_services(self) -> dict[int, Service]:
        self._expire()
        if self._services is None:
            self._services = {s.id: s for s in await self.store.services(include_hidden=True)}
        return self._services

    async def service(self, service_id: int) -> Service | None:
        """A service by id, hidden ones included (cached; the store refreshes on changes)."""
        return (await self._all_services()).get(service_id)

    async def visible_services(self) -> list[Service]:
        """Services customers can book, in menu order (from the same cache as `service`)."""
        services = (await self._all_services()).values()
        return sorted((s for s in services if not s.hidden), key=lambda s: (s.position, s.id))

    async def staff(self) -> list[Staff]:
        """The active staff members, in the business's order (cached like the services)."""
        self._expire()
        if self._staff is None:
            self._staff = await self.store.staff()
        return self._staff

    async def offers(self, service_id: int) -> list[StaffOffer]:
        """Who performs a service, at what price, in the business's order (cached per service
        like the services: each booking step asks again)."""
        self._expire()
        offers = self._offers.get(service_id)
        if offers is None:
            offers = self._offers[service_id] = await self.store.offers(service_id)
        return offers

    async def assistant_settings(self) -> AssistantSettings:
        """FAQ, tone and on/off of the AI assistant (cached like the profile)."""
        self._expire()
        if self._assistant is None:
            self._assistant = await self.store.assistant.settings()
        return self._assistant

    async def admin_ids(self) -> set[int]:
        self._expire()
        if self._admins is None:
            self._admins = set(self.settings.admin_ids) | await self.store.admin_ids()
        return self._admins

    async def is_admin(self, user_id: int) -> bool:
        return user_id in await self.admin_ids()

    def refresh(self) -> None:
        """Forget cached profile, schedule, services, staff, admins and assistant settings
        (after any change)."""
        self._business = None
        self._assistant = None
        self._admins = None
        self._schedule = None
        self._services = None
        self._staff = None
        self._offers = {}

    def now(self) -> datetime:
        return self.clock.now()

    async def busy_around(self, moment: datetime) -> list[tuple[datetime, datetime]]:
        """Bookings within a day of `moment`: enough to validate one slot (buffer < 1 day)."""
        return await self.store.busy(moment - timedelta(days=1), moment + timedelta(days=1))

    async def horizon_busy(self) -> list[tuple[datetime, datetime]]:
        business = await self.business()
        now = self.now()
        return await self.store.busy(
            now - timedelta(days=1), now + timedelta(days=business.horizon_days + 2)
        )

    async def notify_admins(self, bot: Bot, text: str, **kwargs: object) -> int:
        """Send `text` to every admin; returns how many got it (a blocked admin is skipped)."""
        delivered = 0
        for admin_id in sorted(await self.admin_ids()):
            try:
                await bot.send_message(admin_id, text, **kwargs)  # type: ignore[arg-type]
                delivered += 1
            except TelegramAPIError as exc:
                log.warning("tenant %s: admin %s not notified: %s", self.tenant_id, admin_id, exc)
        return delivered


async def end_dialog(state: FSMContext, raw_state: str | None) -> None:
    """`state.clear()`, skipped when the update came with no state (`raw_state`, read by
    aiogram's FSM middleware for every update): data is only ever stored together with a state
    and cleared with it, so there is nothing to delete, and /start spares two Redis DELs."""
    if raw_state is not None:
        await state.clear()
