"""`make stats` against a seeded fleet: every number of the table is asserted."""

from __future__ import annotations

import io
import json
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
from rich.console import Console

from database.identifiers import quote_ident
from database.pool import create_pool
from database.subscription_figures import subscription_figures
from master_bot.deploy.base import DeployError, RuntimeState, RuntimeStatus
from master_bot.deploy.memory import MemoryBackend
from master_bot.operator.stats import FleetStats as OperatorFleetStats
from master_bot.operator.text import stats as operator_stats
from scripts.stats import build_chunk_query, collect_stats, day_and_week, month_start, render
from tests.ops.conftest import Fleet, add_order, run_cli, seed_rows

MSK = ZoneInfo("Europe/Moscow")
# Wednesday 2031-05-14 12:00 in Moscow: "today" is Wed, "this week" Mon 12 .. Sun 18 May.
NOW = datetime(2031, 5, 14, 12, 0, tzinfo=MSK).astimezone(UTC)


def at(day: int, hour: int, tz: ZoneInfo = MSK) -> datetime:
    return datetime(2031, 5, day, hour, 0, tzinfo=tz)


class MemoryReportingBackend(MemoryBackend):
    """Like DockerBackend: list() has no memory figure, status() has one."""

    async def status(self, tenant_id: str) -> RuntimeStatus:
        status = await super().status(tenant_id)
        if status.state is RuntimeState.RUNNING:
            return RuntimeStatus(tenant_id, status.state, memory_bytes=180 * 2**20)
        return status


class DownBackend(MemoryBackend):
    name = "docker"

    async def list(self) -> dict[str, RuntimeStatus]:
        raise DeployError("list botfleet containers: cannot reach the Docker Engine")


def test_day_and_week_bounds_follow_the_tenant_time_zone() -> None:
    d0, d1, w0, w1 = day_and_week(NOW, MSK)
    assert (d0, d1) == (at(14, 0).astimezone(UTC), at(15, 0).astimezone(UTC))
    assert (w0, w1) == (at(12, 0).astimezone(UTC), at(19, 0).astimezone(UTC))
    # 23:30 UTC on the 14th is already the 15th in Vladivostok.
    vlad = ZoneInfo("Asia/Vladivostok")
    d0, _, _, _ = day_and_week(datetime(2031, 5, 14, 23, 30, tzinfo=UTC), vlad)
    assert d0 == datetime(2031, 5, 15, tzinfo=vlad)


def test_chunk_query_quotes_identifiers_and_passes_values_as_parameters() -> None:
    from scripts.stats import TenantStats

    tenants = [
        TenantStats("client_001", "a", "basic", "active", None, "Europe/Moscow"),
        TenantStats("client_002", "b", "basic", "active", None, "Asia/Vladivostok"),
        TenantStats("client_003", "c", "basic", "active", None, "Europe/Moscow"),
    ]
    tables = {"client_001": {"bookings", "customers"}, "client_002": {"bookings", "leads"}}
    bounds = {
        "Europe/Moscow": day_and_week(NOW, MSK),
        "Asia/Vladivostok": day_and_week(NOW, ZoneInfo("Asia/Vladivostok")),
    }
    sql, params = build_chunk_query(tenants, tables, bounds)
    assert '"client_001".bookings' in sql and '"client_002".leads' in sql
    assert '"client_001".leads' not in sql and '"client_003"' not in sql  # missing -> NULL
    assert len(params) == 8  # one set of four bounds per time zone, shared by its tenants
    assert "$8" in sql and "$9" not in sql


async def test_stats_of_a_seeded_fleet(fleet: Fleet) -> None:
    days = timedelta(days=1)
    a = await fleet.add_tenant(plan="basic", expires_in=3 * days, now=NOW, name="Салон А")
    b = await fleet.add_tenant(plan="pro", expires_in=30 * days, now=NOW)
    c = await fleet.add_tenant(status="suspended", plan="basic", expires_in=-5 * days, now=NOW)
    d = await fleet.add_tenant(status="deleted", plan="pro", schema=False, now=NOW)
    e = await fleet.add_tenant(status="provisioning", plan="pro", schema=False, expires_in=None)
    v = await fleet.add_tenant(plan="basic", timezone="Asia/Vladivostok", expires_in=None)
    conn = await fleet.connect()
    try:
        await seed_rows(
            conn,
            a,
            customers=3,
            bookings=[
                (at(14, 10), "confirmed"),  # today
                (at(14, 15), "done"),  # today
                (at(14, 17), "cancelled"),  # today, cancelled: not counted
                (at(12, 9), "no_show"),  # Monday: this week
                (at(18, 20), "confirmed"),  # Sunday: this week
                (at(19, 10), "confirmed"),  # next Monday: no
                (at(11, 23), "confirmed"),  # last Sunday: no
            ],
        )
        # Staff (issue 14): Ольга takes two of a's bookings this week (and a cancelled one);
        # Борис, no longer working, one; the first staff member keeps the rest.
        sa = quote_ident(a)
        olga = await conn.fetchval(f"INSERT INTO {sa}.staff (name) VALUES ('Ольга') RETURNING id")
        boris = await conn.fetchval(
            f"INSERT INTO {sa}.staff (name, active) VALUES ('Борис', false) RETURNING id"
        )
        await conn.execute(f"INSERT INTO {sa}.staff (name, active) VALUES ('Вера', false)")
        await conn.execute(f"UPDATE {sa}.staff SET name = '[bold]Ольга[/bold]' WHERE id = $1", olga)
        moves = [(olga, at(14, 10)), (olga, at(14, 17)), (olga, at(18, 20)), (boris, at(12, 9))]
        for staff_id, starts in moves:
            await conn.execute(
                f"UPDATE {sa}.bookings SET staff_id = $1 WHERE starts_at = $2", staff_id, starts
            )
        await seed_rows(conn, b, customers=5, bookings=[(at(13, 10), "confirmed")])
        await seed_rows(conn, c, customers=1, bookings=[])
        vlad = ZoneInfo("Asia/Vladivostok")
        # NOW is 19:00 on the 14th in Vladivostok: today there is the 14th there.
        await seed_rows(
            conn,
            v,
            customers=2,
            bookings=[(at(14, 8, vlad), "confirmed"), (at(15, 1, vlad), "done")],
        )
        # Leads: b has a leads table with 2 rows, a has none (older tenant migrations).
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(a)}.leads CASCADE")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quote_ident(b)}.leads"
            " (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, name text NOT NULL,"
            " phone text NOT NULL)"
        )
        await conn.execute(
            f"INSERT INTO {quote_ident(b)}.leads (customer_id, name, phone)"
            " VALUES (1, 'x', '1'), (2, 'y', '2')"
        )
        has_orders = await conn.fetchval("SELECT to_regclass('control.sales_orders') IS NOT NULL")
        if has_orders:
            await add_order(conn, status="paid", amount="990.00", paid_at=at(3, 12))
            await add_order(conn, status="paid", amount="2490.50", paid_at=at(14, 9))
            await add_order(conn, status="refunded", amount="990.00", paid_at=at(10, 9))
            await add_order(
                conn, status="paid", amount="5000.00", paid_at=at(1, 0) - timedelta(hours=1)
            )
            await add_order(conn, status="pending", amount="990.00", paid_at=None)
    finally:
        await conn.close()

    backend = MemoryReportingBackend()
    backend.states[a] = RuntimeState.RUNNING
    backend.states[b] = RuntimeState.CRASHED
    backend.states[c] = RuntimeState.STOPPED
    pool = await create_pool(fleet.dsn, max_size=5)
    try:
        stats = await collect_stats(pool, backend, now=NOW, chunk=2, concurrency=2, staff=True)
        down = await collect_stats(pool, DownBackend(), now=NOW)
    finally:
        await pool.close()

    by_id = {t.tenant_id: t for t in stats.tenants}
    assert set(by_id) == {a, b, c, e, v}  # deleted tenants are not listed
    assert d not in by_id
    assert stats.by_status == {"active": 3, "provisioning": 1, "suspended": 1}
    assert stats.by_plan == {"basic": 3, "pro": 2}
    assert stats.by_status_plan["active"] == {"basic": 2, "pro": 1}
    assert [x["tenant_id"] for x in stats.expiring] == [a]
    assert stats.expiring[0]["days_left"] == 3.0

    ta, tb, tc, te, tv = (by_id[x] for x in (a, b, c, e, v))
    assert (ta.bookings_today, ta.bookings_week, ta.customers, ta.leads) == (2, 4, 3, None)
    assert (tb.bookings_today, tb.bookings_week, tb.customers, tb.leads) == (0, 1, 5, 2)
    assert (tc.bookings_today, tc.bookings_week, tc.customers) == (0, 0, 1)
    assert (tv.bookings_today, tv.bookings_week) == (1, 2)
    assert (te.bookings_today, te.customers, te.leads) == (None, None, None)  # no schema yet
    assert [(m.name, m.active, m.today, m.week) for m in ta.staff or []] == [
        ("Специалист", True, 1, 1), ("[bold]Ольга[/bold]", True, 1, 2), ("Борис", False, 0, 1),
    ]  # fmt: skip
    assert [(m.name, m.today, m.week) for m in tb.staff or []] == [("Специалист", 0, 1)]
    assert te.staff is None

    assert (ta.runtime, ta.memory_bytes) == ("running", 180 * 2**20)
    assert (tb.runtime, tb.memory_bytes) == ("crashed", None)
    assert (tc.runtime, te.runtime) == ("stopped", "missing")
    assert stats.backend == "memory" and stats.backend_error is None

    if has_orders:
        assert stats.payments is not None
        assert (stats.payments.payments, stats.payments.refunds) == (3, 1)
        assert stats.payments.revenue == Decimal("3480.50")
    else:
        assert stats.payments is None

    # A backend that does not answer: every runtime is n/a, the rest is there.
    assert down.backend_error and "Docker Engine" in down.backend_error
    assert all(t.runtime is None for t in down.tenants)
    assert {t.tenant_id: t.customers for t in down.tenants}[b] == 5
    assert all(t.staff is None for t in down.tenants)  # per staff member only when asked

    out = io.StringIO()
    render(stats, Console(file=out, width=200))
    text = out.getvalue()
    assert "Expiring within 7 days" in text and "Салон А" in text
    assert "180 MiB" in text and "n/a" in text
    if has_orders:
        assert "3,480.50 RUB" in text
    assert "Bookings per staff member" not in text
    out = io.StringIO()
    render(stats, Console(file=out, width=200), staff=True)
    per_staff = out.getvalue().split("Bookings per staff member")[1]
    assert "[bold]Ольга[/bold]" in per_staff  # a name is text, not rich markup
    assert "Борис (inactive)" in per_staff and "Вера" not in per_staff
    [ja] = [t for t in stats.to_json()["tenants"] if t["tenant_id"] == a]
    assert ja["staff"][1] == {
        "name": "[bold]Ольга[/bold]", "active": True, "today": 1, "week": 2,
    }  # fmt: skip
    json.dumps(stats.to_json())  # serialisable


async def test_cli_json(fleet: Fleet) -> None:
    a = await fleet.add_tenant(plan="basic")
    conn = await fleet.connect()
    try:
        await seed_rows(conn, a, customers=4)
    finally:
        await conn.close()
    env = {"DATABASE_URL": fleet.dsn}
    result = await run_cli("scripts.stats", "--json", "--no-runtime", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["by_status"] == {"active": 1}
    [tenant] = data["tenants"]
    assert (tenant["tenant_id"], tenant["customers"], tenant["runtime"]) == (a, 4, None)
    assert data["backend_error"] == "runtime not asked (--no-runtime)"
    no_redis = await run_cli("scripts.stats", "--json", "--no-runtime", "--no-redis", env=env)
    assert json.loads(no_redis.stdout)["redis_error"] == "Redis not asked (--no-redis)"
    table = await run_cli("scripts.stats", "--no-runtime", "--staff", "--width", "160", env=env)
    assert table.returncode == 0, table.stderr
    assert a in table.stdout and "Per tenant" in table.stdout
    assert "Bookings per staff member" in table.stdout and "Специалист" in table.stdout


async def test_redis_keys_and_memory_per_tenant(fleet: Fleet, redis_url: str) -> None:
    from redis.asyncio import Redis

    from tests.support import free_port

    a = await fleet.add_tenant(plan="basic", schema=False)
    b = await fleet.add_tenant(plan="basic", schema=False)
    redis = Redis.from_url(redis_url)
    n = 57
    try:
        # Memory is sampled (a few keys per tenant, scaled): every key here weighs 1 kB or more.
        await redis.mset({f"{a}:fsm:1:{i}:{i}:default:data": "d" * 1000 for i in range(n)})
        await redis.set(f"{a}:ai:history", "x" * 50_000)
        pool = await create_pool(fleet.dsn, max_size=3)
        down = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
        try:
            stats = await collect_stats(pool, None, redis=redis)
            unreachable = await collect_stats(pool, None, redis=down)
        finally:
            await pool.close()
            await down.aclose()
        by_id = {t.tenant_id: t for t in stats.tenants}
        assert (by_id[a].redis_keys, by_id[b].redis_keys) == (n + 1, 0)
        assert (by_id[a].redis_bytes or 0) > (n + 1) * 1000
        assert by_id[b].redis_bytes == 0 and stats.redis_error is None
        out = io.StringIO()
        render(stats, Console(file=out, width=250))
        row = next(line for line in out.getvalue().splitlines() if a in line)
        assert f" {n + 1} " in row and "KiB" in row
        # Redis down: n/a and the reason; the rest of the stats is there.
        assert unreachable.redis_error and unreachable.redis_error.startswith("redis: ")
        assert all(t.redis_keys is None for t in unreachable.tenants)
        assert {t.tenant_id for t in unreachable.tenants} >= {a, b}
        env = {"DATABASE_URL": fleet.dsn, "REDIS_URL": redis_url}
        result = await run_cli("scripts.stats", "--json", "--no-runtime", env=env)
        assert result.returncode == 0, result.stderr
        tenants = {t["tenant_id"]: t for t in json.loads(result.stdout)["tenants"]}
        assert (tenants[a]["redis_keys"], tenants[b]["redis_keys"]) == (n + 1, 0)
    finally:
        async for key in redis.scan_iter(match=f"{a}:*"):
            await redis.unlink(key)
        await redis.aclose()


async def _subscription(
    conn: asyncpg.Connection,
    tenant_id: str,
    *,
    amount: str,
    days: int,
    auto_renew: bool,
    next_charge: datetime | None,
) -> None:
    await conn.execute(
        "INSERT INTO control.sales_subscriptions (tenant_id, user_id, email, plan, period_days,"
        " amount, auto_renew, method_enc, next_charge_at)"
        " VALUES ($1, 1, 'a@b.ru', 'x', $2, $3, $4, CASE WHEN $4 THEN 'sealed' END, $5)",
        tenant_id,
        days,
        Decimal(amount),
        auto_renew,
        next_charge,
    )


async def _renewal(
    conn: asyncpg.Connection, tenant_id: str, *, status: str, reason: str | None, at: datetime
) -> None:
    order_id = "ord_" + secrets.token_hex(12)
    await conn.execute(
        "INSERT INTO control.sales_orders (order_id, kind, status, user_id, plan, period_days,"
        " amount, email, idempotence_key, tenant_id, cancel_reason, canceled_at, created_at)"
        " VALUES ($1, 'renewal', $2, 1, 'x', 30, 990, 'a@b.ru', $1, $3, $4,"
        " CASE WHEN $2 = 'canceled' THEN $5::timestamptz END, $5)",
        order_id,
        status,
        tenant_id,
        reason,
        at,
    )


async def test_mrr_renewals_and_churn_of_a_seeded_fleet(fleet: Fleet) -> None:
    """Issue 17: MRR, renewals due this week, failed renewals and churn this month, in make
    stats (table and JSON) and the operators' /stats, from the rows below."""
    days = timedelta(days=1)
    monthly = await fleet.add_tenant(plan="start", expires_in=20 * days, now=NOW, schema=False)
    yearly = await fleet.add_tenant(plan="year", expires_in=200 * days, now=NOW, schema=False)
    due = await fleet.add_tenant(plan="biz", expires_in=5 * days, now=NOW, schema=False)
    stopped = await fleet.add_tenant(
        status="stopped", plan="start", expires_in=9 * days, now=NOW, schema=False
    )
    # Ended this month (May 2031) and not renewed: churn, not MRR.
    ended = await fleet.add_tenant(
        status="suspended", plan="start", expires_in=-10 * days, now=NOW, schema=False
    )
    ended_deleted = await fleet.add_tenant(
        status="deleted", plan="start", expires_in=-2 * days, now=NOW, schema=False
    )
    # Ended last month: neither churn this month nor MRR.
    april = await fleet.add_tenant(
        status="suspended", plan="start", expires_in=-20 * days, now=NOW, schema=False
    )
    # Paid up but deleted: no MRR.
    gone = await fleet.add_tenant(
        status="deleted", plan="biz", expires_in=9 * days, now=NOW, schema=False
    )
    conn = await fleet.connect()
    try:
        await _subscription(
            conn, monthly, amount="990.00", days=30, auto_renew=True, next_charge=NOW + 17 * days
        )
        await _subscription(
            conn, yearly, amount="24900.00", days=365, auto_renew=False, next_charge=None
        )
        await _subscription(
            conn, due, amount="2490.00", days=30, auto_renew=True, next_charge=NOW + 2 * days
        )
        await _subscription(
            conn, stopped, amount="990.00", days=30, auto_renew=True, next_charge=NOW - 1 * days
        )  # overdue: due
        await _subscription(
            conn, ended, amount="990.00", days=30, auto_renew=False, next_charge=None
        )
        await _subscription(
            conn, gone, amount="2490.00", days=30, auto_renew=False, next_charge=None
        )
        await _renewal(
            conn, ended, status="canceled", reason="insufficient_funds", at=NOW - 13 * days
        )  # May 1st
        await _renewal(conn, due, status="canceled", reason="card_expired", at=NOW - 1 * days)
        await _renewal(conn, due, status="canceled", reason="opted_out", at=NOW - 1 * days)
        await _renewal(
            conn, april, status="canceled", reason="insufficient_funds", at=NOW - 20 * days
        )  # April
        await _renewal(conn, monthly, status="paid", reason=None, at=NOW - 3 * days)
        figures = await subscription_figures(conn, NOW, month_start(NOW, MSK))
    finally:
        await conn.close()

    # 990 + 24900 * 30 / 365 (2046.58) + 2490 + 990 (stopped, still paid up)
    mrr = Decimal("990.00") + Decimal("2046.58") + Decimal("2490.00") + Decimal("990.00")
    assert figures is not None
    assert (figures.mrr, figures.paying) == (mrr, 4)
    assert figures.renewals_due_week == 2  # `due` in 2 days, `stopped` overdue; not `monthly`
    assert figures.renewals_failed == 2  # May's two declines; the opt-out and April's are not
    assert set(figures.churned) == {ended, ended_deleted}

    pool = await create_pool(fleet.dsn, max_size=2)
    try:
        stats = await collect_stats(pool, None, now=NOW)
    finally:
        await pool.close()
    pay = stats.payments
    assert pay is not None
    assert (pay.mrr, pay.paying, pay.renewals_due_week, pay.renewals_failed) == (mrr, 4, 2, 2)
    assert set(pay.churned or []) == {ended, ended_deleted}
    assert stats.to_json()["payments"]["mrr"] == "6516.58"
    out = io.StringIO()
    render(stats, Console(file=out, width=220))
    assert "6,516.58 RUB" in out.getvalue() and "churn" in out.getvalue()

    text = operator_stats(
        OperatorFleetStats(NOW, {}, {}, {}, subscriptions=figures)
    )  # the operators' /stats
    assert "MRR: 6 516,58 RUB (оплаченных подписок: 4)" in text
    assert "Автопродлений в ближайшие 7 дн.: 2" in text
    assert "Неудачных автопродлений за май 2031: 2" in text
    assert "Отток за май 2031: 2 — " in text and ended in text and ended_deleted in text
