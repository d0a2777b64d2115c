"""A provisioning order and its rules: what a new tenant needs, checked once for every way an
order arrives (the REST API's `POST /api/v1/tenants`, the operators' /deploy form)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from core.categories import Category

MAX_DAYS = 3660  # the longest period one order or extension may pay for


@dataclass(frozen=True, slots=True)
class ProvisionOrder:
    plan: str
    period_days: int
    business_name: str
    bot_token: str
    owner_telegram_id: int
    locale: str
    timezone: str
    category: str = ""  # core.categories; '' = none given

    def __repr__(self) -> str:
        return f"ProvisionOrder(plan={self.plan!r}, owner={self.owner_telegram_id})"

    def fingerprint(self) -> str:
        fields = asdict(self)
        if not fields["category"]:  # a replay of an order from before categories: same hash
            del fields["category"]
        return hashlib.sha256(
            json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()


def _storable(value: str) -> str:
    """PostgreSQL text holds neither NUL nor lone surrogates: refuse them as bad input."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]


class StrictIn(BaseModel):
    """Input models: unknown fields refused, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


class OrderIn(StrictIn):
    """A paid order: what to provision. The token is validated with getMe."""

    plan: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    period_days: int = Field(ge=1, le=MAX_DAYS)
    business_name: Text = Field(min_length=1, max_length=200)
    bot_token: Text = Field(min_length=1, max_length=200, json_schema_extra={"writeOnly": True})
    owner_telegram_id: int = Field(ge=1, le=2**52)
    locale: Literal["ru", "en"] = "ru"
    timezone: Text = Field("Europe/Moscow", min_length=1, max_length=64)
    category: Category | Literal[""] = Field(
        "", description="the business category; seeds the new bot's services and hours"
    )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(plan={self.plan!r}, owner={self.owner_telegram_id})"

    @field_validator("business_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Moscow)") from None
        return value

    def to_order(self) -> ProvisionOrder:
        """The order the Provisioner takes (the one mapping from the checked fields)."""
        return ProvisionOrder(
            plan=self.plan,
            period_days=self.period_days,
            business_name=self.business_name,
            bot_token=self.bot_token,
            owner_telegram_id=self.owner_telegram_id,
            locale=self.locale,
            timezone=self.timezone,
            category=self.category,
        )
