"""Pydantic models of the REST API: the request bodies, the answers and the one error shape."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from master_bot.deploy.base import RuntimeStatus
from master_bot.metrics import FleetState
from master_bot.orders import MAX_DAYS, OrderIn, Text
from master_bot.orders import StrictIn as _In
from master_bot.store import TenantRecord, TenantStatus

__all__ = ["MAX_DAYS", "Text"]


class ProvisionIn(OrderIn):
    """A paid order: what to provision. The token is validated with getMe."""


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
    db_server: str = "default"
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
            db_server=tenant.db_server,
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


DB_SERVER_NAME = Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_-]{0,31}$")


class DbServerIn(_In):
    name: str = DB_SERVER_NAME
    dsn: str = Field(
        min_length=1,
        max_length=1000,
        description="admin DSN (postgresql://user:password@host:5432/db), stored encrypted",
    )
    tenant_dsn: str | None = Field(
        None,
        max_length=1000,
        description="where the bots reach this server, when not at the admin DSN's address",
    )


class DbServerPatch(_In):
    accepting: bool = Field(
        description="false: no new tenant is placed there (its tenants stay; move them to empty it)"
    )


class DbServerOut(BaseModel):
    name: str
    address: str = Field(description="user@host:port/database, never the password")
    tenants: int = Field(description="live tenants on it: the load new tenants are placed by")
    accepting: bool


class DbServerList(BaseModel):
    items: list[DbServerOut]


class DbMoveIn(_In):
    db_server: str = DB_SERVER_NAME


class TableSumOut(BaseModel):
    rows: int
    md5: str


class DbMoveOut(TenantOut):
    moved_from: str
    moved: bool = Field(description="false: the tenant was on that server already")
    seconds: float
    rows: int = Field(description="rows copied and verified (all tables)")
    tables: int = Field(description="tables and sequences verified by checksum")
    checksums: dict[str, TableSumOut] = Field(
        default_factory=dict,
        description="per table: rows and md5 of the ordered row hashes, equal on both servers"
        " (`sequence <name>`: its value as rows)",
    )
    old_copy_dropped: bool


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


class UpgradeIn(_In):
    image: str = Field(
        min_length=1,
        max_length=300,
        pattern=r"^[^\s]+$",
        description="the client image (Docker: a name the engine has; processes: the absolute"
        " path of a release's Python interpreter)",
    )
    migrate: bool = Field(True, description="apply pending tenant migrations first")


class UpgradeMigrationsOut(BaseModel):
    server: str = Field(description="the PostgreSQL server (host:port/database)")
    total: int
    done: int
    failed: dict[str, str]
    applied: int = Field(description="migrations applied, over every schema")


class UpgradeRollbackOut(BaseModel):
    total: int
    done: int


class UpgradeOut(BaseModel):
    id: int
    image: str
    previous_image: str
    state: Literal[
        "migrating", "running", "paused", "halted", "rolling_back", "finished", "rolled_back"
    ]
    total: int = Field(description="units: dedicated bots and hubs (a hub carries its tenants)")
    done: int = Field(description="units healthy on the new image")
    in_flight: list[str]
    failed: dict[str, str] = Field(description="unit -> why it did not come up healthy")
    batches: int
    halted: str | None = Field(description="why it halted (null unless halted)")
    started_at: datetime
    finished_at: datetime | None
    rollback: UpgradeRollbackOut
    migrations: list[UpgradeMigrationsOut]
