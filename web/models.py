"""Request and response bodies of the web API (pydantic; they also make the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"
LeadStatus = Literal["new", "in_work", "won", "lost"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterIn(_In):
    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    password: str = Field(min_length=8, max_length=200)
    company_name: str = Field(min_length=1, max_length=200)

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class LoginForm(_In):
    """OAuth2 password grant (form fields): `username` is the account's email."""

    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=200)
    grant_type: Literal["password"] | None = None
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None


class RefreshIn(_In):
    refresh_token: str = Field(min_length=1, max_length=200)


class LinkIn(_In):
    token: str = Field(min_length=1, max_length=2000)


class BotLinkIn(_In):
    tenant_id: str = Field(pattern=r"^client_[0-9]{1,12}$")
    token: str = Field(pattern=r"^[A-Za-z0-9_-]{20,100}$")


class ResetIn(_In):
    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class ResetOut(BaseModel):
    message: str


class ResetConfirmIn(_In):
    token: str = Field(pattern=r"^[A-Za-z0-9_-]{20,100}$")
    password: str = Field(min_length=8, max_length=200)


class PasswordIn(_In):
    password: str = Field(min_length=8, max_length=200)
    email: str | None = Field(
        None,
        max_length=254,
        pattern=EMAIL_PATTERN,
        description="the email to log in with, when the account (made by a bot's link) has none",
    )
    current_password: str | None = Field(
        None, max_length=200, description="required when the account already has a password"
    )


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    refresh_token: str


class TenantOut(BaseModel):
    tenant_id: str
    business_name: str
    status: str
    plan: str
    bot_username: str | None
    expires_at: datetime | None


class MeOut(BaseModel):
    id: int
    email: str | None
    only_bot: str | None = Field(
        None, description="set: this session was opened from that bot's /admin and sees it only"
    )
    company_name: str
    telegram_linked: bool
    created_at: datetime
    tenants: list[TenantOut]


class LeadsQuery(_In):
    status: LeadStatus | None = None
    mine: bool = Field(False, description="only leads taken by you (your Telegram id)")
    tenant_id: str | None = Field(None, pattern=r"^client_[0-9]{1,12}$")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class LeadOut(BaseModel):
    tenant_id: str
    id: int
    customer_id: int
    name: str
    phone: str
    interest: str
    comment: str
    status: LeadStatus
    taken_by: int | None
    created_at: datetime
    updated_at: datetime
    notes: int = Field(0, description="how many notes the lead has (…/leads/{id}/notes)")


class LeadStatusIn(_In):
    status: LeadStatus


class LeadPage(BaseModel):
    total: int
    items: list[LeadOut]


class ChatIn(_In):
    user_id: str = Field(
        min_length=1,
        max_length=200,
        description="your id for the person chatting (their conversation is kept under it)",
    )
    text: str = Field(min_length=1, max_length=4000)
    tenant_id: str | None = Field(
        None,
        pattern=r"^client_[0-9]{1,12}$",
        description="which of your bots answers; may be left out when you have one",
    )
    name: str = Field("", max_length=100)


Outcome = Literal["answer", "fallback", "relayed"]


class ChatOut(BaseModel):
    outcome: Outcome = Field(
        description="answer: the assistant's reply; fallback: it could not answer now (the"
        " message is kept); relayed: a person has this conversation, the admins got it"
    )
    reply: str
    customer_id: int


class WidgetChatIn(_In):
    visitor_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    text: str = Field(min_length=1, max_length=2000)
    name: str = Field("", max_length=100)


class WidgetKeyOut(BaseModel):
    tenant_id: str
    key: str
    allowed_origins: list[str]
    snippet: str


class WidgetOriginsIn(_In):
    allowed_origins: list[str] = Field(
        max_length=20, description="origins (https://shop.example) allowed to use the widget"
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        from urllib.parse import urlsplit

        out = []
        for origin in v:
            parts = urlsplit(origin)
            if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path:
                raise ValueError(f"{origin[:80]!r} is not an origin like https://shop.example")
            out.append(f"{parts.scheme}://{parts.netloc}".lower())
        return out


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    postgres: bool
    redis: bool


# --- bookings, customers, conversations, services (one tenant's, in the path) ----------
BookingStatus = Literal["confirmed", "done", "no_show", "cancelled"]


class BookingsQuery(_In):
    day: date | None = Field(
        None, description="first day shown, in the bot's time zone (default: today there)"
    )
    days: int = Field(1, ge=1, le=62, description="how many days from `day` (7: a week)")
    status: BookingStatus | None = None
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class BookingOut(BaseModel):
    tenant_id: str
    id: int
    customer_id: int
    customer_name: str
    phone: str
    service_id: int
    service_name: str
    staff_name: str | None
    starts_at: datetime
    ends_at: datetime
    status: BookingStatus
    cancel_note: str | None


class BookingPage(BaseModel):
    total: int
    items: list[BookingOut]
    timezone: str = Field(
        description="the bot's time zone (IANA): the days asked for are its days, and the"
        " dashboard shows starts_at in it, as the bot's /admin does"
    )


class BookingStatusIn(_In):
    status: Literal["done", "no_show", "confirmed"] = Field(
        description="done or no_show after the visit (confirmed undoes a mark); cancelling is"
        " POST …/cancel"
    )


class BookingCancelIn(_In):
    note: str = Field("", max_length=500, description="why (kept with the booking)")


class PageQuery(_In):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)


class CustomerOut(BaseModel):
    id: int = Field(description="Telegram user id; negative: a website or API customer")
    first_name: str
    username: str | None
    phone: str | None
    blocked: bool
    created_at: datetime
    last_seen_at: datetime


class CustomerPage(BaseModel):
    total: int
    items: list[CustomerOut]


class ConversationOut(BaseModel):
    customer_id: int
    name: str
    messages: int
    last_role: Literal["user", "assistant", "staff"]
    last_text: str
    last_at: datetime
    with_human: bool = Field(description="an admin has it: the assistant is silent")


class ConversationPage(BaseModel):
    total: int
    items: list[ConversationOut]


class MessageOut(BaseModel):
    id: int
    role: Literal["user", "assistant", "staff"]
    content: str
    created_at: datetime


class ConversationDetail(BaseModel):
    customer_id: int
    name: str
    with_human: bool
    messages: list[MessageOut]


Price = Annotated[Decimal, Field(ge=0, le=Decimal("9999999999.99"), decimal_places=2)]


class ServiceOut(BaseModel):
    id: int
    name: str
    description: str
    price: Decimal
    duration_min: int
    position: int
    hidden: bool
    capacity: int | None = Field(description="set: a group class with this many seats")


class ServiceList(RootModel[list[ServiceOut]]):
    pass


class ServiceIn(_In):
    name: str = Field(min_length=1, max_length=100)
    price: Price
    duration_min: int = Field(ge=5, le=1440)
    description: str = Field("", max_length=1000)
    hidden: bool = False


class ServicePatch(_In):
    name: str | None = Field(None, min_length=1, max_length=100)
    price: Price | None = None
    duration_min: int | None = Field(None, ge=5, le=1440)
    description: str | None = Field(None, max_length=1000)
    hidden: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> ServicePatch:
        if not self.model_fields_set:
            raise ValueError("say what to change (name, price, duration_min, description, hidden)")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


# --- notes on leads, answering as a person, hours ------------------------------------------
class NoteIn(_In):
    text: str = Field(min_length=1, max_length=1000)


class NoteOut(BaseModel):
    id: int
    lead_id: int
    author_id: int = Field(description="the writer's Telegram id")
    via: Literal["telegram", "web"]
    text: str
    created_at: datetime


class NoteList(RootModel[list[NoteOut]]):
    pass


class ReplyIn(_In):
    text: str = Field(min_length=1, max_length=3500)


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class Interval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.start >= self.end:
            raise ValueError(f"{self.start}–{self.end}: the end must come after the start")
        return self


def _no_overlap(intervals: list[Interval], what: str) -> list[Interval]:
    ordered = sorted(intervals, key=lambda i: i.start)
    for a, b in pairwise(ordered):
        if b.start < a.end:
            raise ValueError(f"{what} {a.start}–{a.end} and {b.start}–{b.end} overlap")
    return ordered


class DayHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    hours: list[Interval] = Field(max_length=4, description="empty: closed that day")
    breaks: list[Interval] = Field(default_factory=list, max_length=4)

    @model_validator(mode="after")
    def _sane(self) -> DayHours:
        self.hours = _no_overlap(self.hours, "hours")
        self.breaks = _no_overlap(self.breaks, "breaks")
        return self


class HoursOut(BaseModel):
    week: list[DayHours] = Field(description="Monday first, every weekday")
    days_off: list[date] = Field(description="upcoming days off, earliest first")


class HoursIn(_In):
    week: list[DayHours] = Field(min_length=1, max_length=7, description="the weekdays to set")

    @model_validator(mode="after")
    def _once(self) -> HoursIn:
        days = [d.weekday for d in self.week]
        if len(set(days)) != len(days):
            raise ValueError("each weekday at most once")
        return self


class DayOffIn(_In):
    day: date
    note: str = Field("", max_length=200)


class ExportQuery(_In):
    lang: Literal["ru", "en"] = Field("ru", description="the language of the header and statuses")


class WidgetMessagesQuery(_In):
    visitor_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    after: int = Field(0, ge=0, le=2**62, description="the last message id the widget has")


class WidgetMessageOut(BaseModel):
    id: int
    text: str
    created_at: datetime


class WidgetMessagesOut(BaseModel):
    items: list[WidgetMessageOut] = Field(description="what a person wrote to this visitor")
    with_human: bool
