"""One file into one tenant, in one transaction: the tenant's schema checked first (only a
schema holding platform code only is written as the admin), imports of one tenant serialised,
the run recorded; a dry run does everything and rolls it back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from rich.progress import Progress

from core.tenant_id import validate_tenant_id
from database.locks import platform_lock
from database.roles import is_owner_role, owner_role
from scripts.legacy_import.reading import read_legacy
from scripts.legacy_import.report import FileReport, counts
from scripts.legacy_import.rows import Malformed
from scripts.legacy_import.writing import Importer

DEFAULT_TIMEZONE = "Europe/Moscow"


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
        if not await conn.fetchval(
            "SELECT to_regclass(format('%I.staff', $1::text)) IS NOT NULL", tenant_id
        ):
            raise Malformed(
                f"tenant {tenant_id}'s schema has no staff yet (tenant migration 0007): "
                "run `make migrate` first"
            )
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
            await importer.staff()
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
