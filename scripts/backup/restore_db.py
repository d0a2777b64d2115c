"""The whole database from a single dump or a per-schema set: into a new database or in place."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from core.tenant_id import TENANT_ID_RE
from database.identifiers import quote_ident
from database.roles import DEFAULT_FLEET, fleet_prefix
from database.tenants import harden_database, quote_ident_any
from scripts.backup.common import BASE_FILE, BackupError, Server, pg_tool, run_tool, stamp
from scripts.backup.restore import RestoreResult, apply_roles, restore_checked


async def restore_database(
    server: Server,
    path: Path,
    *,
    into: str = "scratch",
    name: str | None = None,
    roles: Path | None = None,
    jobs: int = 2,
    fleet: str = DEFAULT_FLEET,
) -> RestoreResult:
    """The whole database from a single dump or a per-schema set, into a new database or in
    place (dropped and recreated)."""
    started = time.perf_counter()
    if not await asyncio.to_thread(path.exists):
        raise BackupError(f"no backup at {path}")
    if roles is not None:
        await apply_roles(server, roles)
    if into == "scratch":
        target = name or f"{server.database}_restore_{stamp()[:15].lower()}"
    elif into == "inplace":
        target = name or server.database
    else:
        raise BackupError(f"--into must be scratch or inplace, not {into!r}")
    qtarget = quote_ident_any(target)
    maintenance = server.with_database("postgres")
    conn = await asyncpg.connect(maintenance)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target)
        if exists and into == "scratch":
            raise BackupError(f"database {target} already exists: choose another with --as")
        if exists:
            await conn.execute(f"DROP DATABASE {qtarget} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {qtarget}")
        await conn.execute(f"REVOKE ALL ON DATABASE {qtarget} FROM PUBLIC")
    finally:
        await conn.close()
    restore = pg_tool("pg_restore")
    url = server.url(target)
    if await asyncio.to_thread(path.is_dir):
        await run_tool(
            server,
            [restore, "--exit-on-error", f"--dbname={url}", str(path / BASE_FILE)],
            what="pg_restore of the non-tenant schemas",
        )
        semaphore = asyncio.Semaphore(max(1, jobs))

        async def one(file: Path) -> None:
            async with semaphore:
                await restore_checked(
                    server,
                    file,
                    database=target,
                    options=["--single-transaction"],
                    what=f"pg_restore of {file.stem}",
                    schemas=[file.stem],
                )

        files = await asyncio.to_thread(_tenant_files, path)
        await asyncio.gather(*(one(f) for f in files))
    else:
        await restore_checked(
            server,
            path,
            database=target,
            options=[f"--jobs={max(1, jobs)}"],
            what=f"pg_restore of {path.name}",
        )
    granted = await _regrant(
        server.with_database(target), grant_tenants=into == "inplace", fleet=fleet
    )
    note = f"CONNECT granted to {granted} tenant role(s)" if granted else ""
    return RestoreResult(target, time.perf_counter() - started, note=note)


def _tenant_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("client_*.dump") if TENANT_ID_RE.match(p.stem))


async def _regrant(dsn: str, *, grant_tenants: bool, fleet: str = DEFAULT_FLEET) -> int:
    """Database-level grants are not part of a dump: harden again, let tenants connect."""
    conn = await asyncpg.connect(dsn)
    try:
        await harden_database(conn)
        if not grant_tenants:
            return 0
        database = quote_ident_any(await conn.fetchval("SELECT current_database()"))
        # This fleet's login roles only (database/roles.py): `<prefix><schema>`.
        rows = await conn.fetch(
            "SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.rolname = $1 || n.nspname"
            " WHERE n.nspname ~ '^client_[0-9]{1,12}$'",
            fleet_prefix(fleet),
        )
        for r in rows:
            await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {quote_ident(r[0])}")
        return len(rows)
    finally:
        await conn.close()
