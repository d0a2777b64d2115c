"""The waitlist of full classes: a customer gets in line for a full session; when a seat frees
up, the first in line is offered it (held for them) for a limited time, then the next.

`WaitlistWorker` makes the offers and tells the customers: one pass after start, then passes every
`POLL_SECONDS` while anyone waits or holds an offer, and at once when someone gets in line. An
idle tenant (nobody waiting) makes no queries. The rules (who is next, for how long, a seat
never sold twice) live in `booking_service`, the store and the database.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)
from aiogram.utils.i18n import gettext as _

from client_bot import booking_service, keyboards, text
from client_bot.booking_service import Booker, SeatProblem
from client_bot.callbacks import WaitlistAction, WaitlistCb
from client_bot.context import TenantContext
from client_bot.notices import AdminNotices
from client_bot.states import BookingForm
from client_bot.store import WaitlistOffer

log = logging.getLogger(__name__)

POLL_SECONDS = 20.0  # between passes while someone waits (a freed seat is offered this soon)
FIRST_PASS_DELAY = 5.0  # after the start, unless someone gets in line sooner


class WaitlistWorker:
    def __init__(self, ctx: TenantContext, bot: Bot) -> None:
        self.ctx = ctx
        self.bot = bot
        self.wake = asyncio.Event()
        self.passes = 0

    async def tick(self) -> int:
        """One pass: expire what is over, offer the free seats, tell the customers offered."""
        offers = await booking_service.waitlist_offers(self.ctx)
        if not offers:
            return 0
        business = await self.ctx.business()
        told = 0
        with self.ctx.i18n.context(), self.ctx.i18n.use_locale(business.locale):
            for offer in offers:
                try:
                    await self.bot.send_message(
                        offer.customer_id,
                        _offer_text(offer, business.timezone, business.locale),
                        reply_markup=_offer_buttons(offer),
                    )
                    told += 1
                except (TelegramForbiddenError, TelegramBadRequest) as exc:  # never reachable
                    log.info("waitlist offer %s not delivered: %s", offer.entry_id, exc)
                except TelegramAPIError as exc:  # temporary: told on a later pass
                    log.warning("waitlist offer %s postponed: %s", offer.entry_id, exc)
                    continue
                await self.ctx.store.offer_told(offer.entry_id)
        return told

    async def run(self) -> None:
        # The first pass (offers that ran out while the bot was down) after the start's own
        # queries, so a starting tenant does not open an extra PostgreSQL connection for it.
        with suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), FIRST_PASS_DELAY)
        while True:
            try:
                await self.tick()
                pending = await self.ctx.store.waitlist_pending()
            except Exception:  # a bad moment of PostgreSQL or Telegram: try again later
                log.exception("tenant %s: waitlist pass failed", self.ctx.tenant_id)
                pending = True
            self.passes += 1
            self.wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS if pending else None)


def _offer_text(offer: WaitlistOffer, tz: str, locale: str) -> str:
    return _(
        "🎉 A seat has freed up: <b>{service}</b>, {when}. It is kept for you until {until}."
    ).format(
        service=text.esc(offer.service_name),
        when=text.when(offer.session.starts_at, tz, locale),
        until=text.when(offer.until, tz, locale),
    )


def _offer_buttons(offer: WaitlistOffer) -> InlineKeyboardMarkup:
    def button(label: str, action: WaitlistAction) -> InlineKeyboardButton:
        data = WaitlistCb(action=action, entry_id=offer.entry_id).pack()
        return InlineKeyboardButton(text=label, callback_data=data)

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(_("✅ Take the seat"), WaitlistAction.take)],
            [button(_("✖️ No, thanks"), WaitlistAction.decline)],
        ]
    )


def _booker(query: CallbackQuery) -> Booker:
    user = query.from_user
    return Booker(user.id, user.first_name, user.username, user.language_code)


async def _answer(query: CallbackQuery, body: str, **kwargs: object) -> None:
    if isinstance(query.message, Message):
        await query.message.answer(body, **kwargs)  # type: ignore[arg-type]


async def join(
    ctx: TenantContext, worker: WaitlistWorker, booker: Booker, session_id: int, phone: str,
    name: str,
) -> str:  # fmt: skip
    """Get in line; what to tell the customer."""
    place = await booking_service.join_waitlist(ctx, booker, session_id, name=name, phone=phone)
    if place is SeatProblem.ALREADY:
        return _("You already have a seat in this class.")
    if isinstance(place, SeatProblem):
        return _("This class is no longer available.")
    worker.wake.set()
    session = await ctx.store.session(session_id)
    service = await ctx.service(session.service_id) if session else None
    business = await ctx.business()
    return _(
        "You are number {place} in the waitlist for «{service}», {when}. I will write to you"
        " when a seat frees up."
    ).format(
        place=place,
        service=text.esc(service.name if service else ""),
        when=text.when(session.starts_at, business.timezone, business.locale) if session else "",
    )


def router() -> Router:
    """The waitlist's buttons. The worker is the tenant's (`waitlist` in the update's data,
    started and stopped with the tenant's runtime): routers serve every tenant of a process."""
    r = Router(name="waitlist")

    async def pressed_join(
        query: CallbackQuery, callback_data: WaitlistCb, ctx: TenantContext, state: FSMContext,
        waitlist: WaitlistWorker,
    ) -> None:  # fmt: skip
        await query.answer()
        await state.clear()
        customer = await ctx.store.customer(query.from_user.id)
        if customer is None or not customer.phone:
            # The phone first, as for a booking; then they are in line.
            await state.set_state(BookingForm.waitlist_contact)
            await state.set_data({"session_id": callback_data.session_id})
            await _answer(
                query,
                _("Please share your phone number with the button below or type it,"
                  " e.g. +7 900 123-45-67."),
                reply_markup=keyboards.share_contact(),
            )  # fmt: skip
            return
        body = await join(
            ctx, waitlist, _booker(query), callback_data.session_id, customer.phone,
            query.from_user.first_name,
        )  # fmt: skip
        await _answer(query, body, reply_markup=keyboards.main_menu())

    async def pressed_take(
        query: CallbackQuery, callback_data: WaitlistCb, ctx: TenantContext, bot: Bot
    ) -> None:
        booking = await booking_service.accept_offer(ctx, _booker(query), callback_data.entry_id)
        await query.answer()
        if booking is None:
            await _answer(
                query,
                _("Sorry, this offer is over: the seat went to the next in line."),
                reply_markup=keyboards.main_menu(),
            )
            return
        business = await ctx.business()
        await _answer(
            query,
            _(
                "✅ You are booked: <b>{service}</b>, {when}.\nBooking number: #{id}. See you!"
            ).format(
                service=text.esc(booking.service_name),
                when=text.when(booking.starts_at, business.timezone, business.locale),
                id=booking.id,
            ),
            reply_markup=keyboards.main_menu(),
        )
        try:
            await AdminNotices(ctx, bot).booking_created(booking)
        except Exception:  # the customer is booked and told so
            log.exception("tenant %s: admins not told of booking #%s", ctx.tenant_id, booking.id)

    async def pressed_decline(
        query: CallbackQuery, callback_data: WaitlistCb, ctx: TenantContext,
        waitlist: WaitlistWorker,
    ) -> None:  # fmt: skip
        await query.answer()
        if await ctx.store.decline_offer(callback_data.entry_id, query.from_user.id):
            waitlist.wake.set()  # the next in line, now
            await _answer(query, _("OK, the seat goes to the next in line."))
        else:
            await _answer(query, _("Sorry, this offer is over: the seat went to the next in line."))

    async def got_phone(
        message: Message, ctx: TenantContext, state: FSMContext, waitlist: WaitlistWorker
    ) -> None:
        raw = message.contact.phone_number if message.contact else message.text or ""
        phone = text.normalize_phone(raw)
        if phone is None:
            await message.answer(
                _("This does not look like a phone number. Please type it like +7 900 123-45-67.")
            )
            return
        user = message.from_user
        assert user is not None
        session_id = int((await state.get_data()).get("session_id", 0))
        await state.clear()
        booker = Booker(user.id, user.first_name, user.username, user.language_code)
        body = await join(ctx, waitlist, booker, session_id, phone, user.first_name)
        await message.answer(_("Thank you!"), reply_markup=ReplyKeyboardRemove())
        await message.answer(body, reply_markup=keyboards.main_menu())

    r.callback_query.register(
        pressed_join, WaitlistCb.filter(F.action == WaitlistAction.get_in_line)
    )
    r.callback_query.register(pressed_take, WaitlistCb.filter(F.action == WaitlistAction.take))
    r.callback_query.register(
        pressed_decline, WaitlistCb.filter(F.action == WaitlistAction.decline)
    )
    r.message.register(got_phone, BookingForm.waitlist_contact, F.contact | F.text)
    return r
