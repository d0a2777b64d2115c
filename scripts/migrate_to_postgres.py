"""Import legacy per-client SQLite databases into tenant schemas.

    python -m scripts.migrate_to_postgres --tenant client_001 legacy/salon.db [--dry-run]
    python -m scripts.migrate_to_postgres legacy/client_001.db legacy/client_002.sqlite
    python -m scripts.migrate_to_postgres --dir legacy/        # every <tenant_id>.db/.sqlite*

The tenant must exist (provisioned by the master: schema, role, migrations). Each file is
imported in one transaction as the platform admin, into the tenant's schema (quoted, never
anything else); `--dry-run` does all the work and rolls it back, so its counts are exact.

Expected legacy tables and columns (aliases in brackets; other columns are ignored):

    services  id, name, description?, price, duration [duration_min], position? [sort],
              hidden? | is_active? [active]
    users     telegram_id [user_id, tg_id, id], first_name? [name], username?, phone?,
              language? [lang], created_at?
    admins    telegram_id [user_id, tg_id, id]
    bookings  id, user_id [telegram_id, customer_id], service_id,
              starts_at [start_at, datetime] | date + time, ends_at? [end_at],
              status?, name? [customer_name, client_name], phone?, created_at?

How they map onto the tenant schema (database/migrations/tenant/0001, 0002):

- services -> services(name, description, price numeric(12,2), duration_min 5..1440, position,
  hidden = not is_active); the legacy id is kept in control.legacy_import_map.
- users -> customers(telegram_id, first_name, username without '@', phone, language,
  created_at); an existing customer is left as it is (the live bot's data wins).
- admins -> admins(telegram_id).
- bookings -> bookings(customer_id = the user's Telegram id, service_id = the imported service,
  starts_at/ends_at timestamptz, status, customer_name, phone, source = 'legacy'). Naive times
  are in the tenant's time zone (control.tenants.timezone, else --timezone). Without an end the
  service's duration is used. Status: confirmed/active/new/pending/booked -> confirmed,
  done/completed/finished -> done, no_show/missed -> no_show, cancelled/canceled -> cancelled.
  A booking whose customer is not in `users` creates the customer from its name and phone.

Skipped with a reason, never a crash: a value that does not parse or is out of range, a
booking of a service that was not imported, a booking overlapping another (the schema's
EXCLUDE constraint), a missing table (reported), a file that is not SQLite (reported; exit 1).
Re-runs import nothing twice: services and bookings through control.legacy_import_map,
customers and admins by Telegram id.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from core.logs import setup_logging
from core.settings import PostgresSettings, load_settings
from core.tenant_id import TENANT_ID_RE, validate_tenant_id
from database.identifiers import quote_ident
from database.locks import platform_lock
from database.roles import is_owner_role, owner_role

TABLES = ("services", "users", "admins", "bookings")
DEFAULT_TIMEZONE = "Europe/Moscow"
STATUS_MAP = {
    "confirmed": "confirmed",
    "active": "confirmed",
    "new": "confirmed",
    "pending": "confirmed",
    "booked": "confirmed",
    "done": "done",
    "completed": "done",
    "finished": "done",
    "no_show": "no_show",
    "noshow": "no_show",
    "missed": "no_show",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "services": {
        "id": ("id",),
        "name": ("name", "title"),
        "description": ("description",),
        "price": ("price",),
        "duration": ("duration", "duration_min", "duration_minutes"),
        "position": ("position", "sort", "sort_order"),
        "hidden": ("hidden",),
        "active": ("is_active", "active", "enabled"),
    },
    "users": {
        "telegram_id": ("telegram_id", "user_id", "tg_id", "id"),
        "first_name": ("first_name", "name", "full_name"),
        "username": ("username",),
        "phone": ("phone", "phone_number"),
        "language": ("language", "lang", "language_code"),
        "created_at": ("created_at", "registered_at"),
    },
    "admins": {"telegram_id": ("telegram_id", "user_id", "tg_id", "id")},
    "bookings": {
        "id": ("id",),
        "user_id": ("user_id", "telegram_id", "customer_id", "tg_id"),
        "service_id": ("service_id",),
        "starts_at": ("starts_at", "start_at", "datetime", "start_time"),
        "date": ("date", "booking_date"),
        "time": ("time", "booking_time"),
        "ends_at": ("ends_at", "end_at", "end_time"),
        "status": ("status",),
        "name": ("name", "customer_name", "client_name"),
        "phone": ("phone", "phone_number"),
        "created_at": ("created_at",),
    },
}
REQUIRED = {
    "services": ("id", "name", "price", "duration"),
    "users": ("telegram_id",),
    "admins": ("telegram_id",),
    "bookings": ("id", "user_id", "service_id"),
}


class Malformed(ValueError):
    """A legacy row that cannot be imported; the message is the reason shown to the operator."""


# ---------------------------------------------------------------------------------- parsing


def _int(value: object, what: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or value is None or value == "":
        raise Malformed(f"{what} is missing")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            number = int(value)
        else:
            number = int(str(value).strip())
    except ValueError:
        raise Malformed(f"{what} {value!r} is not a whole number") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise Malformed(f"{what} {number} is out of range {low}..{high}")
    return number


def _text(value: object, *, limit: int | None = None) -> str:
    text = "" if value is None else str(value).strip()
    return text[:limit] if limit else text


def _price(value: object) -> Decimal:
    if value is None or value == "":
        raise Malformed("price is missing")
    raw = str(value).replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        price = Decimal(raw)
    except InvalidOperation:
        raise Malformed(f"price {value!r} is not a number") from None
    if not price.is_finite() or price < 0 or price >= Decimal("1e10"):
        raise Malformed(f"price {value!r} is out of range")
    return price.quantize(Decimal("0.01"))


def _flag(value: object) -> bool | None:
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in {"1", "true", "t", "yes", "y"}:
        return True
    if text in {"0", "false", "f", "no", "n"}:
        return False
    raise Malformed(f"{value!r} is not a yes/no value")


def _datetime(value: object, tz: ZoneInfo, what: str) -> datetime:
    """ISO 8601 text, `YYYY-MM-DD HH:MM[:SS]`, `DD.MM.YYYY HH:MM` or a Unix time stamp."""
    if value is None or value == "":
        raise Malformed(f"{what} is missing")
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise Malformed(f"{what} {value!r} is not a time") from None
    text = str(value).strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y"):
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise Malformed(f"{what} {text!r} is not a date/time")
    if not 1970 <= parsed.year <= 2100:
        raise Malformed(f"{what} {text!r} is out of range")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _date_and_time(day: object, clock: object, tz: ZoneInfo) -> datetime:
    try:
        d = date.fromisoformat(str(day).strip())
    except ValueError:
        try:
            d = datetime.strptime(str(day).strip(), "%d.%m.%Y").date()
        except ValueError:
            raise Malformed(f"date {day!r} is not a date") from None
    try:
        t = time.fromisoformat(str(clock).strip())
    except ValueError:
        raise Malformed(f"time {clock!r} is not a time of day") from None
    return datetime.combine(d, t.replace(tzinfo=None), tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Service:
    legacy_id: int
    name: str
    description: str
    price: Decimal
    duration_min: int
    position: int
    hidden: bool


@dataclass(frozen=True, slots=True)
class Customer:
    telegram_id: int
    first_name: str
    username: str | None
    phone: str | None
    language: str | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class Booking:
    legacy_id: int
    user_id: int
    service_legacy_id: int
    starts_at: datetime | None  # None: from the service's duration, known at import
    ends_at: datetime | None
    status: str
    name: str
    phone: str
    created_at: datetime | None


def parse_service(row: Mapping[str, Any]) -> Service:
    legacy_id = _int(row["id"], "id")
    name = _text(row["name"])
    if not name:
        raise Malformed("name is empty")
    if len(name) > 100:
        raise Malformed(f"name is longer than 100 characters ({len(name)})")
    hidden = _flag(row.get("hidden"))
    if hidden is None:
        active = _flag(row.get("active"))
        hidden = active is False
    position = row.get("position")
    return Service(
        legacy_id,
        name,
        _text(row.get("description")),
        _price(row["price"]),
        _int(row["duration"], "duration", low=5, high=1440),
        _int(position, "position") if position not in (None, "") else legacy_id,
        hidden,
    )


def parse_customer(row: Mapping[str, Any], tz: ZoneInfo) -> Customer:
    telegram_id = _int(row["telegram_id"], "telegram_id", low=1, high=2**63 - 1)
    username = _text(row.get("username")).lstrip("@") or None
    created = row.get("created_at")
    return Customer(
        telegram_id,
        _text(row.get("first_name"), limit=200),
        username,
        _text(row.get("phone"), limit=32) or None,
        _text(row.get("language"), limit=8) or None,
        _datetime(created, tz, "created_at") if created not in (None, "") else None,
    )


def parse_booking(row: Mapping[str, Any], tz: ZoneInfo) -> Booking:
    legacy_id = _int(row["id"], "id")
    starts: datetime | None
    if row.get("starts_at") not in (None, ""):
        starts = _datetime(row["starts_at"], tz, "starts_at")
    elif row.get("date") not in (None, "") and row.get("time") not in (None, ""):
        starts = _date_and_time(row["date"], row["time"], tz)
    else:
        raise Malformed("no start time (starts_at, or date and time)")
    ends = (
        _datetime(row["ends_at"], tz, "ends_at") if row.get("ends_at") not in (None, "") else None
    )
    if ends is not None and ends <= starts:
        raise Malformed("ends before it starts")
    raw_status = _text(row.get("status")).lower() or "confirmed"
    status = STATUS_MAP.get(raw_status.replace("-", "_").replace(" ", "_"))
    if status is None:
        raise Malformed(f"unknown status {raw_status!r}")
    created = row.get("created_at")
    return Booking(
        legacy_id,
        _int(row["user_id"], "user_id", low=1, high=2**63 - 1),
        _int(row["service_id"], "service_id"),
        starts,
        ends,
        status,
        _text(row.get("name"), limit=200),
        _text(row.get("phone"), limit=32),
        _datetime(created, tz, "created_at") if created not in (None, "") else None,
    )


# ---------------------------------------------------------------------------------- reading


@dataclass(slots=True)
class TableReport:
    read: int = 0
    imported: int = 0
    existing: int = 0
    skipped: list[str] = field(default_factory=list)
    missing: bool = False


@dataclass(slots=True)
class FileReport:
    path: str
    tenant_id: str
    dry_run: bool
    tables: dict[str, TableReport] = field(
        default_factory=lambda: {t: TableReport() for t in TABLES}
    )
    customers_from_bookings: int = 0
    error: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class Legacy:
    rows: dict[str, list[dict[str, Any]]]
    missing: list[str]
    sha256: str


def read_legacy(path: Path) -> Legacy:
    """All rows of the four tables, with columns renamed to the canonical names."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    uri = f"file:{path.resolve()}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise Malformed(f"cannot open {path} as SQLite: {exc}") from None
    try:
        db.row_factory = sqlite3.Row
        try:
            present = {
                r[0].lower()
                for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise Malformed(f"{path} is not a SQLite database ({exc})") from None
        rows: dict[str, list[dict[str, Any]]] = {}
        missing: list[str] = []
        for table in TABLES:
            if table not in present:
                missing.append(table)
                rows[table] = []
                continue
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [c[0].lower() for c in cursor.description]
            mapping: dict[str, str] = {}
            for canonical, aliases in ALIASES[table].items():
                for alias in aliases:
                    if alias in columns and alias not in mapping.values():
                        mapping[canonical] = alias
                        break
            lacking = [c for c in REQUIRED[table] if c not in mapping]
            if lacking:
                raise Malformed(
                    f"table {table} has no column {', '.join(lacking)} "
                    f"(columns: {', '.join(columns)})"
                )
            index = {name: i for i, name in enumerate(columns)}
            rows[table] = [
                {canonical: r[index[alias]] for canonical, alias in mapping.items()} for r in cursor
            ]
        return Legacy(rows, missing, digest)
    finally:
        db.close()


# ---------------------------------------------------------------------------------- writing


class Importer:
    """Writes one legacy file into one tenant schema, on an admin connection."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        report: FileReport,
        tz: ZoneInfo,
        advance: Callable[[int], None],
    ) -> None:
        self.conn = conn
        self.tenant_id = tenant_id
        self.schema = quote_ident(tenant_id)
        self.report = report
        self.tz = tz
        self.advance = advance
        self.services: dict[int, tuple[int, int]] = {}  # legacy id -> (new id, duration)

    def skip(self, table: str, row_no: int, row: Mapping[str, Any], reason: str) -> None:
        ident = row.get("id", row.get("telegram_id"))
        label = f"row {row_no}" + (f" (id {ident})" if ident not in (None, "") else "")
        self.report.tables[table].skipped.append(f"{label}: {reason}")

    async def _mapped(self, source: str) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT legacy_id, target_id FROM control.legacy_import_map"
            " WHERE tenant_id = $1 AND source = $2",
            self.tenant_id,
            source,
        )
        return {r["legacy_id"]: r["target_id"] for r in rows}

    async def _map(self, source: str, legacy_id: int, target_id: int) -> None:
        await self.conn.execute(
            "INSERT INTO control.legacy_import_map (tenant_id, source, legacy_id, target_id)"
            " VALUES ($1, $2, $3, $4)",
            self.tenant_id,
            source,
            str(legacy_id),
            target_id,
        )

    async def services_(self, rows: list[dict[str, Any]]) -> None:
        report = self.report.tables["services"]
        mapped = await self._mapped("services")
        seen: set[int] = set()
        for n, row in enumerate(rows, start=1):
            report.read += 1
            self.advance(1)
            try:
                service = parse_service(row)
                if service.legacy_id in seen:
                    raise Malformed(f"id {service.legacy_id} appears twice")
            except Malformed as exc:
                self.skip("services", n, row, str(exc))
                continue
            seen.add(service.legacy_id)
            key = str(service.legacy_id)
            if key in mapped:
                self.services[service.legacy_id] = (mapped[key], service.duration_min)
                report.existing += 1
                continue
            new_id = await self.conn.fetchval(
                f"INSERT INTO {self.schema}.services"
                " (name, description, price, duration_min, position, hidden)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                service.name,
                service.description,
                service.price,
                service.duration_min,
                service.position,
                service.hidden,
            )
            await self._map("services", service.legacy_id, new_id)
            self.services[service.legacy_id] = (new_id, service.duration_min)
            report.imported += 1

    async def _insert_customers(self, customers: Sequence[Customer]) -> set[int]:
        if not customers:
            return set()
        rows = await self.conn.fetch(
            f"INSERT INTO {self.schema}.customers"
            " (telegram_id, first_name, username, phone, language, created_at)"
            " SELECT t, f, u, p, l, coalesce(c, now())"
            " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],"
            " $6::timestamptz[]) AS x(t, f, u, p, l, c)"
            " ON CONFLICT (telegram_id) DO NOTHING RETURNING telegram_id",
            [c.telegram_id for c in customers],
            [c.first_name for c in customers],
            [c.username for c in customers],
            [c.phone for c in customers],
            [c.language for c in customers],
            [c.created_at for c in customers],
        )
        return {r[0] for r in rows}

    async def users(self, rows: list[dict[str, Any]]) -> None:
        report = self.report.tables["users"]
        customers: dict[int, Customer] = {}
        for n, row in enumerate(rows, start=1):
            report.read += 1
            self.advance(1)
            try:
                customer = parse_customer(row, self.tz)
            except Malformed as exc:
                self.skip("users", n, row, str(exc))
                continue
            if customer.telegram_id in customers:
                self.skip("users", n, row, f"telegram_id {customer.telegram_id} appears twice")
                continue
            customers[customer.telegram_id] = customer
        inserted = await self._insert_customers(list(customers.values()))
        report.imported += len(inserted)
        report.existing += len(customers) - len(inserted)

    async def admins(self, rows: list[dict[str, Any]]) -> None:
        report = self.report.tables["admins"]
        ids: list[int] = []
        for n, row in enumerate(rows, start=1):
            report.read += 1
            self.advance(1)
            try:
                telegram_id = _int(row["telegram_id"], "telegram_id", low=1, high=2**63 - 1)
            except Malformed as exc:
                self.skip("admins", n, row, str(exc))
                continue
            if telegram_id in ids:
                self.skip("admins", n, row, f"telegram_id {telegram_id} appears twice")
                continue
            ids.append(telegram_id)
        if ids:
            inserted = await self.conn.fetch(
                f"INSERT INTO {self.schema}.admins (telegram_id)"
                " SELECT unnest($1::bigint[]) ON CONFLICT (telegram_id) DO NOTHING"
                " RETURNING telegram_id",
                ids,
            )
            report.imported += len(inserted)
            report.existing += len(ids) - len(inserted)

    async def bookings(self, rows: list[dict[str, Any]]) -> None:
        report = self.report.tables["bookings"]
        mapped = await self._mapped("bookings")
        known = {
            r[0] for r in await self.conn.fetch(f"SELECT telegram_id FROM {self.schema}.customers")
        }
        seen: set[int] = set()
        for n, row in enumerate(rows, start=1):
            report.read += 1
            self.advance(1)
            try:
                booking = parse_booking(row, self.tz)
                if booking.legacy_id in seen:
                    raise Malformed(f"id {booking.legacy_id} appears twice")
                seen.add(booking.legacy_id)
                if str(booking.legacy_id) in mapped:
                    report.existing += 1
                    continue
                service = self.services.get(booking.service_legacy_id)
                if service is None:
                    raise Malformed(f"service {booking.service_legacy_id} was not imported")
                service_id, duration = service
                assert booking.starts_at is not None
                ends = booking.ends_at or booking.starts_at + timedelta(minutes=duration)
                new_customer = booking.user_id not in known
                async with self.conn.transaction():  # a savepoint: one bad row stays one row
                    if new_customer:
                        await self.conn.execute(
                            f"INSERT INTO {self.schema}.customers (telegram_id, first_name, phone)"
                            " VALUES ($1, $2, $3) ON CONFLICT (telegram_id) DO NOTHING",
                            booking.user_id,
                            booking.name,
                            booking.phone or None,
                        )
                    new_id = await self.conn.fetchval(
                        f"INSERT INTO {self.schema}.bookings (customer_id, service_id, starts_at,"
                        " ends_at, status, customer_name, phone, source, created_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, 'legacy', coalesce($8, now()))"
                        " RETURNING id",
                        booking.user_id,
                        service_id,
                        booking.starts_at,
                        ends,
                        booking.status,
                        booking.name,
                        booking.phone,
                        booking.created_at,
                    )
                    await self._map("bookings", booking.legacy_id, new_id)
                if new_customer:
                    known.add(booking.user_id)
                    self.report.customers_from_bookings += 1
                report.imported += 1
            except Malformed as exc:
                self.skip("bookings", n, row, str(exc))
            except asyncpg.ExclusionViolationError:
                self.skip("bookings", n, row, "overlaps another booking (not cancelled)")
            except (asyncpg.CheckViolationError, asyncpg.DataError) as exc:
                self.skip("bookings", n, row, f"refused by the database: {exc}")


async def tenant_timezone(conn: asyncpg.Connection, tenant_id: str, default: str) -> ZoneInfo:
    name = await conn.fetchval(
        "SELECT timezone FROM control.tenants WHERE tenant_id = $1", tenant_id
    )
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


class _Rollback(Exception):
    """Ends a dry run's transaction."""


async def import_file(
    conn: asyncpg.Connection,
    tenant_id: str,
    path: Path,
    *,
    dry_run: bool = False,
    timezone: str = DEFAULT_TIMEZONE,
    progress: Progress | None = None,
) -> FileReport:
    """Import one legacy file into one tenant; problems end up in the report, not raised."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = FileReport(str(path), tenant_id, dry_run)
    try:
        validate_tenant_id(tenant_id)
        owner = await conn.fetchval(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", tenant_id
        )
        if owner is None:
            raise Malformed(f"tenant {tenant_id} has no schema: provision it first")
        if not is_owner_role(owner, tenant_id):  # <tenant>_owner, or <fleet>_<tenant>_owner
            # The import writes as the admin: only into a schema that holds platform code only.
            raise Malformed(
                f"tenant {tenant_id}'s schema is owned by {owner}, not {owner_role(tenant_id)}: "
                "run `make migrate` first (it converts schemas from before the owner split)"
            )
        if not await conn.fetchval("SELECT to_regclass('control.legacy_import_map') IS NOT NULL"):
            raise Malformed("control.legacy_import_map is missing: run `make migrate` first")
        legacy = await asyncio.to_thread(read_legacy, path)
    except (Malformed, OSError, ValueError) as exc:
        report.error = str(exc)
        return report
    for table in legacy.missing:
        report.tables[table].missing = True
    total = sum(len(r) for r in legacy.rows.values())
    task = progress.add_task(f"{path.name} → {tenant_id}", total=total) if progress else None

    def advance(n: int) -> None:
        if progress is not None and task is not None:
            progress.advance(task, n)

    tz = await tenant_timezone(conn, tenant_id, timezone)
    importer = Importer(conn, tenant_id, report, tz, advance)
    try:
        async with conn.transaction():
            # Serialise imports of one tenant (a second run waits, then finds everything mapped).
            await platform_lock(conn, f"legacy:{tenant_id}")
            await importer.services_(legacy.rows["services"])
            await importer.users(legacy.rows["users"])
            await importer.admins(legacy.rows["admins"])
            await importer.bookings(legacy.rows["bookings"])
            if dry_run:
                raise _Rollback
            await conn.execute(
                "INSERT INTO control.legacy_import_runs (tenant_id, file_name, file_sha256, counts)"
                " VALUES ($1, $2, $3, $4::jsonb)",
                tenant_id,
                path.name,
                legacy.sha256,
                json.dumps(counts(report)),
            )
    except _Rollback:
        pass
    except asyncpg.PostgresError as exc:
        report.error = f"import rolled back: {exc}"
    report.seconds = loop.time() - started
    return report


def counts(report: FileReport) -> dict[str, dict[str, int]]:
    return {
        name: {
            "read": t.read,
            "imported": t.imported,
            "existing": t.existing,
            "skipped": len(t.skipped),
        }
        for name, t in report.tables.items()
    }


# ---------------------------------------------------------------------------------- CLI


def sources(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """(tenant id, file) pairs from --tenant FILE, FILE named <tenant_id>.*, or --dir."""
    files = [Path(f) for f in args.files]
    if args.dir:
        folder = Path(args.dir)
        files += sorted(p for p in folder.iterdir() if p.suffix in {".db", ".sqlite", ".sqlite3"})
    for file in files:
        if args.tenant:
            yield args.tenant, file
        elif TENANT_ID_RE.match(file.stem):
            yield file.stem, file
        else:
            raise SystemExit(
                f"{file}: name it <tenant_id>.db (e.g. client_001.db) or pass --tenant"
            )


def print_report(console: Console, report: FileReport, *, show: int) -> None:
    verb = "would import" if report.dry_run else "imported"
    title = f"{report.path} → {report.tenant_id}" + (
        " (dry run, rolled back)" if report.dry_run else ""
    )
    if report.error:
        console.print(f"[red]{escape(title)}: FAILED: {escape(report.error)}[/red]")
        return
    table = Table(title=title, title_justify="left")
    for col in ("table", "read", verb, "already there", "skipped"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, t in report.tables.items():
        if t.missing:
            table.add_row(name, "table missing", "", "", "")
        else:
            table.add_row(name, str(t.read), str(t.imported), str(t.existing), str(len(t.skipped)))
    console.print(table)
    if report.customers_from_bookings:
        console.print(f"customers created from bookings: {report.customers_from_bookings}")
    for name, t in report.tables.items():
        for line in t.skipped[:show]:
            console.print(f"  skipped {name} {line}", markup=False, highlight=False)
        if len(t.skipped) > show:
            console.print(
                f"  ... and {len(t.skipped) - show} more skipped {name} rows (--show-skipped)"
            )


async def run(args: argparse.Namespace) -> int:
    pairs = list(sources(args))
    if not pairs:
        print("nothing to import: pass files, or --dir", file=sys.stderr)
        return 2
    settings = load_settings(PostgresSettings)
    console = Console(soft_wrap=True)
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    reports: list[FileReport] = []
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=args.json or not console.is_terminal,
        ) as progress:
            for tenant_id, path in pairs:
                reports.append(
                    await import_file(
                        conn,
                        tenant_id,
                        path,
                        dry_run=args.dry_run,
                        timezone=args.timezone,
                        progress=progress,
                    )
                )
    finally:
        await conn.close()
    if args.json:
        print(json.dumps([asdict(r) for r in reports], ensure_ascii=False, indent=2))
    else:
        for report in reports:
            print_report(console, report, show=args.show_skipped)
        ok = [r for r in reports if not r.error]
        imported = sum(t.imported for r in ok for t in r.tables.values())
        skipped = sum(len(t.skipped) for r in ok for t in r.tables.values())
        verb = "would be imported" if args.dry_run else "imported"
        console.print(
            f"summary: {len(ok)}/{len(reports)} file(s) done, {imported} row(s) {verb}, "
            f"{skipped} skipped, {len(reports) - len(ok)} file(s) failed"
        )
    return 1 if any(r.error for r in reports) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.migrate_to_postgres",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", help="legacy SQLite files")
    parser.add_argument("--tenant", type=validate_tenant_id, help="tenant of the given file(s)")
    parser.add_argument("--dir", help="import every <tenant_id>.db/.sqlite/.sqlite3 in it")
    parser.add_argument("--dry-run", action="store_true", help="do everything, then roll back")
    parser.add_argument("--timezone", default=DEFAULT_TIMEZONE, help="zone of naive legacy times")
    parser.add_argument(
        "--show-skipped", type=int, default=20, help="skipped rows listed per table"
    )
    parser.add_argument("--json", action="store_true", help="reports as JSON")
    args = parser.parse_args(argv)
    if args.tenant and len(args.files) != 1:
        parser.error("--tenant goes with exactly one file")
    setup_logging("WARNING")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
