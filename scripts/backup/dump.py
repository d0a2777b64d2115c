"""Dumps: the whole database (one file, or one per schema from one snapshot), its roles, one
tenant; and retention (`--keep`)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from core.files import ensure_private_dir
from core.tenant_id import validate_tenant_id
from database.pg_tools import pg_dump
from scripts.backup.common import (
    BASE_FILE,
    MANIFEST,
    PARTIAL,
    STAMP_RE,
    BackupError,
    Server,
    pg_tool,
    run_tool,
    safe_name,
    stamp,
)
from scripts.backup.plan import lock_budget, tenant_schemas


@dataclass(slots=True)
class DumpResult:
    path: Path
    roles: Path | None
    mode: str  # whole | per-schema | tenant
    schemas: int
    seconds: float
    note: str = ""
    removed: tuple[Path, ...] = ()


async def dump_tenant(server: Server, tenant_id: str, folder: Path) -> DumpResult:
    validate_tenant_id(tenant_id)
    started = time.perf_counter()
    conn = await asyncpg.connect(server.dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", tenant_id):
            raise BackupError(f"there is no schema {tenant_id} in {server.database}")
    finally:
        await conn.close()
    await asyncio.to_thread(ensure_private_dir, folder)
    target = folder / f"{tenant_id}-{stamp()}.dump"
    partial = target.with_name(target.name + PARTIAL)
    try:
        await pg_dump(server, partial, schemas=[tenant_id], error=BackupError)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(target)
    return DumpResult(target, None, "tenant", 1, time.perf_counter() - started)


async def dump_roles(server: Server, target: Path) -> str:
    """`pg_dumpall --roles-only` into `target`; returns a note when passwords are left out."""
    conn = await asyncpg.connect(server.dsn)
    try:
        superuser = await conn.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
    finally:
        await conn.close()
    argv = [
        pg_tool("pg_dumpall"),
        "--roles-only",
        f"--file={target}",
        f"--dbname={server.url()}",
    ]
    note = ""
    if not superuser:
        argv.insert(2, "--no-role-passwords")
        note = (
            "roles dumped without passwords (not a superuser): after restoring on a new "
            "cluster the master resets tenant passwords when it re-provisions"
        )
    await run_tool(server, argv, what="pg_dumpall --roles-only")
    return note


async def dump_database(
    server: Server, folder: Path, *, mode: str = "auto", jobs: int = 2
) -> DumpResult:
    """The whole database: one custom-format file, or one per schema when locks are short."""
    started = time.perf_counter()
    conn = await asyncpg.connect(server.dsn)
    try:
        budget = await lock_budget(conn)
        schemas = await tenant_schemas(conn)
    finally:
        await conn.close()
    if mode == "auto":
        mode = "whole" if budget.fits else "per-schema"
    note = budget.explain() if mode == "per-schema" or not budget.fits else ""
    await asyncio.to_thread(ensure_private_dir, folder)
    base = f"{safe_name(server.database)}-{stamp()}"
    roles = folder / f"{base}.roles.sql"
    roles_partial = roles.with_name(roles.name + PARTIAL)
    if mode == "whole":
        target = folder / f"{base}.dump"
        partial = target.with_name(target.name + PARTIAL)
        try:
            await pg_dump(server, partial, error=BackupError)
        except BackupError as exc:
            partial.unlink(missing_ok=True)
            if "max_locks_per_transaction" in str(exc) or "out of shared memory" in str(exc):
                raise BackupError(
                    f"{exc}\n{budget.explain()}; run with --mode per-schema or raise "
                    "max_locks_per_transaction"
                ) from None
            raise
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    elif mode == "per-schema":
        target = folder / f"{base}.d"
        partial = target.with_name(target.name + PARTIAL)
        try:
            await _dump_per_schema(server, partial, schemas, jobs=jobs)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    else:
        raise BackupError(f"unknown dump mode {mode!r} (auto, whole or per-schema)")
    try:
        extra = await dump_roles(server, roles_partial)
    except BaseException:
        roles_partial.unlink(missing_ok=True)
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
        raise
    partial.rename(target)
    roles_partial.rename(roles)
    note = "; ".join(n for n in (note, extra) if n)
    return DumpResult(target, roles, mode, len(schemas), time.perf_counter() - started, note)


async def _dump_per_schema(
    server: Server, folder: Path, schemas: Sequence[str], *, jobs: int
) -> None:
    """`_base.dump` + one file per tenant schema, all from one exported snapshot."""
    await asyncio.to_thread(folder.mkdir, parents=True, mode=0o700)
    holder = await asyncpg.connect(server.dsn)
    try:
        async with holder.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await holder.fetchval("SELECT pg_export_snapshot()")
            dump = pg_tool("pg_dump")
            await pg_dump(
                server,
                folder / BASE_FILE,
                exclude_schemas=schemas,
                snapshot=snapshot,
                binary=dump,
                what="pg_dump of the non-tenant schemas",
                error=BackupError,
            )
            semaphore = asyncio.Semaphore(max(1, jobs))

            async def one(schema: str) -> None:
                async with semaphore:
                    await pg_dump(
                        server,
                        folder / f"{schema}.dump",
                        schemas=[schema],
                        snapshot=snapshot,
                        binary=dump,
                        error=BackupError,
                    )

            await asyncio.gather(*(one(s) for s in schemas))
    finally:
        await holder.close()
    manifest = {
        "database": server.database,
        "snapshot": snapshot,
        "created_at": datetime.now(UTC).isoformat(),
        "schemas": list(schemas),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


# --- retention


def _backups_of(folder: Path, prefix: str) -> list[Path]:
    pattern = re.compile(rf"^{re.escape(prefix)}-({STAMP_RE})(\.dump|\.d)$")
    found = [p for p in folder.iterdir() if pattern.match(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: pattern.match(p.name).group(1))  # type: ignore[union-attr]


def prune(folder: Path, prefix: str, keep: int) -> list[Path]:
    """Delete all but the `keep` newest backups named `<prefix>-<stamp>` (and their roles)."""
    if keep <= 0:
        return []
    removed: list[Path] = []
    for old in _backups_of(folder, prefix)[:-keep]:
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
        removed.append(old)
        roles = old.with_name(old.name.rsplit(".", 1)[0] + ".roles.sql")
        if roles.exists():
            roles.unlink()
            removed.append(roles)
    return removed
