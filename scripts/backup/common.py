"""What every part of the backups shares: file naming, the error, the PostgreSQL client tools."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from database.pg_tools import PgServer, run_pg_tool
from database.pg_tools import pg_tool as _pg_tool

STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
STAMP_RE = r"\d{8}T\d{12}Z"
PARTIAL = ".partial"
BASE_FILE = "_base.dump"
MANIFEST = "manifest.json"


class BackupError(RuntimeError):
    """A dump or restore failed; the message says why (never a password)."""


def pg_tool(name: str) -> str:
    """Path of a PostgreSQL client program (database/pg_tools.py); BackupError when missing."""
    return _pg_tool(name, BackupError)


Server = PgServer  # where to connect, the password kept off command lines


async def run_tool(server: Server, argv: Sequence[str], *, what: str, limit: float = 3600) -> str:
    """Run a client program; BackupError with the tail of its stderr when it fails."""
    return await run_pg_tool(server, argv, what=what, limit=limit, error=BackupError)


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(STAMP_FORMAT)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
