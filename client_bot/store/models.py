"""Plain records read from the tenant schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from client_bot.booking import BookingRules, Break, Schedule, WeeklyHours


@dataclass(frozen=True, slots=True)
class Business:
    name: str
    welcome_text: str
    address: str
    phone: str
    map_url: str
    timezone: str
    locale: str
    slot_step: int
    buffer_min: int
    lead_time_min: int
    horizon_days: int
    cancel_cutoff_min: int
    reminder_offsets_min: tuple[int, ...]
    # The category its example services and hours were seeded from (Store.seed_business);
    # "" when the business had its own already, None before the first start.
    category: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Business:
        values = dict(row)
        values.pop("id", None)
        values.pop("updated_at", None)
        values.pop("owner_set", None)  # which fields the owner set (Store.seed_business)
        values["reminder_offsets_min"] = tuple(values["reminder_offsets_min"])
        return cls(**values)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def rules(self) -> BookingRules:
        return BookingRules(
            slot_step=self.slot_step,
            buffer=self.buffer_min,
            lead_time=self.lead_time_min,
            horizon_days=self.horizon_days,
            cancel_cutoff=self.cancel_cutoff_min,
        )


@dataclass(frozen=True, slots=True)
class Service:
    id: int
    name: str
    description: str
    price: Decimal
    duration_min: int
    position: int
    hidden: bool
    capacity: int | None = None  # set: a group class with this many seats per session

    @property
    def is_class(self) -> bool:
        return self.capacity is not None

    @classmethod
    def from_row(cls, row: Any) -> Service:
        return cls(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            price=row["price"],
            duration_min=row["duration_min"],
            position=row["position"],
            hidden=row["hidden"],
            capacity=row["capacity"],
        )


@dataclass(frozen=True, slots=True)
class Staff:
    id: int
    name: str
    description: str
    position: int
    own_hours: bool  # False: the business's hours and breaks
    all_services: bool  # False: only the services listed in staff_services
    active: bool
    telegram_id: int | None = None  # linked through an invite (staff_invites)
    photo_file_id: str | None = None  # a Telegram photo the admin sent; shown to customers

    @classmethod
    def from_row(cls, row: Any) -> Staff:
        return cls(
            id=row["id"],
            name=row["name"],
            description=row["description"],
            position=row["position"],
            own_hours=row["own_hours"],
            all_services=row["all_services"],
            active=row["active"],
            telegram_id=row.get("telegram_id"),
            photo_file_id=row.get("photo_file_id"),
        )


@dataclass(frozen=True, slots=True)
class StaffOffer:
    """A staff member who performs a service, at their price and duration."""

    staff: Staff
    price: Decimal
    duration_min: int


@dataclass(frozen=True, slots=True)
class StaffWeek:
    """A staff member's own hours and breaks (used when `own_hours`) and own days off."""

    own_hours: bool
    hours: dict[int, list[tuple[time, time]]] = field(default_factory=dict)
    breaks: list[tuple[int, time, time]] = field(default_factory=list)
    days_off: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class ClassSession:
    id: int
    service_id: int
    starts_at: datetime
    ends_at: datetime
    staff_id: int | None
    capacity: int
    booked: int
    cancelled: bool
    held: int = 0  # seats kept for customers of the waitlist who were offered them

    @property
    def free_seats(self) -> int:
        return max(self.capacity - self.booked - self.held, 0)

    @classmethod
    def from_row(cls, row: Any) -> ClassSession:
        return cls(
            id=row["id"],
            service_id=row["service_id"],
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            staff_id=row["staff_id"],
            capacity=row["capacity"],
            booked=row["booked"],
            cancelled=row["cancelled_at"] is not None,
            held=row["held"],
        )


@dataclass(frozen=True, slots=True)
class WaitlistOffer:
    """A freed seat offered to a waiting customer until `until`."""

    entry_id: int
    customer_id: int
    session: ClassSession
    service_name: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Customer:
    telegram_id: int
    first_name: str
    username: str | None
    phone: str | None
    blocked: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Booking:
    id: int
    customer_id: int
    service_id: int
    service_name: str
    starts_at: datetime
    ends_at: datetime
    status: str
    customer_name: str
    phone: str
    cancel_note: str | None = None
    staff_id: int | None = None
    staff_name: str | None = None
    session_id: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> Booking:
        return cls(
            id=row["id"],
            customer_id=row["customer_id"],
            service_id=row["service_id"],
            service_name=row["service_name"],
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            status=row["status"],
            customer_name=row["customer_name"],
            phone=row["phone"],
            cancel_note=row["cancel_note"],
            staff_id=row["staff_id"],
            staff_name=row["staff_name"],
            session_id=row["session_id"],
        )


@dataclass(frozen=True, slots=True)
class WorkSchedule:
    """Hours, breaks and days off as stored; `schedule()` gives the booking module's view."""

    hours: dict[int, list[tuple[time, time]]] = field(default_factory=dict)
    breaks: list[tuple[int, time, time]] = field(default_factory=list)
    days_off: frozenset[date] = frozenset()

    def schedule(self, business: Business) -> Schedule:
        return Schedule(
            hours=WeeklyHours.from_mapping(self.hours),
            tz=business.timezone,
            rules=business.rules,
            breaks=tuple(Break(s, e, frozenset({wd})) for wd, s, e in self.breaks),
            days_off=self.days_off,
        )
