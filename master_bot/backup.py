"""Final backups: `pg_dump` of one tenant schema into the backups folder."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from core.files import PRIVATE_UMASK, ensure_private_dir
from core.logs import redact
from core.tenant_id import validate_tenant_id


class BackupError(RuntimeError):
    """The backup could not be taken; the message says why (never the password)."""


def _without_password(dsn: str) -> tuple[str, str | None]:
    parts = urlsplit(dsn)
    password = unquote(parts.password) if parts.password else None
    netloc = parts.netloc.rsplit("@", 1)
    host = netloc[-1]
    user = parts.username or ""
    clean = f"{user}@{host}" if user else host
    return urlunsplit((parts.scheme, clean, parts.path, parts.query, "")), password


async def dump_schema(
    dsn: str,
    tenant_id: str,
    backups_dir: Path,
    *,
    pg_dump: str = "pg_dump",
    max_seconds: float = 300.0,
) -> Path:
    """Dump schema `tenant_id` (custom format) to `backups_dir/<tenant>-<utc time>.dump`."""
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
    url, password = _without_password(dsn)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if password:
        env["PGPASSWORD"] = password  # never on the command line
    process = await asyncio.create_subprocess_exec(
        binary,
        "--format=custom",
        f"--schema={tenant_id}",
        "--no-owner",
        f"--file={target}",
        f"--dbname={url}",
        env=env,
        umask=PRIVATE_UMASK,  # 0600: every row of the tenant is in it
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), max_seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BackupError(f"pg_dump of {tenant_id} took longer than {max_seconds:.0f}s") from None
    if process.returncode != 0:
        target.unlink(missing_ok=True)
        reason = redact(err.decode(errors="replace").strip(), [password or ""])
        raise BackupError(f"pg_dump of {tenant_id} failed: {reason[-500:]}")
    return target
