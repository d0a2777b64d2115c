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

How they map onto the tenant schema (database/migrations/tenant/0001, 0002, 0007):

- services -> services(name, description, price numeric(12,2), duration_min 5..1440, position,
  hidden = not is_active); the legacy id is kept in control.legacy_import_map.
- users -> customers(telegram_id, first_name, username without '@', phone, language,
  created_at); an existing customer is left as it is (the live bot's data wins).
- admins -> admins(telegram_id).
- staff: a legacy bot was one resource. Its bookings go to the business's first active staff
  member (in the order customers see them); when there is none, one is created on the
  business's hours, named "Специалист" (or "Specialist" for an English business). That staff
  member performs every service the import creates (added to its list unless it performs all).
- bookings -> bookings(customer_id = the user's Telegram id, service_id = the imported service,
  staff_id = that staff member, starts_at/ends_at timestamptz, status, customer_name, phone,
  source = 'legacy'). Naive times are in the tenant's time zone (control.tenants.timezone,
  else --timezone). Without an end the service's duration is used. Status:
  confirmed/active/new/pending/booked -> confirmed, done/completed/finished -> done,
  no_show/missed -> no_show, cancelled/canceled -> cancelled. A booking whose customer is not
  in `users` creates the customer from its name and phone.

Skipped with a reason, never a crash: a value that does not parse or is out of range, a
booking of a service that was not imported, a booking overlapping another of the staff
member (the schema's EXCLUDE constraint), a missing table (reported), a file that is not
SQLite (reported; exit 1).
Re-runs import nothing twice: services and bookings through control.legacy_import_map,
customers and admins by Telegram id; the staff member is found again, not created twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from core.logs import setup_logging
from core.settings import PostgresSettings, load_settings
from core.tenant_id import TENANT_ID_RE, validate_tenant_id
from scripts.legacy_import.importing import DEFAULT_TIMEZONE, import_file
from scripts.legacy_import.report import FileReport


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
    if report.staff_id is not None:
        how = " (created, on the business's hours)" if report.staff_created else ""
        added = f"; {report.staff_services} service(s) added to their list" * bool(
            report.staff_services
        )
        console.print(
            f"bookings go to staff member {report.staff_name} (id {report.staff_id}){how}{added}",
            markup=False,
            highlight=False,
        )
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
