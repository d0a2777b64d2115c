"""Request and response bodies of the web API (pydantic; they also make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    company_name: str
    telegram_linked: bool
    created_at: datetime
    tenants: list[TenantOut]


class LeadsQuery(_In):
    status: LeadStatus | None = None
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
