"""Pydantic models of the REST API: the request bodies, the answers and the one error shape."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from master_bot.deploy.base import RuntimeStatus
from master_bot.metrics import FleetState
from master_bot.store import TenantRecord, TenantStatus

MAX_DAYS = 3660


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


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProvisionIn(_In):
    """A paid order: what to provision. The token is validated with getMe."""

    plan: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    period_days: int = Field(ge=1, le=MAX_DAYS)
    business_name: Text = Field(min_length=1, max_length=200)
    bot_token: Text = Field(min_length=1, max_length=200, json_schema_extra={"writeOnly": True})
    owner_telegram_id: int = Field(ge=1, le=2**52)
    locale: Literal["ru", "en"] = "ru"
    timezone: Text = Field("Europe/Moscow", min_length=1, max_length=64)

    def __repr__(self) -> str:
        return f"ProvisionIn(plan={self.plan!r}, owner={self.owner_telegram_id})"

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


class ExtendIn(_In):
    days: int = Field(ge=1, le=MAX_DAYS)


class PlanIn(_In):
    plan: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_-]*$")


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TenantStatus | None = None
    plan: Text | None = Field(None, max_length=32)
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10**9)


class DeleteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backup: bool = True


class HealthQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fleet: bool = Field(
        True, description="false: check only the dependencies (a liveness/startup probe)"
    )


class LogsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: int = Field(100, ge=1, le=10_000)


class RuntimeOut(BaseModel):
    state: str
    exit_code: int | None = None
    restarts: int = 0
    memory_bytes: int | None = None
    detail: str = ""

    @classmethod
    def of(cls, status: RuntimeStatus) -> RuntimeOut:
        return cls(
            state=status.state.value,
            exit_code=status.exit_code,
            restarts=status.restarts,
            memory_bytes=status.memory_bytes,
            detail=status.detail,
        )


class TenantOut(BaseModel):
    tenant_id: str
    status: TenantStatus
    plan: str
    business_name: str
    owner_telegram_id: int
    locale: str
    timezone: str
    bot_id: int | None
    bot_username: str | None
    expires_at: datetime | None
    provision_step: str
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    suspended_at: datetime | None
    runtime: RuntimeOut | None = None

    @classmethod
    def of(cls, tenant: TenantRecord, runtime: RuntimeStatus | None = None) -> TenantOut:
        return cls(
            tenant_id=tenant.tenant_id,
            status=tenant.status,
            plan=tenant.plan,
            business_name=tenant.business_name,
            owner_telegram_id=tenant.owner_telegram_id,
            locale=tenant.locale,
            timezone=tenant.timezone,
            bot_id=tenant.bot_id,
            bot_username=tenant.bot_username,
            expires_at=tenant.expires_at,
            provision_step=tenant.provision_step.value,
            last_error=tenant.last_error,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
            suspended_at=tenant.suspended_at,
            runtime=RuntimeOut.of(runtime) if runtime else None,
        )


class PlacementIn(_In):
    placement: Literal["dedicated", "shared"]


class PlacementOut(TenantOut):
    placement: Literal["dedicated", "shared"] = Field(
        description="where the bot runs: a runtime of its own, or one of many in a hub"
    )


class DeletedOut(TenantOut):
    backup_file: str | None = None


class TenantPage(BaseModel):
    items: list[TenantOut]
    total: int
    limit: int
    offset: int


class CheckOut(BaseModel):
    ok: bool
    detail: str = ""


class TenantsHealthOut(BaseModel):
    should_run: int = Field(description="active tenants")
    running: int = Field(description="active tenants whose bot the deploy backend runs")
    down: list[str] = Field(description="active tenants whose bot is not running")

    @classmethod
    def of(cls, fleet: FleetState) -> TenantsHealthOut:
        return cls(should_run=fleet.should_run, running=fleet.running, down=list(fleet.down))


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, CheckOut]
    tenants: TenantsHealthOut | None = Field(
        None, description="null when PostgreSQL or the deploy backend did not answer"
    )


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. tenant_not_found")
    message: str = Field(description="what went wrong, for people; never contains secrets")
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
