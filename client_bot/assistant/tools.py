"""The assistant's tools: pydantic argument models, their JSON schemas, tenant-scoped actions.

A `Toolbox` is made for one turn of one customer: every action works for that customer only
(the customer id comes from Telegram, never from the model). Arguments are validated by the
models; anything invalid goes back to the model as an error message, never an exception.
Booking goes through `booking_service`, the same path as the menu flow.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from client_bot import booking_service, text
from client_bot.booking import SlotProblem
from client_bot.booking_service import Booker, CancelRefusal
from client_bot.context import TenantContext
from client_bot.store import Booking, SavedLead, Service

log = logging.getLogger(__name__)

MAX_SLOTS_SHOWN = 24


class Notifier(Protocol):
    """How the admins hear about what the assistant did (Telegram in the bot, a fake in tests)."""

    async def booking_created(self, booking: Booking, *, by_assistant: bool = False) -> None: ...

    async def booking_cancelled(self, booking: Booking) -> None: ...

    async def lead_saved(self, saved: SavedLead) -> None: ...

    async def handoff_requested(self, customer_id: int, name: str, reason: str) -> None: ...


class ToolError(Exception):
    """A refusal the model should read and react to (not a bug)."""


# --- argument models ------------------------------------------------------------------------
class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


ServiceRef = int | str
_SERVICE = Field(description="The service id from the services list (or its exact name).")


def _phone(value: str) -> str:
    phone = text.normalize_phone(value)
    if phone is None:
        raise ValueError("not a phone number; ask the customer for a number like +7 900 123-45-67")
    return phone


class ListServices(_Args):
    """All services customers can book: id, name, price in rubles, duration, description."""


class FindFreeSlots(_Args):
    """Free start times of a service on one day (the business's time zone); for a group class,
    the start times of its sessions with free seats."""

    service: ServiceRef = _SERVICE
    staff: int | str | None = Field(
        None, description="A specialist's id or exact name; omit for any available."
    )
    date: dt.date = Field(description="The day, YYYY-MM-DD.")


class CreateBooking(_Args):
    """Book a free time (or a seat in a class) for this customer. Use only a time
    find_free_slots returned."""

    service: ServiceRef = _SERVICE
    staff: int | str | None = Field(
        None,
        description="A specialist's id or exact name when the customer asked for one; "
        "omit for any available.",
    )
    slot: datetime = Field(
        description="Start, YYYY-MM-DDTHH:MM in the business's time zone (from find_free_slots)."
    )
    name: str = Field(min_length=1, max_length=100, description="The customer's name.")
    phone: str = Field(min_length=5, max_length=32, description="The customer's phone number.")

    _check_phone = field_validator("phone")(_phone)


class CancelBooking(_Args):
    """Cancel one of this customer's own upcoming bookings."""

    booking_id: int = Field(gt=0, description="The booking number, e.g. 12 for #12.")


class RegisterLead(_Args):
    """Save the customer as a lead for a manager to call back (name and phone required)."""

    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=5, max_length=32)
    interest: str = Field("", max_length=300, description="What the customer is interested in.")
    comment: str = Field("", max_length=1000, description="Anything else a manager should know.")

    _check_phone = field_validator("phone")(_phone)


class RequestHuman(_Args):
    """Hand the conversation to a person (a manager answers here; you go silent)."""

    reason: str = Field("", max_length=300, description="Why, in a few words.")


ARGUMENTS: dict[str, type[_Args]] = {
    "list_services": ListServices,
    "find_free_slots": FindFreeSlots,
    "create_booking": CreateBooking,
    "cancel_booking": CancelBooking,
    "register_lead": RegisterLead,
    "request_human": RequestHuman,
}


def _schema(model: type[_Args]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    schema.setdefault("properties", {})
    return schema


def tool_definitions() -> list[dict[str, Any]]:
    """The tools in the chat-completions format (`tools=`)."""
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": (model.__doc__ or "").strip(),
                "parameters": _schema(model),
            },
        }
        for name, model in ARGUMENTS.items()
    ]


TOOLS = tool_definitions()


def _validation_message(exc: ValidationError) -> str:
    """What was wrong, without echoing the input back."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        problems.append(f"{where}: {error['msg']}")
    return "invalid arguments: " + "; ".join(problems[:5])


@dataclass
class Toolbox:
    ctx: TenantContext
    booker: Booker
    notifier: Notifier
    handoff_started: bool = False
    calls: list[str] = field(default_factory=list)

    async def run(self, name: str, raw_arguments: str) -> str:
        """Run one tool call; the result (or the error) as JSON for the model."""
        self.calls.append(name)
        model = ARGUMENTS.get(name)
        if model is None:
            return _error(f"unknown tool {name!r}; use one of: {', '.join(ARGUMENTS)}")
        try:
            raw = json.loads(raw_arguments or "{}")
        except json.JSONDecodeError:
            return _error("arguments are not valid JSON")
        try:
            args = model.model_validate(raw)
        except ValidationError as exc:
            return _error(_validation_message(exc))
        action: Callable[[Any], Awaitable[dict[str, Any]]] = getattr(self, f"_{name}")
        try:
            return json.dumps(await action(args), ensure_ascii=False, default=str)
        except ToolError as exc:
            return _error(str(exc))

    # --- helpers ------------------------------------------------------------------------------
    async def _service(self, ref: ServiceRef) -> Service:
        services = await self.ctx.visible_services()
        if isinstance(ref, str) and ref.strip().isdigit():
            ref = int(ref)
        for s in services:
            if s.id == ref or (isinstance(ref, str) and s.name.casefold() == ref.casefold()):
                return s
        raise ToolError("no such service; call list_services and use an id from it")

    async def _staff(self, service: Service, ref: int | str | None) -> int | None:
        """The staff member's id (None: any available); ToolError for one who does not
        perform the service."""
        if ref is None or (isinstance(ref, str) and not ref):
            return None
        if isinstance(ref, str) and ref.strip().isdigit():
            ref = int(ref)
        offers = await booking_service.offers(self.ctx, service)
        for offer in offers:
            staff = offer.staff
            if staff.id == ref or (
                isinstance(ref, str) and staff.name.casefold() == ref.casefold()
            ):
                return staff.id
        names = ", ".join(f"{o.staff.id}: {o.staff.name}" for o in offers) or "nobody"
        raise ToolError(f"no such specialist for this service; specialists: {names}")

    async def _free_times(
        self, service: Service, day: dt.date, staff_id: int | None = None
    ) -> list[datetime]:
        if service.is_class:
            business = await self.ctx.business()
            return [
                s.starts_at.astimezone(business.zone)
                for s in await booking_service.class_sessions(self.ctx, service)
                if s.free_seats and s.starts_at.astimezone(business.zone).date() == day
            ]
        return await booking_service.free_times(self.ctx, service, staff_id, day)

    # --- tools --------------------------------------------------------------------------------
    async def _list_services(self, args: ListServices) -> dict[str, Any]:
        services = []
        for s in await self.ctx.visible_services():
            item: dict[str, Any] = {
                "id": s.id,
                "name": s.name,
                "price_rub": str(s.price),
                "duration_min": s.duration_min,
                "description": s.description,
            }
            if s.is_class:
                item["group_class_seats"] = s.capacity
            else:
                offers = await booking_service.offers(self.ctx, s)
                if len(offers) > 1:
                    item["specialists"] = [
                        {"id": o.staff.id, "name": o.staff.name, "price_rub": str(o.price)}
                        for o in offers
                    ]
            services.append(item)
        return {"services": services}

    async def _find_free_slots(self, args: FindFreeSlots) -> dict[str, Any]:
        service = await self._service(args.service)
        schedule = await self.ctx.schedule()
        first, last = schedule.horizon(self.ctx.now())
        if not first <= args.date <= last:
            raise ToolError(f"the date must be between {first} and {last}")
        staff_id = await self._staff(service, args.staff)
        times = await self._free_times(service, args.date, staff_id)
        result: dict[str, Any] = {
            "service_id": service.id,
            "service": service.name,
            "date": args.date.isoformat(),
            "free_times": [t.strftime("%H:%M") for t in times[:MAX_SLOTS_SHOWN]],
        }
        if not times and not service.is_class:
            days = await booking_service.free_days(self.ctx, service, staff_id)
            result["next_days_with_free_times"] = [d.isoformat() for d in days[:5]]
        return result

    async def _create_booking(self, args: CreateBooking) -> dict[str, Any]:
        service = await self._service(args.service)
        business = await self.ctx.business()
        start = args.slot
        start = (start.replace(tzinfo=business.zone) if start.tzinfo is None else start).astimezone(
            business.zone
        )
        if service.is_class:
            booking = await self._book_seat(service, start, args)
        else:
            staff_id = await self._staff(service, args.staff)
            booking = await booking_service.place_booking(
                self.ctx, self.booker, service, start, name=args.name, phone=args.phone,
                source="assistant", staff_id=staff_id,
            )  # fmt: skip
        if isinstance(booking, SlotProblem | booking_service.SeatProblem):
            day = start.date()
            times = await self._free_times(service, day) if booking is not SlotProblem.PAST else []
            raise ToolError(
                f"this time cannot be booked ({booking.value}); free times that day: "
                + (", ".join(t.strftime("%H:%M") for t in times[:MAX_SLOTS_SHOWN]) or "none")
            )
        await self.notifier.booking_created(booking, by_assistant=True)
        return {
            "ok": True,
            "booking_id": booking.id,
            "service": service.name,
            "specialist": booking.staff_name,
            "starts_at": booking.starts_at.astimezone(business.zone).strftime("%Y-%m-%d %H:%M"),
            "price_rub": str(service.price),
            "name": booking.customer_name,
            "phone": booking.phone,
        }

    async def _book_seat(
        self, service: Service, start: datetime, args: CreateBooking
    ) -> Booking | SlotProblem | booking_service.SeatProblem:
        sessions = await booking_service.class_sessions(self.ctx, service)
        session = next((s for s in sessions if s.starts_at == start), None)
        if session is None:
            return booking_service.SeatProblem.GONE
        return await booking_service.place_seat(
            self.ctx, self.booker, session.id, name=args.name, phone=args.phone,
            source="assistant",
        )  # fmt: skip

    async def _cancel_booking(self, args: CancelBooking) -> dict[str, Any]:
        outcome = await booking_service.cancel_for_customer(
            self.ctx, args.booking_id, self.booker.id
        )
        if outcome is CancelRefusal.NOT_FOUND:
            raise ToolError("this customer has no booking with this number")
        if outcome is CancelRefusal.INACTIVE:
            raise ToolError("this booking is not active any more")
        if outcome is CancelRefusal.TOO_LATE:
            business = await self.ctx.business()
            raise ToolError(
                "too late to cancel online; the customer should call "
                + (business.phone or "the business")
            )
        assert isinstance(outcome, Booking)
        await self.notifier.booking_cancelled(outcome)
        return {"ok": True, "booking_id": outcome.id, "status": "cancelled"}

    async def _register_lead(self, args: RegisterLead) -> dict[str, Any]:
        saved = await self.ctx.store.assistant.save_lead(
            customer_id=self.booker.id,
            name=args.name,
            phone=args.phone,
            interest=args.interest,
            comment=args.comment,
            now=self.ctx.now(),
        )
        await self.notifier.lead_saved(saved)
        return {"ok": True, "lead_id": saved.lead.id, "updated_existing": not saved.created}

    async def _request_human(self, args: RequestHuman) -> dict[str, Any]:
        if await self.ctx.store.assistant.start_handoff(self.booker.id, args.reason):
            self.handoff_started = True
            await self.notifier.handoff_requested(
                self.booker.id, self.booker.first_name, args.reason
            )
        return {
            "ok": True,
            "note": "A manager has been called and will answer in this chat. Tell the customer "
            "so briefly; you will stay silent until the manager hands the conversation back.",
        }


def _error(message: str) -> str:
    return json.dumps({"ok": False, "error": message}, ensure_ascii=False)
