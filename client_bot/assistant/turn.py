"""`Assistant`: one customer message in, one answer out (tools in between). No Telegram here.

A turn: store the customer's message and read the history, the handoff flag, the limits and
what we know about the customer (concurrently); build the system prompt from the tenant's data;
call the model, run the tools it asks for (at most `MAX_ROUNDS` model calls); store the answer
and the tokens spent. The customer's message is stored before the model is called, so nothing
is lost when the call fails.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, Protocol

from client_bot.assistant.limits import Limits, Refusal
from client_bot.assistant.model import ChatModel, Completion, ModelUnavailableError
from client_bot.assistant.prompt import CustomerFacts, day_of, history_messages, system_prompt
from client_bot.assistant.tools import TOOLS, Notifier, Toolbox
from client_bot.booking_service import Booker
from client_bot.context import TenantContext
from client_bot.store import Booking, SavedLead

HISTORY = 20  # messages per customer sent to the model (the new one included)
MAX_ROUNDS = 6  # model calls per turn (tool rounds + the final answer)
MAX_ANSWER = 4000  # Telegram's limit is 4096


class Outcome(enum.StrEnum):
    ANSWER = "answer"  # `text` is the model's answer
    FALLBACK = "fallback"  # the model failed: apologise (the message is stored)
    RATE = "rate"  # this customer writes too often
    BUDGET = "budget"  # the business's daily token budget is spent
    RELAYED = "relayed"  # a person has this conversation: passed to the admins, no answer
    OFF = "off"  # the admin switched the assistant off


@dataclass(frozen=True, slots=True)
class Reply:
    outcome: Outcome
    text: str = ""
    booked: Booking | None = None  # made in this turn (worth telling even after a failure)


class CustomerNotifier(Notifier, Protocol):
    """The admins also read what a customer writes while a person has the conversation."""

    async def customer_wrote(self, customer_id: int, name: str, content: str) -> None: ...


class BookingWatcher:
    """Wraps the notifier to remember a booking the tools made in this turn."""

    def __init__(self, inner: CustomerNotifier) -> None:
        self.inner = inner
        self.booked: Booking | None = None

    async def booking_created(self, booking: Booking, *, by_assistant: bool = False) -> None:
        self.booked = booking
        await self.inner.booking_created(booking, by_assistant=by_assistant)

    async def booking_cancelled(self, booking: Booking) -> None:
        await self.inner.booking_cancelled(booking)

    async def lead_saved(self, saved: SavedLead) -> None:
        await self.inner.lead_saved(saved)

    async def handoff_requested(self, customer_id: int, name: str, reason: str) -> None:
        await self.inner.handoff_requested(customer_id, name, reason)


class Assistant:
    def __init__(
        self, ctx: TenantContext, model: ChatModel, limits: Limits, notifier: CustomerNotifier
    ) -> None:
        self.ctx = ctx
        self.model = model
        self.limits = limits
        self.notifier = notifier

    async def enabled(self) -> bool:
        return (await self.ctx.assistant_settings()).enabled

    async def admit(self, booker: Booker) -> Refusal | None:
        """Count a message against the limits without a model call (a voice message before its
        transcription); pass `counted=True` to `reply` afterwards."""
        business = await self.ctx.business()
        return await self.limits.admit(booker.id, day_of(self.ctx.now(), business))

    async def transcribe(self, audio: bytes, filename: str = "voice.ogg") -> str:
        """Speech to text (raises ModelUnavailableError)."""
        return await self.model.transcribe(audio, filename)

    async def reply(self, booker: Booker, message: str, *, counted: bool = False) -> Reply:
        ctx = self.ctx
        settings = await ctx.assistant_settings()
        if not settings.enabled:
            return Reply(Outcome.OFF)
        business = await ctx.business()
        now = ctx.now()
        day = day_of(now, business)
        store = ctx.store
        state, refusal, customer, bookings = await asyncio.gather(
            store.assistant.begin_turn(booker.id, message, HISTORY),
            _nothing() if counted else self.limits.admit(booker.id, day),
            store.customer(booker.id),
            store.upcoming_bookings(booker.id, now),
        )
        if state.handoff:
            await self.notifier.customer_wrote(booker.id, booker.first_name, message)
            return Reply(Outcome.RELAYED)
        if refusal is Refusal.BUDGET:
            return Reply(Outcome.BUDGET)
        if refusal is Refusal.RATE:
            return Reply(Outcome.RATE)
        facts = CustomerFacts(
            telegram_name=booker.first_name,
            phone=customer.phone if customer is not None else None,
            bookings=bookings,
        )
        prompt = system_prompt(
            business, await ctx.visible_services(), await ctx.schedule(), settings, facts, now
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": prompt},
            *history_messages(state.history),
        ]
        watcher = BookingWatcher(self.notifier)
        toolbox = Toolbox(ctx, booker, watcher)
        spent: list[Completion] = []
        answer: str | None = None
        try:
            for _round in range(MAX_ROUNDS):
                completion = await self.model.complete(messages, TOOLS)
                spent.append(completion)
                if not completion.tool_calls:
                    answer = (completion.content or "").strip()[:MAX_ANSWER] or None
                    break
                messages.append(_assistant_call(completion))
                for call in completion.tool_calls:
                    result = await toolbox.run(call.name, call.arguments)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        except ModelUnavailableError:
            answer = None
        finally:
            prompt_tokens = sum(c.prompt_tokens for c in spent)
            completion_tokens = sum(c.completion_tokens for c in spent)
            await asyncio.gather(
                store.assistant.finish_turn(
                    booker.id, answer, day, len(spent), prompt_tokens, completion_tokens
                ),
                self.limits.spend(day, prompt_tokens + completion_tokens),
            )
        if answer is None:
            return Reply(Outcome.FALLBACK, booked=watcher.booked)
        return Reply(Outcome.ANSWER, answer, booked=watcher.booked)


def _assistant_call(completion: Completion) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": completion.content,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in completion.tool_calls
        ],
    }


async def _nothing() -> None:
    return None
