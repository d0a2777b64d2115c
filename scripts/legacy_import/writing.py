"""Writing one legacy file's rows into one tenant schema, on an admin connection.

A legacy bot was one resource; the tenant schema has staff (tenant migration 0007). Every
imported booking goes to the business's first active staff member, in the order customers see
them, who is created on the business's hours when there is none; that staff member performs
every service the import creates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from database.identifiers import quote_ident
from scripts.legacy_import.report import FileReport
from scripts.legacy_import.rows import (
    Customer,
    Malformed,
    parse_admin,
    parse_booking,
    parse_customer,
    parse_service,
)


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
        self.new_services: list[int] = []  # created by this run
        self.staff_id: int | None = None  # who takes the bookings (`staff`)

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
            self.new_services.append(new_id)
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
                telegram_id = parse_admin(row)
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

    async def staff(self) -> None:
        """The staff member of the imported bookings: the first active one (by position, as
        customers see them), or a new one on the business's hours (`own_hours` false), named
        for the business's language like the one tenant migration 0007 makes. It performs the
        services this run creates: with `all_services` it does already, otherwise they are
        added to its list. Services a re-run finds mapped are left as the owner set them."""
        row = await self.conn.fetchrow(
            f"SELECT id, name, all_services FROM {self.schema}.staff WHERE active"
            " ORDER BY position, id LIMIT 1"
        )
        if row is None:
            row = await self.conn.fetchrow(
                f"INSERT INTO {self.schema}.staff (name, position, own_hours, all_services)"
                " VALUES (coalesce((SELECT CASE WHEN locale = 'en' THEN 'Specialist'"
                f" ELSE 'Специалист' END FROM {self.schema}.business), 'Специалист'),"
                f" (SELECT coalesce(max(position), 0) + 1 FROM {self.schema}.staff),"
                " false, true) RETURNING id, name, all_services"
            )
            assert row is not None
            self.report.staff_created = True
        self.staff_id = row["id"]
        self.report.staff_id, self.report.staff_name = row["id"], row["name"]
        if not row["all_services"] and self.new_services:
            added = await self.conn.fetch(
                f"INSERT INTO {self.schema}.staff_services (staff_id, service_id)"
                " SELECT $1, unnest($2::integer[]) ON CONFLICT DO NOTHING RETURNING service_id",
                self.staff_id,
                self.new_services,
            )
            self.report.staff_services = len(added)

    async def bookings(self, rows: list[dict[str, Any]]) -> None:
        report = self.report.tables["bookings"]
        if self.staff_id is None:
            raise RuntimeError("Importer.staff() comes before the bookings")
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
                        f"INSERT INTO {self.schema}.bookings (customer_id, service_id, staff_id,"
                        " starts_at, ends_at, status, customer_name, phone, source, created_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'legacy', coalesce($9, now()))"
                        " RETURNING id",
                        booking.user_id,
                        service_id,
                        self.staff_id,
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
                self.skip(
                    "bookings",
                    n,
                    row,
                    "overlaps another booking of the staff member (not cancelled)",
                )
            except (asyncpg.CheckViolationError, asyncpg.DataError) as exc:
                self.skip("bookings", n, row, f"refused by the database: {exc}")
