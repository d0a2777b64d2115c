"""Final backups: `pg_dump` of one tenant schema into the backups folder."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

from core.files import ensure_private_dir
from core.tenant_id import validate_tenant_id
from database import pg_tools


class BackupError(RuntimeError):
    """The backup could not be taken; the message says why (never the password)."""


async def dump_schema(
    dsn: str,
    tenant_id: str,
    backups_dir: Path,
    *,
    pg_dump: str = "pg_dump",
    max_seconds: float = 300.0,
) -> Path:
    """Dump schema `tenant_id` (custom format, without owners: the tenant's roles go with it)
    to `backups_dir/<tenant>-<utc time>.dump`, through database/pg_tools.py."""
    validate_tenant_id(tenant_id)
    binary = shutil.which(pg_dump)
    if binary is None:
        raise BackupError(
            f"{pg_dump} is not installed, so no final backup can be taken: install the "
            "PostgreSQL client tools (package postgresql-client) or delete with ?backup=false"
        )
    await asyncio.to_thread(ensure_private_dir, backups_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = backups_dir / f"{tenant_id}-{stamp}.dump"
    try:
        await pg_tools.pg_dump(
            pg_tools.PgServer(dsn),
            target,
            schemas=[tenant_id],
            keep_owners=False,
            binary=binary,
            what=f"pg_dump of {tenant_id}",
            limit=max_seconds,
            error=BackupError,
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
