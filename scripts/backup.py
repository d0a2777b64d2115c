"""Backups and restores of the platform database (`make db-backup`, `make db-restore`).

    python -m scripts.backup dump [--tenant client_001] [--dir backups] [--keep N]
                                  [--mode auto|whole|per-schema] [--jobs 2] [--no-redis]
    python -m scripts.backup restore PATH [--tenant client_001] [--into scratch|inplace]
                                  [--as SCHEMA_OR_DATABASE] [--roles ROLES.sql] [--yes]
    python -m scripts.backup check        # what a whole dump would need (locks) and do
    python -m scripts.backup checksum [--schema client_001 ...]   # rows and md5 per table
    python -m scripts.backup list [--dir backups]

Files (UTC time stamps, newest sort last; written under a `.partial` name and renamed when
complete, so a failed dump never looks like a backup):
- whole database:  `<db>-<stamp>.dump` (pg_dump custom format) and `<db>-<stamp>.roles.sql`
  (`pg_dumpall --roles-only`; without superuser rights `--no-role-passwords`);
- whole database, per schema: `<db>-<stamp>.d/` with `_base.dump` (everything but the tenant
  schemas), one `<tenant>.dump` per tenant schema, `manifest.json`; all taken from one exported
  snapshot, so the set is as consistent as a single dump;
- one tenant: `<tenant>-<stamp>.dump` (the same name the master uses for final backups);
- Redis, with every whole-database dump (`--no-redis` skips it): `redis-<stamp>.rdb`, a
  point-in-time RDB taken with `redis-cli --rdb` as the admin user of REDIS_URL (over the
  replication protocol: nothing of the server's disk is needed). It holds dialog state, throttling
  and assistant counters; tenant ACL users live in the server's users.acl and are re-created by
  the master from PostgreSQL. A Redis that cannot be dumped is reported, not fatal.

pg_dump holds an ACCESS SHARE lock on every table it dumps, in one transaction, and all locks
live in one shared table of max_locks_per_transaction x (max_connections +
max_prepared_transactions) slots. `--mode auto` (the default) compares the relations to dump
with half of that and dumps per schema when a single dump would not fit (and says so).

`--keep N` (BACKUP_KEEP) removes all but the N newest backups of the same kind after a
successful dump (0 keeps everything).

Restores: `--tenant` restores one schema (from a tenant dump, a whole dump or a per-schema set)
either into a scratch schema beside the live one (`--into scratch`, default name
`<tenant>_restored`, owned by the admin: for inspection and copying rows) or in place (`--into
inplace`: the tenant's sessions are closed, the current schema is dumped first as a safety copy,
then replaced). Without `--tenant` the whole database is restored into a new database
(`--into scratch`, `<db>_restore_<stamp>`) or in place (`--into inplace --yes`: the database is
dropped and recreated). `--roles` applies a roles file first (on a new cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from core.files import PRIVATE_UMASK, ensure_private_dir
from core.logs import redact, setup_logging
from core.settings import FleetSettings, PostgresSettings, RedisSettings, load_settings
from core.tenant_id import TENANT_ID_RE, validate_tenant_id
from database.audit import tenant_code_objects
from database.identifiers import quote_ident
from database.pg_tools import PgServer, pg_dump, run_pg_tool
from database.pg_tools import pg_tool as _pg_tool
from database.roles import DEFAULT_FLEET, fleet_prefix, login_role
from database.tenants import (
    harden_database,
    quote_ident_any,
    secure_tenant_schema,
    terminate_tenant_sessions,
)

STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_STAMP_RE = r"\d{8}T\d{12}Z"
PARTIAL = ".partial"
BASE_FILE = "_base.dump"
MANIFEST = "manifest.json"
LOCKED_KINDS = ("r", "p", "S", "v", "m", "f")  # conservative: what pg_dump may lock


class BackupError(RuntimeError):
    """A dump or restore failed; the message says why (never a password)."""


# ---------------------------------------------------------------------------------- tools


def pg_tool(name: str) -> str:
    """Path of a PostgreSQL client program (database/pg_tools.py); BackupError when missing."""
    return _pg_tool(name, BackupError)


Server = PgServer  # where to connect, the password kept off command lines


async def run_tool(server: Server, argv: Sequence[str], *, what: str, limit: float = 3600) -> str:
    """Run a client program; BackupError with the tail of its stderr when it fails."""
    return await run_pg_tool(server, argv, what=what, limit=limit, error=BackupError)


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(STAMP_FORMAT)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# ---------------------------------------------------------------------------------- planning


@dataclass(frozen=True, slots=True)
class LockBudget:
    relations: int
    max_locks_per_transaction: int
    max_connections: int
    max_prepared_transactions: int

    @property
    def capacity(self) -> int:
        """Slots of the shared lock table."""
        return self.max_locks_per_transaction * (
            self.max_connections + self.max_prepared_transactions
        )

    @property
    def allowance(self) -> int:
        """What one dump may take: half the table, the rest stays for the running platform."""
        return self.capacity // 2

    @property
    def fits(self) -> bool:
        return self.relations <= self.allowance

    def needed_max_locks(self) -> int:
        """The smallest max_locks_per_transaction with which a single dump would fit."""
        slots = self.max_connections + self.max_prepared_transactions
        return -(-2 * self.relations // max(1, slots))

    def explain(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        text = (
            f"a single pg_dump locks ~{self.relations} relations; the lock table has "
            f"{self.capacity} slots (max_locks_per_transaction={self.max_locks_per_transaction}"
            f" x (max_connections={self.max_connections} + max_prepared_transactions="
            f"{self.max_prepared_transactions})), half of it allowed for the dump: {verdict}"
        )
        if not self.fits:
            text += (
                f". Dumping per schema instead; for single-file dumps raise "
                f"max_locks_per_transaction to at least {self.needed_max_locks()} (restart needed)"
            )
        return text


async def lock_budget(conn: asyncpg.Connection) -> LockBudget:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "        WHERE c.relkind::text = ANY($1::text[])"
        "          AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        "          AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%') AS rels,"
        " current_setting('max_locks_per_transaction')::int AS locks,"
        " current_setting('max_connections')::int AS conns,"
        " current_setting('max_prepared_transactions')::int AS prepared",
        list(LOCKED_KINDS),
    )
    assert row is not None
    return LockBudget(row["rels"], row["locks"], row["conns"], row["prepared"])


async def tenant_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE nspname ~ '^client_[0-9]{1,12}$' ORDER BY nspname"
    )
    return [r["nspname"] for r in rows]


# ---------------------------------------------------------------------------------- dumps


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
    base = f"{_safe_name(server.database)}-{stamp()}"
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


# ---------------------------------------------------------------------------------- retention


def _backups_of(folder: Path, prefix: str) -> list[Path]:
    pattern = re.compile(rf"^{re.escape(prefix)}-({_STAMP_RE})(\.dump|\.d)$")
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


# ---------------------------------------------------------------------------------- Redis

REDIS_PREFIX = "redis"


async def dump_redis(url: str, folder: Path, *, limit: float = 900) -> Path:
    """`redis-cli --rdb` into `<folder>/redis-<stamp>.rdb` (0600, written as `.partial`)."""
    from scripts.redis_cli import command

    if shutil.which("redis-cli") is None:
        raise BackupError("redis-cli is not installed (Debian/Ubuntu: apt-get install redis-tools)")
    ensure_private_dir(folder)
    target = folder / f"{REDIS_PREFIX}-{stamp()}.rdb"
    partial = target.with_name(target.name + PARTIAL)
    argv, env = command(url, ["--rdb", str(partial)])
    process = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **env},
        umask=PRIVATE_UMASK,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        partial.unlink(missing_ok=True)
        raise BackupError(f"redis-cli --rdb took longer than {limit:.0f} s") from None
    if process.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        reason = redact((err or out).decode(errors="replace").strip(), list(env.values()))
        raise BackupError(f"redis-cli --rdb failed: {reason[-500:]}")
    partial.chmod(0o600)
    partial.rename(target)
    return target


def prune_redis(folder: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest `redis-<stamp>.rdb`."""
    if keep <= 0 or not folder.is_dir():
        return []
    pattern = re.compile(rf"^{REDIS_PREFIX}-({_STAMP_RE})\.rdb$")
    found = sorted(p.name for p in folder.iterdir() if pattern.match(p.name))
    removed = [folder / name for name in found[:-keep]]
    for path in removed:
        path.unlink()
    return removed


# ---------------------------------------------------------------------------------- restores


@dataclass(slots=True)
class RestoreResult:
    target: str  # schema or database restored into
    seconds: float
    safety_dump: Path | None = None
    note: str = ""


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


# ---------------------------------------------------------------------------------- checksums


async def table_fingerprints(conn: asyncpg.Connection, schema: str) -> dict[str, tuple[int, str]]:
    """{table: (rows, md5 of all rows in a stable order)} for every table of `schema`."""
    qschema = quote_ident(schema)
    tables = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
        schema,
    )
    result: dict[str, tuple[int, str]] = {}
    for t in tables:
        table = f"{qschema}.{quote_ident(t['relname'])}"
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text),"
            f" '')) AS digest FROM {table} AS x"
        )
        assert row is not None
        result[t["relname"]] = (row["n"], row["digest"])
    return result


def fingerprint_digest(prints: dict[str, dict[str, tuple[int, str]]]) -> str:
    payload = json.dumps(prints, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


# ---------------------------------------------------------------------------------- CLI


def _server() -> Server:
    return Server(load_settings(PostgresSettings).database_url.get_secret_value())


async def _cmd_dump(args: argparse.Namespace) -> int:
    server = _server()
    folder = Path(args.dir)
    if args.tenant:
        result = await dump_tenant(server, args.tenant, folder)
        prefix = args.tenant
    else:
        result = await dump_database(server, folder, mode=args.mode, jobs=args.jobs)
        prefix = _safe_name(server.database)
    removed = prune(folder, prefix, args.keep)
    print(f"backup: {result.path} ({result.mode}, {result.schemas} tenant schema(s))")
    if result.roles:
        print(f"roles:  {result.roles}")
    if not args.tenant and not args.no_redis:
        try:
            url = load_settings(RedisSettings).redis_url.get_secret_value()
            print(f"redis:  {await dump_redis(url, folder)}")
            removed += prune_redis(folder, args.keep)
        except (BackupError, SystemExit) as exc:
            print(f"WARNING: Redis not backed up: {exc or 'REDIS_URL is not set'}", file=sys.stderr)
    print(f"took {result.seconds:.1f} s")
    if result.note:
        print(f"note: {result.note}")
    for path in removed:
        print(f"removed (keeping the {args.keep} newest): {path}")
    return 0


async def _cmd_restore(args: argparse.Namespace) -> int:
    server = _server()
    path = Path(args.path)
    if args.tenant:
        if args.roles:
            await apply_roles(server, Path(args.roles))
        result = await restore_tenant(
            server,
            path,
            args.tenant,
            into=args.into,
            scratch=args.as_,
            backups_dir=Path(args.dir),
            fleet=load_settings(FleetSettings).fleet_name,
        )
        where = "schema"
    else:
        if args.into == "inplace" and not args.yes:
            print(
                f"refusing to replace database {server.database} without --yes (YES=1 with "
                "make): everything written since the backup is lost",
                file=sys.stderr,
            )
            return 2
        result = await restore_database(
            server,
            path,
            into=args.into,
            name=args.as_,
            roles=Path(args.roles) if args.roles else None,
            jobs=args.jobs,
            fleet=load_settings(FleetSettings).fleet_name,
        )
        where = "database"
    print(f"restored {path} into {where} {result.target} in {result.seconds:.1f} s")
    if result.note:
        print(f"note: {result.note}")
    if args.into == "inplace":
        print("next: `make migrate` (the backup may predate newer migrations)")
    return 0


async def _cmd_check(_: argparse.Namespace) -> int:
    server = _server()
    conn = await asyncpg.connect(server.dsn)
    try:
        budget = await lock_budget(conn)
        schemas = await tenant_schemas(conn)
    finally:
        await conn.close()
    print(f"{server.database}: {len(schemas)} tenant schema(s)")
    print(budget.explain())
    print(f"`make db-backup` would dump {'one file' if budget.fits else 'per schema'}")
    return 0


async def _cmd_checksum(args: argparse.Namespace) -> int:
    server = _server()
    conn = await asyncpg.connect(server.dsn)
    try:
        schemas = args.schema or await tenant_schemas(conn)
        prints = {s: await table_fingerprints(conn, s) for s in schemas}
    finally:
        await conn.close()
    if args.json:
        print(json.dumps(prints, indent=2, sort_keys=True))
    else:
        for schema, tables in prints.items():
            for table, (rows, digest) in tables.items():
                print(f"{schema}.{table}\t{rows}\t{digest}")
        print(f"digest of all: {fingerprint_digest(prints)}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        print(f"no backups folder {folder}")
        return 0
    pattern = re.compile(rf"^(.+)-({_STAMP_RE})(\.dump|\.d|\.roles\.sql|\.rdb)$")
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if pattern.match(path.name):
            size = (
                sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                if path.is_dir()
                else path.stat().st_size
            )
            print(f"{path}\t{size / 2**20:.1f} MiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    dump = sub.add_parser("dump", help="dump the database or one tenant")
    dump.add_argument("--tenant", type=validate_tenant_id)
    dump.add_argument("--dir", default=os.environ.get("BACKUPS_DIR", "backups"))
    dump.add_argument("--keep", type=int, default=int(os.environ.get("BACKUP_KEEP", "0")))
    dump.add_argument("--mode", choices=("auto", "whole", "per-schema"), default="auto")
    dump.add_argument("--jobs", type=int, default=2, help="pg_dump processes at once (per-schema)")
    dump.add_argument("--no-redis", action="store_true", help="skip the Redis RDB")
    restore = sub.add_parser("restore", help="restore a tenant or the database")
    restore.add_argument("path")
    restore.add_argument("--tenant", type=validate_tenant_id)
    restore.add_argument("--into", choices=("scratch", "inplace"), default="scratch")
    restore.add_argument("--as", dest="as_", help="name of the scratch schema or database")
    restore.add_argument("--roles", help="a .roles.sql file to apply first")
    restore.add_argument("--yes", action="store_true", help="confirm an in-place database restore")
    restore.add_argument("--dir", default=os.environ.get("BACKUPS_DIR", "backups"))
    restore.add_argument("--jobs", type=int, default=2)
    sub.add_parser("check", help="would a single-file dump fit the lock table?")
    checksum = sub.add_parser("checksum", help="rows and md5 of every table of tenant schemas")
    checksum.add_argument("--schema", action="append", default=[])
    checksum.add_argument("--json", action="store_true")
    listing = sub.add_parser("list", help="backups in the folder")
    listing.add_argument("--dir", default=os.environ.get("BACKUPS_DIR", "backups"))
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    try:
        if args.command == "list":
            return _cmd_list(args)
        handler = {
            "dump": _cmd_dump,
            "restore": _cmd_restore,
            "check": _cmd_check,
            "checksum": _cmd_checksum,
        }[args.command]
        return asyncio.run(handler(args))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
