"""What every restore shares: the result, pg_restore with an audit between definitions and
data (a tenant's code never runs with the platform's rights), and a roles file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from core.tenant_id import TENANT_ID_RE
from database.audit import tenant_code_objects
from scripts.backup.common import BackupError, Server, pg_tool, run_tool


@dataclass(slots=True)
class RestoreResult:
    target: str  # schema or database restored into
    seconds: float
    safety_dump: Path | None = None
    note: str = ""


# Entries of a dump that carry code. In a tenant schema none of them is ever made by the
# platform (tenant migrations create tables, sequences, indexes and constraints only).
_CODE_ENTRIES = (
    "FUNCTION",
    "PROCEDURE",
    "AGGREGATE",
    "VIEW",
    "MATERIALIZED VIEW",
    "TRIGGER",
    "RULE",
    "POLICY",
    "ROW SECURITY",
    "OPERATOR",
    "DOMAIN",
    "TYPE",
    "CONVERSION",
    "FOREIGN TABLE",
)
_TOC_RE = re.compile(r"^\d+; \d+ \d+ (?P<kind>[A-Z ]+?) (?P<schema>\S+) (?P<name>.*?)(?: \S+)?$")


class TenantCodeInBackupError(BackupError):
    """A tenant schema in a backup holds code that a restore would run with admin rights."""


def _tenant_like(schema: str, only: Sequence[str] | None) -> bool:
    return schema in only if only is not None else bool(TENANT_ID_RE.match(schema))


async def _refuse_tenant_code_in_listing(
    server: Server, file: Path, only: Sequence[str] | None
) -> None:
    listing = await run_tool(
        server, [pg_tool("pg_restore"), "--list", str(file)], what=f"pg_restore --list {file}"
    )
    found = []
    for line in listing.splitlines():
        match = _TOC_RE.match(line)
        if match and _tenant_like(match["schema"], only):
            kind = match["kind"].strip()
            if any(kind == k or kind.startswith(k + " ") for k in _CODE_ENTRIES):
                found.append(f"{kind.lower()} {match['schema']}.{match['name']}")
    if found:
        raise TenantCodeInBackupError(_code_message(file, found))


def _code_message(file: Path, found: Sequence[str]) -> str:
    shown = "; ".join(found[:10]) + (f"; … {len(found) - 10} more" if len(found) > 10 else "")
    return (
        f"{file.name} holds tenant code that a restore would run with the platform's rights "
        f"({shown}); it was made before tenants lost the right to create objects. Restore it "
        "by hand as the tenant's own role, or pick a newer backup"
    )


async def restore_checked(
    server: Server,
    file: Path,
    *,
    database: str,
    options: Sequence[str],
    what: str,
    schemas: Sequence[str] | None = None,
) -> None:
    """pg_restore in two passes with an audit between (docs/architecture.md: the platform never runs a
    tenant's objects with its own rights).

    The definitions (`--section=pre-data`) are created first, which runs nothing; then every
    tenant schema among them (`schemas`, or every `client_<n>` schema) is audited with
    `database.audit.tenant_code_objects`; only a clean result lets the data and the indexes
    and constraints in (`data`, `post-data`). Entries that carry code are refused even before
    that, from the dump's listing.
    """
    await _refuse_tenant_code_in_listing(server, file, schemas)
    base = [pg_tool("pg_restore"), "--exit-on-error", *options, f"--dbname={server.url(database)}"]
    await run_tool(server, [*base, "--section=pre-data", str(file)], what=f"{what} (definitions)")
    conn = await asyncpg.connect(server.with_database(database))
    try:
        if schemas is None:
            rows = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname ~ '^client_[0-9]{1,12}$'"
            )
            schemas = [r["nspname"] for r in rows]
        found = []
        for schema in schemas:
            found += [f"{schema}: {o}" for o in await tenant_code_objects(conn, schema)]
    finally:
        await conn.close()
    if found:
        raise TenantCodeInBackupError(_code_message(file, found))
    await run_tool(
        server,
        [*base, "--section=data", "--section=post-data", str(file)],
        what=f"{what} (data)",
    )


async def apply_roles(server: Server, roles: Path) -> None:
    """Run a `pg_dumpall --roles-only` file; roles that exist already are altered, not fatal."""
    await run_tool(
        server,
        [
            pg_tool("psql"),
            "--quiet",
            "--no-psqlrc",
            "--set=ON_ERROR_STOP=0",
            f"--file={roles}",
            f"--dbname={server.url()}",
        ],
        what=f"psql -f {roles}",
    )
