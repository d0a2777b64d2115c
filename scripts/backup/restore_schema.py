"""One tenant's schema from a backup: into a scratch schema beside the live one, or in place."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import asyncpg

from core.tenant_id import validate_tenant_id
from database.identifiers import quote_ident
from database.pg_tools import pg_dump
from database.roles import DEFAULT_FLEET, login_role
from database.tenants import secure_tenant_schema, terminate_tenant_sessions
from scripts.backup.common import BackupError, Server, pg_tool, run_tool
from scripts.backup.dump import dump_tenant
from scripts.backup.restore import RestoreResult, restore_checked


def _dump_file_for(path: Path, tenant_id: str) -> Path:
    """A per-schema set holds one file per tenant; other dumps are used as they are."""
    if path.is_dir():
        candidate = path / f"{tenant_id}.dump"
        if not candidate.exists():
            raise BackupError(f"{path} has no dump of {tenant_id}")
        return candidate
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    return path


async def _has_schema(server: Server, path: Path, schema: str) -> bool:
    listing = await run_tool(
        server, [pg_tool("pg_restore"), "--list", str(path)], what=f"pg_restore --list {path}"
    )
    marker = re.compile(rf"^\d+; \d+ \d+ (TABLE|SEQUENCE|FUNCTION|VIEW) {re.escape(schema)} ")
    return any(marker.match(line) for line in listing.splitlines())


async def restore_tenant(
    server: Server,
    path: Path,
    tenant_id: str,
    *,
    into: str = "scratch",
    scratch: str | None = None,
    backups_dir: Path | None = None,
    fleet: str = DEFAULT_FLEET,
) -> RestoreResult:
    validate_tenant_id(tenant_id)
    started = time.perf_counter()
    file = _dump_file_for(path, tenant_id)
    if not await _has_schema(server, file, tenant_id):
        raise BackupError(f"{file} holds no table of {tenant_id}")
    if into == "scratch":
        name = scratch or f"{tenant_id}_restored"
        await _restore_tenant_scratch(server, file, tenant_id, name)
        return RestoreResult(name, time.perf_counter() - started)
    if into != "inplace":
        raise BackupError(f"--into must be scratch or inplace, not {into!r}")
    return await _restore_tenant_inplace(server, file, tenant_id, backups_dir, started, fleet)


async def _restore_tenant_scratch(server: Server, file: Path, tenant_id: str, name: str) -> None:
    """Into schema `name` of the same database, owned by the admin (nothing is replaced).

    pg_restore cannot rename a schema, so it goes through a temporary database: restore there,
    rename the schema, dump it again and restore that here.
    """
    qname = quote_ident(name)
    conn = await asyncpg.connect(server.dsn)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", name):
            raise BackupError(
                f"schema {name} already exists: drop it (DROP SCHEMA {qname} CASCADE) or "
                "choose another name with --as"
            )
        temp = f"botfleet_restore_tmp_{secrets.token_hex(4)}"
        await conn.execute(f"CREATE DATABASE {quote_ident(temp)}")
        await conn.execute(f"REVOKE ALL ON DATABASE {quote_ident(temp)} FROM PUBLIC")
    finally:
        await conn.close()
    tmp_file = file.with_name(f".{name}-{secrets.token_hex(4)}.dump")
    try:
        tconn = await asyncpg.connect(server.with_database(temp))
        try:
            await tconn.execute(f"CREATE SCHEMA {quote_ident(tenant_id)}")
        finally:
            await tconn.close()
        await restore_checked(
            server,
            file,
            database=temp,
            options=[
                "--single-transaction",
                "--no-owner",
                "--no-privileges",
                f"--schema={tenant_id}",
            ],
            what=f"pg_restore of {tenant_id} into a temporary database",
            schemas=[tenant_id],
        )
        tconn = await asyncpg.connect(server.with_database(temp))
        try:
            await tconn.execute(f"ALTER SCHEMA {quote_ident(tenant_id)} RENAME TO {qname}")
        finally:
            await tconn.close()
        await pg_dump(
            server,
            tmp_file,
            schemas=[name],
            database=temp,
            keep_owners=False,
            keep_privileges=False,
            what=f"pg_dump of the renamed schema {name}",
            error=BackupError,
        )
        await run_tool(
            server,
            [
                pg_tool("pg_restore"),
                "--exit-on-error",
                "--single-transaction",
                "--no-owner",
                "--no-privileges",
                f"--dbname={server.url()}",
                str(tmp_file),
            ],
            what=f"pg_restore of {name}",
        )
    finally:
        tmp_file.unlink(missing_ok=True)
        conn = await asyncpg.connect(server.dsn)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(temp)} WITH (FORCE)")
        finally:
            await conn.close()


async def _restore_tenant_inplace(
    server: Server,
    file: Path,
    tenant_id: str,
    backups_dir: Path | None,
    started: float,
    fleet: str,
) -> RestoreResult:
    """Replace the tenant's schema with the one in `file`, owned by the tenant's owner role."""
    schema = quote_ident(tenant_id)
    login = login_role(tenant_id, fleet)
    conn = await asyncpg.connect(server.dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", login):
            raise BackupError(
                f"role {login} does not exist: restore the roles first (--roles "
                "<backup>.roles.sql) or provision the tenant again"
            )
        exists = bool(
            await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", tenant_id)
        )
    finally:
        await conn.close()
    safety: Path | None = None
    if exists:  # a copy of what is about to be replaced, in case the wrong file was chosen
        safety = (await dump_tenant(server, tenant_id, backups_dir or file.parent)).path
    aside = f"{tenant_id}_pre_restore"
    qaside = quote_ident(aside)
    conn = await asyncpg.connect(server.dsn)
    try:
        async with conn.transaction():
            await terminate_tenant_sessions(conn, tenant_id, fleet)
            await conn.execute(f"DROP SCHEMA IF EXISTS {qaside} CASCADE")
            if exists:
                await conn.execute(f"ALTER SCHEMA {schema} RENAME TO {qaside}")
            await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    try:
        # Created by the admin (--no-owner), audited before any row goes in, then handed to
        # the tenant's owner role with the login role's data grants (database.tenants).
        await restore_checked(
            server,
            file,
            database=server.database,
            options=[
                "--single-transaction",
                "--no-owner",
                "--no-privileges",
                f"--schema={tenant_id}",
            ],
            what=f"pg_restore of {tenant_id}",
            schemas=[tenant_id],
        )
        conn = await asyncpg.connect(server.dsn)
        try:
            await secure_tenant_schema(conn, tenant_id, fleet)
        finally:
            await conn.close()
    except BaseException:
        conn = await asyncpg.connect(server.dsn)
        try:
            async with conn.transaction():
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
                if exists:
                    await conn.execute(f"ALTER SCHEMA {qaside} RENAME TO {schema}")
        finally:
            await conn.close()
        raise
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {qaside} CASCADE")
    finally:
        await conn.close()
    note = f"the replaced schema was saved to {safety}" if safety else ""
    return RestoreResult(tenant_id, time.perf_counter() - started, safety, note)
