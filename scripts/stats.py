"""Fleet statistics for operators: `make stats` (a table) or `python -m scripts.stats --json`.

    python -m scripts.stats [--json] [--no-runtime] [--no-redis] [--staff] [--timezone Europe/Moscow]

What it shows:
- tenants by status and plan, and the active ones whose subscription ends within 7 days;
- payments, refunds and revenue this month (from `control.sales_orders` when the sales bot's
  migration is applied; "n/a" otherwise), month boundaries in `--timezone`;
- per tenant: bookings today and this week (not cancelled, in the tenant's own time zone),
  leads (when the tenant schema has a `leads` table), customers, and the runtime state and
  memory reported by the master's deploy backend ("n/a" when the backend cannot be reached);
- with `--staff`, per tenant and staff member: bookings today and this week (not cancelled;
  inactive staff only with bookings this week), in the JSON as `staff` (name, active, today,
  week); asked only then, as it reads each tenant's staff and bookings once more;
- per tenant: its Redis keys and their estimated memory (one SCAN pass with MEMORY USAGE
  samples, scripts/redis_keys.py; never KEYS), "n/a" when Redis does not answer (`--no-redis`).

Tenant schemas are counted with UNION ALL queries over quoted identifiers, a chunk of tenants
per query and a few chunks in parallel, so that one statement never locks thousands of tables
(the lock table is shared) and 500 tenants take well under two seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.dates import paid_until
from core.logs import setup_logging
from core.redis import redis_client
from core.secrets import SecretBox, SecretDecryptionError
from core.settings import (
    EncryptionSettings,
    MasterSettings,
    PostgresSettings,
    RedisSettings,
    SettingsError,
    load_settings,
)
from database.identifiers import quote_ident
from database.pool import DatabaseUnavailableError, create_pool
from database.roles import is_owner_role
from database.subscription_figures import subscription_figures
from master_bot.deploy.base import DeployBackend, DeployError, RuntimeState, RuntimeStatus
from scripts.redis_keys import human_bytes, tenant_usage

log = logging.getLogger(__name__)
DEFAULT_SERVER = "default"  # the platform's own PostgreSQL server (master_bot/dbservers.py)

TENANT_TABLES = ("bookings", "customers", "leads", "staff")
DEFAULT_TIMEZONE = "Europe/Moscow"
EXPIRY_WINDOW = timedelta(days=7)
NA = "n/a"


@dataclass(slots=True)
class StaffStats:
    name: str
    active: bool
    today: int
    week: int


@dataclass(slots=True)
class TenantStats:
    tenant_id: str
    business_name: str
    plan: str
    status: str
    expires_at: datetime | None
    timezone: str
    bookings_today: int | None = None
    bookings_week: int | None = None
    leads: int | None = None
    customers: int | None = None
    staff: list[StaffStats] | None = None  # None: not asked, or no staff table (older schema)
    runtime: str | None = None
    memory_bytes: int | None = None
    redis_keys: int | None = None
    redis_bytes: int | None = None  # estimated from MEMORY USAGE samples


@dataclass(slots=True)
class Payments:
    source: str
    payments: int
    refunds: int
    revenue: Decimal
    currency: str
    renewals_due_week: int | None = None  # auto-renewals to charge within 7 days
    renewals_failed: int | None = None  # declined auto-renewal charges this month
    mrr: Decimal | None = None  # monthly value of the paid-up subscriptions
    paying: int | None = None  # subscriptions counted in the MRR
    churned: list[str] | None = None  # tenants whose period ended this month, not renewed


@dataclass(slots=True)
class FleetStats:
    generated_at: datetime
    timezone: str
    month_start: datetime
    by_status: dict[str, int]
    by_plan: dict[str, int]
    by_status_plan: dict[str, dict[str, int]]
    expiring: list[dict[str, Any]]
    payments: Payments | None
    tenants: list[TenantStats]
    backend: str | None
    backend_error: str | None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    redis_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, datetime | date):
                return value.isoformat()
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        result: dict[str, Any] = plain(asdict(self))
        return result


# ---------------------------------------------------------------------------------- time


def day_and_week(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime, datetime, datetime]:
    """[start of today, start of tomorrow) and [Monday 00:00, next Monday) in `tz`, as UTC."""
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)

    return (
        midnight(today),
        midnight(today + timedelta(days=1)),
        midnight(monday),
        midnight(monday + timedelta(days=7)),
    )


def month_start(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    return datetime(local.year, local.month, 1, tzinfo=tz).astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


# ---------------------------------------------------------------------------------- control


async def _control(
    conn: asyncpg.Connection, now: datetime, tz: ZoneInfo
) -> tuple[list[TenantStats], Payments | None, list[str]]:
    notes: list[str] = []
    if not await conn.fetchval("SELECT to_regclass('control.tenants') IS NOT NULL"):
        return [], None, ["control.tenants does not exist: run `make migrate`"]
    rows = await conn.fetch(
        "SELECT tenant_id, business_name, plan, status, expires_at, timezone"
        " FROM control.tenants WHERE status <> 'deleted' ORDER BY number"
    )
    tenants = [
        TenantStats(
            r["tenant_id"],
            r["business_name"],
            r["plan"],
            r["status"],
            r["expires_at"],
            r["timezone"],
        )
        for r in rows
    ]
    payments: Payments | None = None
    if await conn.fetchval("SELECT to_regclass('control.sales_orders') IS NOT NULL"):
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status IN ('paid', 'refunded')) AS payments,"
            " count(*) FILTER (WHERE status = 'refunded') AS refunds,"
            " coalesce(sum(amount) FILTER (WHERE status = 'paid'), 0) AS revenue,"
            " coalesce(min(currency), 'RUB') AS currency"
            " FROM control.sales_orders WHERE paid_at >= $1 AND paid_at < $2",
            month_start(now, tz),
            now + timedelta(seconds=1),
        )
        assert row is not None
        payments = Payments(
            "control.sales_orders",
            row["payments"],
            row["refunds"],
            row["revenue"],
            row["currency"],
        )
        figures = await subscription_figures(conn, now, month_start(now, tz))
        if figures is not None:  # definitions: database/subscription_figures.py
            payments.renewals_due_week = figures.renewals_due_week
            payments.renewals_failed = figures.renewals_failed
            payments.mrr, payments.paying = figures.mrr, figures.paying
            payments.churned = list(figures.churned)
    else:
        notes.append("payments: control.sales_orders does not exist (sales bot not migrated)")
    return tenants, payments, notes


async def _servers_of(conn: asyncpg.Connection) -> dict[str, str]:
    """tenant id -> its PostgreSQL server, for the tenants not on the platform's own."""
    if not await conn.fetchval("SELECT to_regclass('control.db_servers') IS NOT NULL"):
        return {}
    rows = await conn.fetch(
        "SELECT tenant_id, db_server FROM control.tenants"
        " WHERE db_server <> $1 AND status <> 'deleted'",
        DEFAULT_SERVER,
    )
    return {r["tenant_id"]: r["db_server"] for r in rows}


async def server_pools(control: asyncpg.Pool) -> tuple[dict[str, asyncpg.Pool], list[str]]:
    """Admin pools of the other PostgreSQL servers (their DSNs opened with ENCRYPTION_KEYS);
    the servers that cannot be had are left out (collect_stats notes their tenants)."""
    async with control.acquire() as conn:
        if not await conn.fetchval("SELECT to_regclass('control.db_servers') IS NOT NULL"):
            return {}, []
        rows = await conn.fetch(
            "SELECT name, admin_dsn_enc FROM control.db_servers WHERE admin_dsn_enc IS NOT NULL"
        )
    if not rows:
        return {}, []
    try:
        box = SecretBox(load_settings(EncryptionSettings).encryption_keys.get_secret_value())
    except SettingsError:
        return {}, []
    pools: dict[str, asyncpg.Pool] = {}
    failed: list[str] = []
    for row in rows:
        try:
            dsn = box.decrypt_server(row["name"], row["admin_dsn_enc"])
            pools[row["name"]] = await create_pool(dsn, max_size=2, attempts=1)
        except (SecretDecryptionError, DatabaseUnavailableError) as exc:
            log.warning("PostgreSQL server %s: %s", row["name"], exc)
            failed.append(row["name"])
    return pools, failed


# ---------------------------------------------------------------------------------- tenants


def build_chunk_query(
    tenants: Sequence[TenantStats],
    tables: dict[str, set[str]],
    bounds: dict[str, tuple[datetime, datetime, datetime, datetime]],
    *,
    staff: bool = False,
) -> tuple[str, list[datetime]]:
    """One UNION ALL statement over `tenants` (identifiers quoted, values as $n parameters).

    Row `i` of the result is tenants[i]. A table the schema lacks yields NULL ("n/a").
    """
    params: list[datetime] = []
    slots: dict[str, int] = {}  # time zone -> number of its first $n
    parts = []
    for i, tenant in enumerate(tenants):
        schema = quote_ident(tenant.tenant_id)
        have = tables.get(tenant.tenant_id, set())
        if "bookings" in have:
            if tenant.timezone not in slots:
                slots[tenant.timezone] = len(params) + 1
                params.extend(bounds[tenant.timezone])
            p = slots[tenant.timezone]
            booked = f"(SELECT count(*) FROM {schema}.bookings WHERE status <> 'cancelled'"
            today = f"{booked} AND starts_at >= ${p} AND starts_at < ${p + 1})"
            week = f"{booked} AND starts_at >= ${p + 2} AND starts_at < ${p + 3})"
            per_staff = (
                "(SELECT json_agg(json_build_array(name, active, today, week)"
                " ORDER BY position, id)::text FROM (SELECT s.id, s.name, s.active, s.position,"
                f" count(b.id) FILTER (WHERE b.starts_at < ${p + 1} AND b.starts_at >= ${p})"
                f" AS today, count(b.id) AS week FROM {schema}.staff s"
                f" LEFT JOIN {schema}.bookings b ON b.staff_id = s.id"
                f" AND b.status <> 'cancelled' AND b.starts_at >= ${p + 2}"
                f" AND b.starts_at < ${p + 3} GROUP BY s.id) x WHERE active OR week > 0)"
                if staff and "staff" in have
                else "NULL::text"
            )
        else:
            today = week = "NULL::bigint"
            per_staff = "NULL::text"
        customers = (
            f"(SELECT count(*) FROM {schema}.customers)" if "customers" in have else "NULL::bigint"
        )
        leads = f"(SELECT count(*) FROM {schema}.leads)" if "leads" in have else "NULL::bigint"
        parts.append(
            f"SELECT {int(i)} AS i, {today} AS today, {week} AS week,"
            f" {customers} AS customers, {leads} AS leads, {per_staff} AS staff"
        )
    return "\nUNION ALL\n".join(parts), params


async def _tenant_counts(
    pool: asyncpg.Pool,
    tenants: list[TenantStats],
    now: datetime,
    *,
    chunk: int,
    concurrency: int,
    staff: bool = False,
) -> None:
    if not tenants:
        return
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT n.nspname, c.relname, n.nspowner::regrole::text AS owner FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY($1::text[]) AND c.relname = ANY($2::text[])"
            " AND c.relkind IN ('r', 'p')",
            [t.tenant_id for t in tenants],
            list(TENANT_TABLES),
        )
    tables: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        # Only schemas in the owner-role shape hold platform code only (database/roles.py);
        # one from before the split, not converted yet, is not read with admin rights.
        if is_owner_role(r["owner"], r["nspname"]):
            tables[r["nspname"]].add(r["relname"])
    bounds = {t.timezone: day_and_week(now, _zone(t.timezone)) for t in tenants}
    present = [t for t in tenants if tables.get(t.tenant_id)]
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(part: list[TenantStats]) -> None:
        sql, params = build_chunk_query(part, tables, bounds, staff=staff)
        async with semaphore, pool.acquire() as conn:
            try:
                result = await conn.fetch(sql, *params)
            except asyncpg.PostgresError as exc:  # e.g. a schema dropped meanwhile
                log.warning("tenant counts of %d tenants failed: %s", len(part), exc)
                return
        for r in result:
            t = part[r["i"]]
            t.bookings_today, t.bookings_week = r["today"], r["week"]
            t.customers, t.leads = r["customers"], r["leads"]
            if staff and t.bookings_week is not None and "staff" in tables[t.tenant_id]:
                t.staff = [StaffStats(*x) for x in json.loads(r["staff"] or "[]")]

    size = max(1, chunk)
    await asyncio.gather(*(one(present[i : i + size]) for i in range(0, len(present), size)))


# ---------------------------------------------------------------------------------- runtime


def backend_from_settings() -> tuple[DeployBackend | None, str | None]:
    """The master's own deploy backend (master_bot.config.make_backend), or why there is none."""
    try:
        settings = MasterSettings()
    except ValidationError as exc:
        names = ", ".join(sorted({str(e["loc"][0]).upper() for e in exc.errors() if e["loc"]}))
        return None, f"master settings incomplete ({names})"
    from master_bot.config import config_from, make_backend

    try:
        return make_backend(settings, config_from(settings)), None
    except (DeployError, ValueError, OSError) as exc:
        return None, f"{settings.deploy_backend} backend unavailable: {exc}"


async def _runtime(
    backend: DeployBackend, tenants: list[TenantStats], *, limit: float
) -> str | None:
    """Fill runtime state and memory; returns an error text when the backend did not answer."""
    deadline = time.monotonic() + limit
    try:
        found: dict[str, RuntimeStatus] = await asyncio.wait_for(backend.list(), limit)
    except (DeployError, OSError, TimeoutError) as exc:
        return f"{backend.name} backend: {exc or type(exc).__name__}"
    wanted = {t.tenant_id: t for t in tenants}
    for tenant_id, status in found.items():
        if tenant_id in wanted:
            wanted[tenant_id].runtime = status.state.value
            wanted[tenant_id].memory_bytes = status.memory_bytes
    for t in tenants:
        if t.runtime is None:
            t.runtime = RuntimeState.MISSING.value
    # Backends whose list() has no memory figure (Docker) answer it per tenant: bounded, and
    # whatever has not answered by the deadline stays "n/a".
    missing = [
        t for t in tenants if t.runtime == RuntimeState.RUNNING.value and t.memory_bytes is None
    ]
    if missing:
        semaphore = asyncio.Semaphore(8)

        async def memory(t: TenantStats) -> None:
            async with semaphore:
                with contextlib.suppress(DeployError, OSError):
                    t.memory_bytes = (await backend.status(t.tenant_id)).memory_bytes

        left = deadline - time.monotonic()
        if left > 0:
            tasks = [asyncio.create_task(memory(t)) for t in missing]
            _, pending = await asyncio.wait(tasks, timeout=left)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    return None


# ---------------------------------------------------------------------------------- redis


async def _redis(redis: Redis, tenants: list[TenantStats], *, limit: float) -> str | None:
    """Fill Redis keys and memory per tenant; returns an error text when Redis did not answer."""
    try:
        usage = await asyncio.wait_for(tenant_usage(redis, [t.tenant_id for t in tenants]), limit)
    except (RedisError, OSError, TimeoutError) as exc:
        return f"redis: {exc or type(exc).__name__}"
    for t in tenants:
        t.redis_keys, t.redis_bytes = usage[t.tenant_id].keys, usage[t.tenant_id].bytes
    return None


# ---------------------------------------------------------------------------------- collect


async def collect_stats(
    pool: asyncpg.Pool,
    backend: DeployBackend | None,
    *,
    now: datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    chunk: int = 50,
    concurrency: int = 4,
    runtime_timeout: float = 1.5,
    backend_error: str | None = None,
    redis: Redis | None = None,
    redis_timeout: float = 10.0,
    redis_error: str | None = None,
    staff: bool = False,
    server_pools: Mapping[str, asyncpg.Pool] | None = None,
) -> FleetStats:
    """`server_pools`: admin pools of the other PostgreSQL servers holding tenants, by name
    (control.db_servers); a tenant on a server without one has its counts n/a, with a note."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    tz = _zone(timezone)
    async with pool.acquire() as conn:
        tenants, payments, notes = await _control(conn, now, tz)
        placed = await _servers_of(conn)
    by_server: dict[str, list[TenantStats]] = defaultdict(list)
    for t in tenants:
        by_server[placed.get(t.tenant_id, DEFAULT_SERVER)].append(t)
    pools = {DEFAULT_SERVER: pool, **(server_pools or {})}
    for name, some in sorted(by_server.items()):
        if name not in pools:
            notes.append(
                f"{len(some)} tenant(s) on PostgreSQL server {name}: counts n/a (its DSN needs "
                "ENCRYPTION_KEYS, and the server must answer)"
            )

    async def counts() -> None:
        await asyncio.gather(
            *(
                _tenant_counts(
                    pools[name], some, now, chunk=chunk, concurrency=concurrency, staff=staff
                )
                for name, some in by_server.items()
                if name in pools
            )
        )

    async def runtime() -> str | None:
        if backend is None:
            return backend_error or "no deploy backend"
        return await _runtime(backend, tenants, limit=runtime_timeout)

    async def keys() -> str | None:
        if redis is None:
            return redis_error or "no Redis"
        return await _redis(redis, tenants, limit=redis_timeout)

    _, error, redis_error = await asyncio.gather(
        counts(),
        runtime(),
        keys(),
    )
    by_status = Counter(t.status for t in tenants)
    by_plan = Counter(t.plan for t in tenants)
    matrix: dict[str, dict[str, int]] = defaultdict(dict)
    for (status, plan), n in Counter((t.status, t.plan) for t in tenants).items():
        matrix[status][plan] = n
    expiring: list[dict[str, Any]] = [
        {
            "tenant_id": t.tenant_id,
            "business_name": t.business_name,
            "plan": t.plan,
            "expires_at": t.expires_at,
            "paid_until": paid_until(t.expires_at),  # the bots' "paid until" (core/dates.py)
            "days_left": round((t.expires_at - now).total_seconds() / 86400, 1),
        }
        for t in tenants
        if t.status == "active" and t.expires_at is not None and t.expires_at < now + EXPIRY_WINDOW
    ]
    expiring.sort(key=lambda e: e["expires_at"])
    return FleetStats(
        generated_at=now,
        timezone=tz.key,
        month_start=month_start(now, tz),
        by_status=dict(sorted(by_status.items())),
        by_plan=dict(sorted(by_plan.items())),
        by_status_plan={k: dict(sorted(v.items())) for k, v in sorted(matrix.items())},
        expiring=expiring,
        payments=payments,
        tenants=tenants,
        backend=backend.name if backend is not None else None,
        backend_error=error,
        seconds=time.perf_counter() - started,
        notes=notes,
        redis_error=redis_error,
    )


# ---------------------------------------------------------------------------------- render


def _n(value: object) -> str:
    return NA if value is None else str(value)


def _mib(value: int | None) -> str:
    return NA if value is None else f"{value / 2**20:.0f} MiB"


def render(stats: FleetStats, console: Console, *, staff: bool = False) -> None:
    """The human view: rich tables printed on `console` (`staff`: bookings per staff member)."""
    plans = list(stats.by_plan)
    fleet = Table(title=f"Tenants ({sum(stats.by_status.values())})", title_justify="left")
    fleet.add_column("status")
    for plan in plans:
        fleet.add_column(plan, justify="right")
    fleet.add_column("total", justify="right", style="bold")
    for status, row in stats.by_status_plan.items():
        fleet.add_row(status, *(str(row.get(p, 0)) for p in plans), str(stats.by_status[status]))
    console.print(fleet)

    expiring = Table(title="Expiring within 7 days", title_justify="left")
    for col in ("tenant", "business", "plan", "paid until", "ends", "days left"):
        expiring.add_column(col)
    for e in stats.expiring:
        expiring.add_row(
            e["tenant_id"],
            e["business_name"],
            e["plan"],
            e["paid_until"],
            e["expires_at"].astimezone(ZoneInfo(stats.timezone)).strftime("%Y-%m-%d %H:%M"),
            str(e["days_left"]),
        )
    if not stats.expiring:
        expiring.add_row("none", "", "", "", "", "")
    console.print(expiring)

    pay = stats.payments
    month = stats.month_start.astimezone(ZoneInfo(stats.timezone)).strftime("%Y-%m")
    payments = Table(title=f"Payments this month ({month}, {stats.timezone})", title_justify="left")
    for col in (
        "payments", "refunds", "revenue", "MRR", "renewals due in 7 days", "failed renewals",
        "churn",
    ):  # fmt: skip
        payments.add_column(col, justify="right")
    if pay is None:
        payments.add_row(NA, NA, NA, NA, NA, NA, NA)
    else:
        payments.add_row(
            str(pay.payments), str(pay.refunds), f"{pay.revenue:,.2f} {pay.currency}",
            NA if pay.mrr is None else f"{pay.mrr:,.2f} {pay.currency}",
            _n(pay.renewals_due_week), _n(pay.renewals_failed),
            NA if pay.churned is None else str(len(pay.churned)),
        )  # fmt: skip
    console.print(payments)

    backend = stats.backend or "none"
    title = f"Per tenant (runtime: {backend}" + (
        f" — {stats.backend_error})" if stats.backend_error else ")"
    )
    per = Table(title=title, title_justify="left")
    for col, justify in (
        ("tenant", "left"),
        ("business", "left"),
        ("plan", "left"),
        ("status", "left"),
        ("today", "right"),
        ("week", "right"),
        ("leads", "right"),
        ("customers", "right"),
        ("runtime", "left"),
        ("memory", "right"),
        ("redis keys", "right"),
        ("redis mem", "right"),
    ):
        per.add_column(col, justify=justify)  # type: ignore[arg-type]
    for t in stats.tenants:
        per.add_row(
            t.tenant_id,
            t.business_name[:30],
            t.plan,
            t.status,
            _n(t.bookings_today),
            _n(t.bookings_week),
            _n(t.leads),
            _n(t.customers),
            _n(t.runtime),
            _mib(t.memory_bytes),
            _n(t.redis_keys),
            human_bytes(t.redis_bytes),
        )
    console.print(per)
    if staff:
        render_staff(stats, console)
    if stats.redis_error:
        console.print(f"redis keys: n/a ({stats.redis_error})")
    for note in stats.notes:
        console.print(f"note: {note}")
    console.print(f"collected in {stats.seconds:.2f} s")


def render_staff(stats: FleetStats, console: Console) -> None:
    """Bookings per staff member of every tenant (not cancelled), today and this week."""
    table = Table(title="Bookings per staff member", title_justify="left")
    for col, justify in (("tenant", "left"), ("staff member", "left"), ("today", "right"),
                         ("week", "right")):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for t in stats.tenants:
        if t.staff is None:
            table.add_row(t.tenant_id, NA, _n(t.bookings_today), _n(t.bookings_week))
            continue
        for member in t.staff:
            # An admin of the tenant typed the name: printed as text, never as rich markup.
            name = escape(member.name[:30]) + ("" if member.active else " (inactive)")
            table.add_row(t.tenant_id, name, str(member.today), str(member.week))
    console.print(table)


# ---------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> int:
    settings = load_settings(PostgresSettings)
    backend: DeployBackend | None = None
    backend_error: str | None = "runtime not asked (--no-runtime)"
    if not args.no_runtime:
        backend, backend_error = backend_from_settings()
    redis: Redis | None = None
    redis_error: str | None = "Redis not asked (--no-redis)"
    if not args.no_redis:
        url = load_settings(RedisSettings).redis_url.get_secret_value()
        redis = redis_client(url)  # a single Redis or, with redis+cluster://, every node
    pool = await create_pool(
        settings.database_url.get_secret_value(), max_size=args.concurrency + 1, attempts=3
    )
    others, _ = await server_pools(pool)
    try:
        stats = await collect_stats(
            pool,
            backend,
            timezone=args.timezone,
            concurrency=args.concurrency,
            backend_error=backend_error,
            redis=redis,
            redis_error=redis_error,
            staff=args.staff,
            server_pools=others,
        )
    finally:
        await pool.close()
        for other in others.values():
            await other.close()
        if redis is not None:
            await redis.aclose()
        if backend is not None:
            await backend.close()
    if args.json:
        print(json.dumps(stats.to_json(), ensure_ascii=False, indent=2))
    else:
        console = Console(width=args.width)
        if args.width is None and not console.is_terminal:
            console = Console(width=160)  # piped: wide enough for the per-tenant table
        render(stats, console, staff=args.staff)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.stats", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--no-runtime", action="store_true", help="skip the deploy backend")
    parser.add_argument("--no-redis", action="store_true", help="skip Redis keys per tenant")
    parser.add_argument(
        "--staff", action="store_true", help="also bookings per staff member (today, this week)"
    )
    parser.add_argument(
        "--timezone", default=DEFAULT_TIMEZONE, help="time zone of 'this month' (payments)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="tenant queries at once")
    parser.add_argument("--width", type=int, default=None, help="table width (default: terminal)")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
