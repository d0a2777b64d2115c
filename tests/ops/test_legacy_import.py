"""The SQLite -> PostgreSQL import: a generated legacy database with malformed rows, a dry run,
the import, and a re-run that adds nothing."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from client_bot import booking_service
from client_bot.clock import ManualClock
from client_bot.context import TenantContext
from client_bot.i18n import build_i18n
from client_bot.store import Store
from core.settings import ClientBotSettings
from database.identifiers import quote_ident
from database.pool import create_pool
from scripts.legacy_import import (
    Malformed,
    counts,
    import_file,
    parse_booking,
    parse_service,
)
from tests.ops.conftest import Fleet, run_cli

MSK = ZoneInfo("Europe/Moscow")


def make_legacy(path: Path, *, bookings: int = 0) -> None:
    """A legacy bot's database: the usual columns, some of them under their aliases."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT, description TEXT,
                               price TEXT, duration INTEGER, is_active INTEGER);
        CREATE TABLE users (user_id INTEGER, first_name TEXT, username TEXT, phone TEXT,
                            created_at TEXT);
        CREATE TABLE admins (user_id INTEGER);
        CREATE TABLE bookings (id INTEGER PRIMARY KEY, user_id INTEGER, service_id INTEGER,
                               date TEXT, time TEXT, starts_at TEXT, status TEXT, name TEXT,
                               phone TEXT);
        """
    )
    db.executemany(
        "INSERT INTO services VALUES (?, ?, ?, ?, ?, ?)",
        [
            (1, "Стрижка", "мужская", "1 500,00", 60, 1),
            (2, "Маникюр", None, 990.5, 30, 1),
            (3, "Старая услуга", "", "700", 45, 0),  # hidden
            (4, "Без цены", "", "abc", 30, 1),  # malformed: price
            (5, "Миг", "", "100", 0, 1),  # malformed: duration
            (6, "", "", "100", 30, 1),  # malformed: no name
        ],
    )
    db.executemany(
        "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
        [
            (1001, "Анна", "@anna", "+79001112233", "2023-01-05 10:00:00"),
            (1002, "Борис", "boris", None, None),
            (1003, "Вера", None, "+79004445566", "2023-02-01T09:00:00+03:00"),
            ("abc", "Сломанный", None, None, None),  # malformed: telegram id
            (1002, "Борис дубль", None, None, None),  # duplicate
            (1004, "Глеб", None, None, "not a date"),  # malformed: created_at
        ],
    )
    db.executemany("INSERT INTO admins VALUES (?)", [(1001,), (None,)])
    rows = [
        (1, 1001, 1, "2024-03-01", "10:00", None, "confirmed", "Анна", "+79001112233"),
        (2, 1002, 2, None, None, "2024-03-01T12:00:00", "completed", "Борис", ""),
        (3, 1003, 1, "01.03.2024", "10:30", None, "active", "Вера", "+7900"),  # overlaps #1
        (4, 1003, 1, "2024-03-01", "10:30", None, "canceled", "Вера", "+7900"),  # cancelled: ok
        (5, 1001, 4, "2024-03-02", "10:00", None, "confirmed", "Анна", ""),  # service skipped
        (6, 1001, 9, "2024-03-02", "11:00", None, "confirmed", "Анна", ""),  # unknown service
        (7, 1001, 1, "2024-13-45", "10:00", None, "confirmed", "Анна", ""),  # bad date
        (8, 1001, 1, "2024-03-03", "10:00", None, "maybe", "Анна", ""),  # unknown status
        (9, 5555, 2, "2024-03-04", "15:00", None, "no-show", "Гость", "+7999"),  # new customer
        (10, 1001, 1, None, None, None, "confirmed", "Анна", ""),  # no start
    ]
    base = datetime(2025, 1, 1, 9, 0)
    rows += [
        (100 + i, 1001, 2, None, None, (base + timedelta(hours=i)).isoformat(), "done", "Анна", "")
        for i in range(bookings)
    ]
    db.executemany("INSERT INTO bookings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


async def table_counts(fleet: Fleet, tenant_id: str) -> dict[str, int]:
    conn = await fleet.connect()
    try:
        s = quote_ident(tenant_id)
        return {
            t: await conn.fetchval(f"SELECT count(*) FROM {s}.{t}")
            for t in ("services", "customers", "admins", "bookings")
        }
    finally:
        await conn.close()


def test_row_parsers_explain_what_is_wrong() -> None:
    ok = parse_service({"id": 1, "name": " A ", "price": "1 234,5", "duration": "60"})
    assert (ok.name, ok.price, ok.duration_min, ok.hidden) == ("A", Decimal("1234.50"), 60, False)
    with pytest.raises(Malformed, match="price 'x' is not a number"):
        parse_service({"id": 1, "name": "A", "price": "x", "duration": 60})
    with pytest.raises(Malformed, match=r"out of range 5\.\.1440"):
        parse_service({"id": 1, "name": "A", "price": 1, "duration": 2000})
    b = parse_booking(
        {"id": 1, "user_id": 7, "service_id": 1, "date": "2024-03-01", "time": "10:00"}, MSK
    )
    assert b.starts_at == datetime(2024, 3, 1, 10, tzinfo=MSK) and b.status == "confirmed"
    utc = parse_booking(
        {"id": 1, "user_id": 7, "service_id": 1, "starts_at": "2024-03-01T07:00:00Z"}, MSK
    )
    assert utc.starts_at == datetime(2024, 3, 1, 7, tzinfo=UTC)
    with pytest.raises(Malformed, match="ends before it starts"):
        parse_booking(
            {
                "id": 1,
                "user_id": 7,
                "service_id": 1,
                "starts_at": "2024-03-01 10:00",
                "ends_at": "2024-03-01 09:00",
            },
            MSK,
        )


async def test_import_dry_run_then_import_then_rerun(fleet: Fleet, tmp_path: Path) -> None:
    tenant = await fleet.add_tenant()
    legacy = tmp_path / "salon.db"
    make_legacy(legacy)
    empty = await table_counts(fleet, tenant)
    conn = await fleet.connect()
    try:
        dry = await import_file(conn, tenant, legacy, dry_run=True)
        assert dry.error is None
        assert await table_counts(fleet, tenant) == empty  # rolled back
        assert await conn.fetchval("SELECT count(*) FROM control.legacy_import_map") == 0

        first = await import_file(conn, tenant, legacy)
        assert counts(first) == counts(dry)  # the dry run's numbers are exact
        c = counts(first)
        assert c["services"] == {"read": 6, "imported": 3, "existing": 0, "skipped": 3}
        assert c["users"] == {"read": 6, "imported": 3, "existing": 0, "skipped": 3}
        assert c["admins"] == {"read": 2, "imported": 1, "existing": 0, "skipped": 1}
        assert c["bookings"] == {"read": 10, "imported": 4, "existing": 0, "skipped": 6}
        assert first.customers_from_bookings == 1
        reasons = "\n".join(first.tables["bookings"].skipped)
        for expected in (
            "id 3): overlaps another booking",
            "id 5): service 4 was not imported",
            "id 6): service 9 was not imported",
            "id 7): date '2024-13-45' is not a date",
            "id 8): unknown status 'maybe'",
            "id 10): no start time",
        ):
            assert expected in reasons
        assert "price 'abc' is not a number" in "\n".join(first.tables["services"].skipped)
        assert "appears twice" in "\n".join(first.tables["users"].skipped)

        s = quote_ident(tenant)
        services = await conn.fetch(
            f"SELECT name, price, duration_min, hidden FROM {s}.services ORDER BY position"
        )
        assert [(r[0], r[1], r[2], r[3]) for r in services] == [
            ("Стрижка", Decimal("1500.00"), 60, False),
            ("Маникюр", Decimal("990.50"), 30, False),
            ("Старая услуга", Decimal("700.00"), 45, True),
        ]
        anna = await conn.fetchrow(f"SELECT * FROM {s}.customers WHERE telegram_id = 1001")
        assert anna is not None and anna["username"] == "anna"
        assert anna["created_at"] == datetime(2023, 1, 5, 10, tzinfo=MSK)
        guest = await conn.fetchrow(f"SELECT * FROM {s}.customers WHERE telegram_id = 5555")
        assert guest is not None and (guest["first_name"], guest["phone"]) == ("Гость", "+7999")
        bookings = await conn.fetch(
            f"SELECT customer_id, starts_at, ends_at, status, source FROM {s}.bookings"
            " ORDER BY starts_at, status"
        )
        assert [(r[0], r[1], r[3]) for r in bookings] == [
            (1001, datetime(2024, 3, 1, 10, tzinfo=MSK), "confirmed"),
            (1003, datetime(2024, 3, 1, 10, 30, tzinfo=MSK), "cancelled"),
            (1002, datetime(2024, 3, 1, 12, tzinfo=MSK), "done"),
            (5555, datetime(2024, 3, 4, 15, tzinfo=MSK), "no_show"),
        ]
        assert bookings[0][2] - bookings[0][1] == timedelta(minutes=60)  # the service's duration
        assert {r[4] for r in bookings} == {"legacy"}
        after_first = await table_counts(fleet, tenant)

        # A re-run imports nothing twice; what is there is counted as such.
        second = await import_file(conn, tenant, legacy)
        c2 = counts(second)
        assert c2["services"] == {"read": 6, "imported": 0, "existing": 3, "skipped": 3}
        assert c2["users"]["imported"] == 0 and c2["users"]["existing"] == 3
        assert c2["admins"] == {"read": 2, "imported": 0, "existing": 1, "skipped": 1}
        assert c2["bookings"]["imported"] == 0 and c2["bookings"]["existing"] == 4
        assert await table_counts(fleet, tenant) == after_first
        runs = await conn.fetchval(
            "SELECT count(*) FROM control.legacy_import_runs WHERE tenant_id = $1", tenant
        )
        assert runs == 2  # dry runs leave no trace
    finally:
        await conn.close()


def times(starts: list[datetime]) -> list[str]:
    return [s.astimezone(MSK).strftime("%H:%M") for s in starts]


def half_hours(first: str, last: str) -> list[str]:
    """Every half hour from `first` to `last` (HH:MM, both included)."""
    at, end = (datetime.strptime(x, "%H:%M") for x in (first, last))
    found = []
    while at <= end:
        found.append(at.strftime("%H:%M"))
        at += timedelta(minutes=30)
    return found


async def test_legacy_bookings_land_on_the_first_staff_member(fleet: Fleet, tmp_path: Path) -> None:
    """Issue 14, item 7: a legacy bot was one resource; imported, its bookings belong to the
    business's first staff member, who works the business's hours and performs every imported
    service, so customers get free times around them. Checked as the tenant's own role, through
    the bot's store and booking service."""
    tenant = await fleet.add_tenant()
    legacy = tmp_path / "salon.db"
    make_legacy(legacy)
    pool = await create_pool(fleet.tenants[tenant].dsn, min_size=0, max_size=2)
    try:
        store = Store(pool)
        # The business as its owner left it: open 10:00-20:00 every day, and its one staff
        # member (tenant migration 0007's) listing only a service of the owner's, so that the
        # import has to add the imported ones to the list.
        await store.set_week_hours([(wd, [(time(10), time(20))]) for wd in range(7)])
        [master] = await store.staff()
        own = await store.add_service("Окрашивание", Decimal("3000"), 120)
        await store.update_staff(master.id, "all_services", False)
        await store.set_staff_performs(master.id, own.id, True)

        conn = await fleet.connect()
        try:
            first = await import_file(conn, tenant, legacy)
            second = await import_file(conn, tenant, legacy)
            mapped = await conn.fetch(
                "SELECT source, target_id FROM control.legacy_import_map WHERE tenant_id = $1",
                tenant,
            )
        finally:
            await conn.close()
        assert first.error is None and second.error is None
        assert (first.staff_id, first.staff_created, first.staff_services) == (master.id, False, 3)
        assert counts(first)["bookings"]["imported"] == 4
        imported = {r["target_id"] for r in mapped if r["source"] == "bookings"}
        services = {r["target_id"] for r in mapped if r["source"] == "services"}
        assert len(imported) == 4 and len(services) == 3

        # Every imported booking is kept, with its staff member (the cancelled one too).
        rows = await pool.fetch("SELECT id, staff_id, session_id FROM bookings")
        assert {r["id"] for r in rows} == imported
        assert {(r["staff_id"], r["session_id"]) for r in rows} == {(master.id, None)}
        day = datetime(2024, 3, 1, tzinfo=MSK)
        theirs = await store.staff_bookings_between(master.id, day, day + timedelta(days=7))
        assert [(times([b.starts_at])[0], b.staff_name) for b in theirs] == [
            ("10:00", master.name),
            ("12:00", master.name),
            ("15:00", master.name),
        ]

        # Their hours are the business's, and they perform every imported service (the owner's
        # own service still on the list, nobody else's services added).
        week = (await store.staff_weeks([master.id]))[master.id]
        assert not week.own_hours and not week.hours
        for service_id in services:
            assert [o.staff.id for o in await store.offers(service_id)] == [master.id]
        assert await store.staff_service_ids(master.id) == services | {own.id}

        # A customer asks for free times of an imported service, with that staff member and
        # with anyone: the business's hours minus the imported bookings (10:00-11:00 and
        # 12:00-12:30 on 1 March; the cancelled 10:30 blocks nothing), and a free day in full.
        settings = ClientBotSettings(
            tenant_id=tenant,
            bot_token="123456:legacy-import-test-" + "x" * 16,
            database_url=fleet.tenants[tenant].dsn,
            redis_url="redis://127.0.0.1:9/0",
            _env_file=None,
        )
        ctx = TenantContext(
            settings, store, ManualClock(datetime(2024, 2, 29, 9, tzinfo=MSK)), build_i18n()
        )
        haircut = next(s for s in await ctx.visible_services() if s.name == "Стрижка")
        for who in (master.id, None):
            on_first = await booking_service.free_times(ctx, haircut, who, day.date())
            assert times(on_first) == ["11:00", *half_hours("12:30", "19:00")]
            on_second = await booking_service.free_times(ctx, haircut, who, date(2024, 3, 2))
            assert times(on_second) == half_hours("10:00", "19:00")
            assert date(2024, 3, 1) in await booking_service.free_days(ctx, haircut, who)

        # A re-run imported nothing twice: no booking, no staff member, no list entry.
        c2 = counts(second)
        assert c2["bookings"]["imported"] == 0 and c2["bookings"]["existing"] == 4
        assert c2["services"]["imported"] == 0
        assert (second.staff_id, second.staff_created, second.staff_services) == (
            master.id,
            False,
            0,
        )
        assert [s.id for s in await store.staff(include_inactive=True)] == [master.id]
        assert await pool.fetchval("SELECT count(*) FROM bookings") == 4
        assert await store.staff_service_ids(master.id) == services | {own.id}

        # A business without an active staff member gets one, on the business's hours and
        # performing every service, for the bookings of a newer file.
        await store.update_staff(master.id, "active", False)
        newer = tmp_path / "newer.db"
        make_legacy(newer, bookings=2)
        db = sqlite3.connect(newer)
        db.execute("DELETE FROM bookings WHERE id < 100")  # only the two new ones
        db.commit()
        db.close()
        conn = await fleet.connect()
        try:
            third = await import_file(conn, tenant, newer)
        finally:
            await conn.close()
        assert third.error is None and third.staff_created and third.staff_id != master.id
        [created] = await store.staff()
        assert (created.id, created.name, created.all_services) == (
            third.staff_id,
            "Специалист",
            True,
        )
        assert not (await store.staff_weeks([created.id]))[created.id].own_hours
        by_staff = await pool.fetch(
            "SELECT staff_id, count(*) AS n FROM bookings GROUP BY staff_id ORDER BY staff_id"
        )
        assert [(r["staff_id"], r["n"]) for r in by_staff] == [(master.id, 4), (created.id, 2)]
    finally:
        await pool.close()


async def test_broken_files_are_reported_not_fatal(fleet: Fleet, tmp_path: Path) -> None:
    tenant = await fleet.add_tenant()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    partial = tmp_path / "partial.db"
    db = sqlite3.connect(partial)
    db.execute("CREATE TABLE users (telegram_id INTEGER, first_name TEXT)")
    db.execute("INSERT INTO users VALUES (77, 'Only')")
    db.commit()
    db.close()
    odd = tmp_path / "odd.db"
    db = sqlite3.connect(odd)
    db.execute("CREATE TABLE services (id INTEGER, title TEXT)")  # no price, no duration
    db.commit()
    db.close()
    conn = await fleet.connect()
    try:
        bad = await import_file(conn, tenant, garbage)
        assert bad.error is not None and "not a SQLite database" in bad.error
        part = await import_file(conn, tenant, partial)
        assert part.error is None
        assert [t for t, r in part.tables.items() if r.missing] == [
            "services",
            "admins",
            "bookings",
        ]
        assert part.tables["users"].imported == 1
        strange = await import_file(conn, tenant, odd)
        assert strange.error is not None and "no column price, duration" in strange.error
        nobody = await import_file(conn, "client_999999999999", partial)
        assert nobody.error is not None and "has no schema" in nobody.error
    finally:
        await conn.close()


async def test_cli_many_files_json_and_exit_code(fleet: Fleet, tmp_path: Path) -> None:
    tenant = await fleet.add_tenant()
    good = tmp_path / f"{tenant}.db"
    make_legacy(good, bookings=1500)
    bad = tmp_path / "client_999999999998.db"
    bad.write_text("nope")
    env = {"DATABASE_URL": fleet.dsn}
    result = await run_cli("scripts.migrate_to_postgres", "--dir", str(tmp_path), "--json", env=env)
    assert result.returncode == 1  # one file failed
    reports = {r["tenant_id"]: r for r in json.loads(result.stdout)}
    assert reports[tenant]["error"] is None
    assert len(reports[tenant]["tables"]["bookings"]["skipped"]) == 6
    assert "has no schema" in reports["client_999999999998"]["error"]
    assert (await table_counts(fleet, tenant))["bookings"] == 1504
    text = await run_cli("scripts.migrate_to_postgres", "--tenant", tenant, str(good), env=env)
    assert text.returncode == 0, text.stderr
    assert "already there" in text.stdout and "summary: 1/1 file(s) done, 0 row(s)" in text.stdout
    assert "skipped bookings row 3 (id 3): overlaps another booking" in text.stdout
    assert "bookings go to staff member Специалист (id 1)" in text.stdout
