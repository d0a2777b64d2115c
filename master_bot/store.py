"""The master's data layer: every SQL statement on `control.*` lives here.

The database is the fleet's desired state. Connections are taken from the pool for one short
statement or transaction and given back at once: nothing here calls Telegram or a backend.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from core.tenant_id import format_tenant_id
from master_bot.errors import ConflictError, RejectedError


class TenantStatus(enum.StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    FAILED = "failed"
    DELETED = "deleted"


class Step(enum.StrEnum):
    """Provisioning steps, in order; `provision_step` holds the last one completed."""

    ALLOCATED = "allocated"
    DATABASE = "database"
    MIGRATIONS = "migrations"
    REDIS = "redis"
    FILES = "files"
    RUNTIME = "runtime"
    DONE = "done"


STEPS: tuple[Step, ...] = tuple(Step)

_COLUMNS = (
    "tenant_id, number, status, plan, business_name, owner_telegram_id, locale, timezone,"
    " bot_id, bot_username, bot_token_enc, bot_token_sha256, db_password_enc,"
    " redis_password_enc, provision_step, expires_at, last_error, created_at, updated_at,"
    " suspended_at, deleted_at, placement, webhook_secret_enc, category, db_server,"
    # The DSN (encrypted, bound to the server's name) the tenant's bot reaches its server at;
    # NULL on the platform's own server (TENANT_DATABASE_URL). Control migration 0019.
    " (SELECT coalesce(s.tenant_dsn_enc, s.admin_dsn_enc) FROM control.db_servers s"
    "  WHERE s.name = db_server) AS db_server_dsn_enc"
)
PLACEMENTS = ("dedicated", "shared")
# Where provisioning puts a new tenant: the accepting PostgreSQL server with the fewest live
# (not deleted) tenants; ties go to the platform's own server, then by name (docs/scaling.md).
LEAST_LOADED_SERVER = (
    "SELECT s.name FROM control.db_servers s LEFT JOIN control.tenants t"
    " ON t.db_server = s.name AND t.status <> 'deleted' WHERE s.accepting"
    " GROUP BY s.name ORDER BY count(t.tenant_id), s.name <> 'default', s.name LIMIT 1"
)


@dataclass(frozen=True, slots=True)
class TenantRecord:
    tenant_id: str
    number: int
    status: TenantStatus
    plan: str
    business_name: str
    owner_telegram_id: int
    locale: str
    timezone: str
    bot_id: int | None
    bot_username: str | None
    bot_token_enc: str | None
    bot_token_sha256: str | None
    db_password_enc: str | None
    redis_password_enc: str | None
    provision_step: Step
    expires_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    suspended_at: datetime | None
    deleted_at: datetime | None
    placement: str | None = None  # None: the plan's default
    webhook_secret_enc: str | None = None  # the bot's webhook secret_token (migration 0014)
    category: str = ""  # the business category from the order (migration 0018); '' = none
    db_server: str = "default"  # the PostgreSQL server of its schema (migration 0019)
    db_server_dsn_enc: str | None = None  # that server's DSN for bots; None: TENANT_DATABASE_URL

    def __repr__(self) -> str:  # ciphertexts stay out of reprs too
        return f"TenantRecord({self.tenant_id!r}, status={self.status.value!r})"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TenantRecord:
        data = dict(row)
        data["status"] = TenantStatus(data["status"])
        data["provision_step"] = Step(data["provision_step"])
        return cls(**data)

    def step_done(self, step: Step) -> bool:
        return STEPS.index(self.provision_step) >= STEPS.index(step)


@dataclass(frozen=True, slots=True)
class NewTenant:
    """What a provisioning request asks for, once its bot token is validated."""

    plan: str
    period_days: int
    business_name: str
    owner_telegram_id: int
    locale: str
    timezone: str
    bot_id: int
    bot_username: str | None
    bot_token_sha256: str
    category: str = ""


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    scope: str
    key: str
    request_sha256: str


@dataclass(frozen=True, slots=True)
class KeyRecord:
    tenant_id: str | None
    request_sha256: str | None
    response: dict[str, Any] | None


class IdempotencyKeyReusedError(ConflictError):
    """The key was first used with another request body (its hash is stored with the key)."""

    def __init__(self, key: str) -> None:
        super().__init__(
            "idempotency_key_reused",
            f"Idempotency-Key {key[:80]!r} was used with a different request; a retry must send"
            " the same body, a new request needs a new key",
        )


# The latest end of a subscription: Python's datetime stops at 9999-12-31, and a margin keeps
# grace periods and local times of such a date representable.
MAX_EXPIRES_AT = datetime(9999, 1, 1, tzinfo=UTC)


class TokenInUseError(Exception):
    """The bot token already serves another (not deleted) tenant."""

    def __init__(self, tenant_id: str | None) -> None:
        super().__init__("this bot token is already used by another tenant")
        self.tenant_id = tenant_id


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class TenantStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # ------------------------------------------------------------------ reads
    async def get(self, tenant_id: str) -> TenantRecord | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM control.tenants WHERE tenant_id = $1", tenant_id
            )
        return TenantRecord.from_row(row) if row else None

    async def by_token(self, token_sha256: str) -> TenantRecord | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM control.tenants"
                " WHERE bot_token_sha256 = $1 AND status <> 'deleted'",
                token_sha256,
            )
        return TenantRecord.from_row(row) if row else None

    async def page(
        self, *, status: str | None, plan: str | None, limit: int, offset: int
    ) -> tuple[list[TenantRecord], int]:
        where = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR plan = $2)"
        async with self.pool.acquire() as conn:
            total = await conn.fetchval(
                f"SELECT count(*) FROM control.tenants WHERE {where}", status, plan
            )
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM control.tenants WHERE {where}"
                " ORDER BY number LIMIT $3 OFFSET $4",
                status,
                plan,
                limit,
                offset,
            )
        return [TenantRecord.from_row(r) for r in rows], int(total)

    async def live_page(self, *, limit: int, offset: int) -> tuple[list[TenantRecord], int]:
        """One page of the tenants that are not deleted, by number; (page, total)."""
        async with self.pool.acquire() as conn:
            total = await conn.fetchval(
                "SELECT count(*) FROM control.tenants WHERE status <> 'deleted'"
            )
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM control.tenants WHERE status <> 'deleted'"
                " ORDER BY number LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return [TenantRecord.from_row(r) for r in rows], int(total)

    async def known_plans(self, limit: int = 8) -> list[str]:
        """Plans of the live fleet, most used first (suggestions for a manual deployment)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT plan FROM control.tenants WHERE status <> 'deleted'"
                " GROUP BY plan ORDER BY count(*) DESC, plan LIMIT $1",
                limit,
            )
        return [r["plan"] for r in rows]

    async def revenue(self, since: datetime, until: datetime) -> dict[str, Decimal] | None:
        """Paid order amounts per currency with `since <= paid_at < until`.

        The orders belong to the sales bot (`control.sales_orders`); None when that table does
        not exist here (a database the control migrations have not reached).
        """
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT to_regclass('control.sales_orders') IS NOT NULL"):
                return None
            query = (
                "SELECT currency, sum(amount) AS total FROM control.sales_orders"
                " WHERE status = 'paid' AND paid_at >= $1 AND paid_at < $2 GROUP BY currency"
            )
            try:
                rows = await conn.fetch(query, since, until)
            except (asyncpg.UndefinedColumnError, asyncpg.UndefinedFunctionError):
                return None  # an orders table of another shape: no figure rather than a wrong one
        return {str(r["currency"]): Decimal(r["total"]) for r in rows}

    async def live(self) -> list[TenantRecord]:
        """Every tenant that is not deleted: the desired state of the reconciler."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM control.tenants WHERE status <> 'deleted' ORDER BY number"
            )
        return [TenantRecord.from_row(r) for r in rows]

    async def counts_by_status(self) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT status, count(*) AS n FROM control.tenants GROUP BY 1")
        counts = {s.value: 0 for s in TenantStatus}
        counts.update({r["status"]: int(r["n"]) for r in rows})
        return counts

    async def expiring(self, until: datetime) -> list[TenantRecord]:
        """Active/stopped/suspended tenants whose subscription ends before `until`."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM control.tenants"
                " WHERE status IN ('active', 'stopped', 'suspended') AND expires_at < $1"
                " ORDER BY expires_at",
                until,
            )
        return [TenantRecord.from_row(r) for r in rows]

    async def audit_entries(self, tenant_id: str) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT at, actor, action, details FROM control.audit_log"
                " WHERE tenant_id = $1 ORDER BY id",
                tenant_id,
            )
        return [
            {
                "at": r["at"],
                "actor": r["actor"],
                "action": r["action"],
                "details": json.loads(r["details"]),
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ idempotency
    async def key_record(self, request: IdempotentRequest) -> KeyRecord | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT tenant_id, request_sha256, response FROM control.idempotency_keys"
                " WHERE scope = $1 AND key = $2",
                request.scope,
                request.key,
            )
        if row is None:
            return None
        response = json.loads(row["response"]) if row["response"] is not None else None
        return KeyRecord(row["tenant_id"], row["request_sha256"], response)

    async def save_response(self, request: IdempotentRequest, response: Mapping[str, Any]) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE control.idempotency_keys SET response = $3::jsonb"
                " WHERE scope = $1 AND key = $2",
                request.scope,
                request.key,
                _json(response),
            )

    # ------------------------------------------------------------------ writes
    async def allocate(
        self,
        request: IdempotentRequest,
        new: NewTenant,
        *,
        actor: str,
        seal: Any,
    ) -> tuple[TenantRecord, bool]:
        """Allocate the tenant for `request` (or return the one already allocated for it).

        `seal(tenant_id)` returns the encrypted bot token for the new id. Returns
        (tenant, created). Raises TokenInUseError when the token serves another tenant.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            new_key, existing = await _use_key(conn, request)
            if not new_key and existing is not None:
                return await _tenant(conn, existing), False
            other = await conn.fetchval(
                "SELECT tenant_id FROM control.tenants"
                " WHERE bot_token_sha256 = $1 AND status <> 'deleted'",
                new.bot_token_sha256,
            )
            if other is not None:
                raise TokenInUseError(other)
            number = int(await conn.fetchval("SELECT nextval('control.tenant_number_seq')"))
            tenant_id = format_tenant_id(number)
            try:
                row = await conn.fetchrow(
                    "INSERT INTO control.tenants (tenant_id, number, plan, business_name,"
                    " owner_telegram_id, locale, timezone, bot_id, bot_username, bot_token_enc,"
                    " bot_token_sha256, expires_at, category, db_server)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                    "         now() + make_interval(days => $12), $13,"
                    f"        coalesce(({LEAST_LOADED_SERVER}), 'default'))"
                    f" RETURNING {_COLUMNS}",
                    tenant_id,
                    number,
                    new.plan,
                    new.business_name,
                    new.owner_telegram_id,
                    new.locale,
                    new.timezone,
                    new.bot_id,
                    new.bot_username,
                    seal(tenant_id),
                    new.bot_token_sha256,
                    new.period_days,
                    new.category,
                )
            except asyncpg.UniqueViolationError:
                raise TokenInUseError(None) from None
            await conn.execute(
                "UPDATE control.idempotency_keys SET tenant_id = $3 WHERE scope = $1 AND key = $2",
                request.scope,
                request.key,
                tenant_id,
            )
            await write_audit(
                conn,
                actor,
                tenant_id,
                "tenant.allocated",
                {
                    "plan": new.plan,
                    "period_days": new.period_days,
                    "bot_username": new.bot_username,
                },
            )
        return TenantRecord.from_row(row), True

    async def set_secret(self, tenant_id: str, column: str, ciphertext: str) -> TenantRecord:
        """Store a ciphertext unless one is there already; return the row as it is then."""
        if column not in {"db_password_enc", "redis_password_enc", "webhook_secret_enc"}:
            raise ValueError(f"not a secret column: {column}")
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"UPDATE control.tenants SET {column} = coalesce({column}, $2), updated_at = now()"
                f" WHERE tenant_id = $1 RETURNING {_COLUMNS}",
                tenant_id,
                ciphertext,
            )
        return TenantRecord.from_row(row)

    async def complete_step(self, tenant_id: str, step: Step, *, actor: str) -> TenantRecord:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE control.tenants SET provision_step = $2, last_error = NULL,"
                " status = CASE WHEN $2 = 'done' AND status = 'provisioning' THEN 'active'"
                "               ELSE status END,"
                f" updated_at = now() WHERE tenant_id = $1 RETURNING {_COLUMNS}",
                tenant_id,
                step.value,
            )
            await write_audit(conn, actor, tenant_id, f"provision.{step.value}", {})
            if step is Step.DONE:
                await write_audit(
                    conn,
                    actor,
                    tenant_id,
                    "tenant.status",
                    {"from": "provisioning", "to": "active"},
                )
        return TenantRecord.from_row(row)

    async def set_placement(
        self, tenant_id: str, placement: str, *, actor: str
    ) -> tuple[TenantRecord, str | None] | None:
        """Set where the tenant's bot runs; returns the row and the explicit placement it had
        (None: its plan's default), or None when there is no such live tenant."""
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}")
        async with self.pool.acquire() as conn, conn.transaction():
            before = await conn.fetchrow(
                "SELECT placement FROM control.tenants"
                " WHERE tenant_id = $1 AND status <> 'deleted' FOR UPDATE",
                tenant_id,
            )
            if before is None:
                return None
            row = await conn.fetchrow(
                "UPDATE control.tenants SET placement = $2, updated_at = now()"
                f" WHERE tenant_id = $1 RETURNING {_COLUMNS}",
                tenant_id,
                placement,
            )
            await write_audit(
                conn,
                actor,
                tenant_id,
                "tenant.placement",
                {"from": before["placement"], "to": placement},
            )
        return TenantRecord.from_row(row), before["placement"]

    async def record_error(self, tenant_id: str, error: str, *, actor: str, action: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE control.tenants SET last_error = $2, updated_at = now()"
                " WHERE tenant_id = $1",
                tenant_id,
                error[:1000],
            )
            await write_audit(conn, actor, tenant_id, action, {"error": error[:1000]})

    async def set_status(
        self,
        tenant_id: str,
        status: TenantStatus,
        *,
        actor: str,
        action: str,
        details: Mapping[str, Any] | None = None,
        expect: Sequence[TenantStatus] | None = None,
    ) -> TenantRecord | None:
        """Move a tenant to `status` (only from one of `expect`, when given) and audit it.

        Returns None when the tenant is not in an expected status (nothing changed).
        """
        allowed = [s.value for s in expect] if expect is not None else None
        async with self.pool.acquire() as conn, conn.transaction():
            before = await conn.fetchval(
                "SELECT status FROM control.tenants WHERE tenant_id = $1 FOR UPDATE", tenant_id
            )
            if before is None or (allowed is not None and before not in allowed):
                return None
            row = await conn.fetchrow(
                "UPDATE control.tenants SET status = $2, updated_at = now(),"
                " suspended_at = CASE WHEN $2 = 'suspended' THEN now() ELSE NULL END,"
                " deleted_at = CASE WHEN $2 = 'deleted' THEN now() ELSE deleted_at END,"
                " last_error = CASE WHEN $2 IN ('active', 'stopped') THEN NULL"
                "                   ELSE last_error END"
                f" WHERE tenant_id = $1 RETURNING {_COLUMNS}",
                tenant_id,
                status.value,
            )
            await write_audit(
                conn,
                actor,
                tenant_id,
                action,
                {"from": before, "to": status.value, **(details or {})},
            )
        return TenantRecord.from_row(row)

    async def forget_secrets(self, tenant_id: str) -> None:
        """After deletion: no ciphertext and no token fingerprint stay behind."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE control.tenants SET bot_token_enc = NULL, bot_token_sha256 = NULL,"
                " db_password_enc = NULL, redis_password_enc = NULL, updated_at = now()"
                " WHERE tenant_id = $1",
                tenant_id,
            )

    async def extend(
        self, request: IdempotentRequest, tenant_id: str, days: int, *, now: datetime, actor: str
    ) -> tuple[TenantRecord, bool]:
        """Add `days` to the subscription once per idempotency key; (tenant, applied now)."""
        async with self.pool.acquire() as conn, conn.transaction():
            new_key, _ = await _use_key(conn, request, tenant_id)
            if not new_key:
                return await _tenant(conn, tenant_id), False
            before = await conn.fetchval(
                "SELECT expires_at FROM control.tenants WHERE tenant_id = $1 FOR UPDATE", tenant_id
            )
            base = max(before or now, now)
            if base > MAX_EXPIRES_AT - timedelta(days=days):
                # Raised inside the transaction: the key is not used up by a refused request.
                raise RejectedError(
                    "expiry_out_of_range",
                    f"{days} more days would end the subscription of {tenant_id} after"
                    f" {MAX_EXPIRES_AT:%Y-%m-%d}, the latest date the platform supports"
                    f" (it ends {base:%Y-%m-%d} now)",
                )
            row = await conn.fetchrow(
                "UPDATE control.tenants SET expires_at = greatest(coalesce(expires_at, $3), $3)"
                " + make_interval(days => $2), updated_at = now()"
                f" WHERE tenant_id = $1 RETURNING {_COLUMNS}",
                tenant_id,
                days,
                now,
            )
            await write_audit(
                conn,
                actor,
                tenant_id,
                "subscription.extended",
                {"days": days, "from": before, "to": row["expires_at"]},
            )
        return TenantRecord.from_row(row), True

    async def change_plan(
        self, request: IdempotentRequest, tenant_id: str, plan: str, *, actor: str
    ) -> tuple[TenantRecord, bool]:
        """Switch the tenant to `plan` once per idempotency key; (tenant, applied now). The
        key is used up only together with the change (one transaction)."""
        async with self.pool.acquire() as conn, conn.transaction():
            new_key, _ = await _use_key(conn, request, tenant_id)
            if not new_key:
                return await _tenant(conn, tenant_id), False
            before = await conn.fetchval(
                "SELECT plan FROM control.tenants WHERE tenant_id = $1 FOR UPDATE", tenant_id
            )
            row = await conn.fetchrow(
                "UPDATE control.tenants SET plan = $2, updated_at = now()"
                f" WHERE tenant_id = $1 RETURNING {_COLUMNS}",
                tenant_id,
                plan,
            )
            await write_audit(conn, actor, tenant_id, "plan.changed", {"from": before, "to": plan})
        return TenantRecord.from_row(row), True

    async def audit(
        self, actor: str, tenant_id: str | None, action: str, details: Mapping[str, Any]
    ) -> None:
        async with self.pool.acquire() as conn:
            await write_audit(conn, actor, tenant_id, action, details)

    # ------------------------------------------------------------------ reminders
    async def claim_reminder(self, tenant_id: str, threshold: int, expires_at: datetime) -> bool:
        """True for the one caller that may send this reminder."""
        async with self.pool.acquire() as conn:
            return bool(
                await conn.fetchval(
                    "INSERT INTO control.subscription_reminders"
                    " (tenant_id, threshold_days, expires_at) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    tenant_id,
                    threshold,
                    expires_at,
                )
            )

    async def finish_reminder(
        self, tenant_id: str, threshold: int, expires_at: datetime, *, error: str | None
    ) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE control.subscription_reminders SET sent_at = CASE WHEN $4::text IS NULL"
                " THEN now() END, error = $4"
                " WHERE tenant_id = $1 AND threshold_days = $2 AND expires_at = $3",
                tenant_id,
                threshold,
                expires_at,
                error,
            )

    async def release_reminder(self, tenant_id: str, threshold: int, expires_at: datetime) -> None:
        """A transient failure: the next pass may try again."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM control.subscription_reminders"
                " WHERE tenant_id = $1 AND threshold_days = $2 AND expires_at = $3",
                tenant_id,
                threshold,
                expires_at,
            )

    async def reminders(self, tenant_id: str) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT threshold_days, expires_at, sent_at, error"
                " FROM control.subscription_reminders WHERE tenant_id = $1 ORDER BY claimed_at",
                tenant_id,
            )
        return [dict(r) for r in rows]


async def _use_key(
    conn: asyncpg.Connection, request: IdempotentRequest, tenant_id: str | None = None
) -> tuple[bool, str | None]:
    """Take `request`'s idempotency key in the caller's transaction (so a refused or failed
    request does not use it up): (True, tenant_id) when the key is new and now this request's;
    (False, the tenant stored with it) when it was used before with the same body;
    IdempotencyKeyReusedError when it was used with another body."""
    inserted = await conn.fetchval(
        "INSERT INTO control.idempotency_keys (scope, key, request_sha256, tenant_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
        request.scope,
        request.key,
        request.request_sha256,
        tenant_id,
    )
    if inserted:
        return True, tenant_id
    # The key's row is committed (ON CONFLICT waited for its transaction): compare the stored
    # body hash under a row lock, so no second body slips through.
    known = await conn.fetchrow(
        "SELECT tenant_id, request_sha256 FROM control.idempotency_keys"
        " WHERE scope = $1 AND key = $2 FOR UPDATE",
        request.scope,
        request.key,
    )
    if known is None:
        return False, None
    if known["request_sha256"] not in (None, request.request_sha256):
        raise IdempotencyKeyReusedError(request.key)
    return False, known["tenant_id"]


async def _tenant(conn: asyncpg.Connection, tenant_id: str) -> TenantRecord:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM control.tenants WHERE tenant_id = $1", tenant_id
    )
    return TenantRecord.from_row(row)


async def write_audit(
    conn: asyncpg.Connection,
    actor: str,
    tenant_id: str | None,
    action: str,
    details: Mapping[str, Any],
) -> None:
    """One row of control.audit_log, in `conn`'s transaction (the tenants' and servers' stores)."""
    await conn.execute(
        "INSERT INTO control.audit_log (actor, tenant_id, action, details)"
        " VALUES ($1, $2, $3, $4::jsonb)",
        actor,
        tenant_id,
        action,
        _json(details),
    )
