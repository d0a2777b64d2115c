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
- one tenant: `<tenant>-<stamp>.dump` (the same name the master uses for final backups), from
  the PostgreSQL server that holds it (and restored there);
- every other PostgreSQL server holding tenants (control.db_servers, its DSN read with
  ENCRYPTION_KEYS), with every whole-database dump: its database the same way, under
  `server-<name>/`; a server that cannot be dumped is an error (exit code 1);
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
import json
import os
import re
import sys
from pathlib import Path

import asyncpg

from core.logs import setup_logging
from core.secrets import SecretBox, SecretDecryptionError
from core.settings import (
    EncryptionSettings,
    FleetSettings,
    PostgresSettings,
    RedisSettings,
    SettingsError,
    load_settings,
)
from core.tenant_id import validate_tenant_id
from scripts.backup.checksum import fingerprint_digest, table_fingerprints
from scripts.backup.common import STAMP_RE, BackupError, Server, safe_name
from scripts.backup.dump import dump_database, dump_tenant, prune
from scripts.backup.plan import lock_budget, tenant_schemas
from scripts.backup.redis_rdb import dump_redis, prune_redis
from scripts.backup.restore import apply_roles
from scripts.backup.restore_db import restore_database
from scripts.backup.restore_schema import restore_tenant


def _server() -> Server:
    return Server(load_settings(PostgresSettings).database_url.get_secret_value())


async def _servers(
    server: Server, tenant_id: str | None = None
) -> tuple[list[tuple[str, Server]], list[str]]:
    """The other PostgreSQL servers holding tenants (control.db_servers, master_bot/dbservers.py),
    or only `tenant_id`'s when it is on one, their DSNs opened with ENCRYPTION_KEYS; and what
    could not be had."""
    conn = await asyncpg.connect(server.dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('control.db_servers') IS NOT NULL"):
            return [], []
        rows = await conn.fetch(
            "SELECT s.name, s.admin_dsn_enc FROM control.db_servers s"
            " WHERE s.admin_dsn_enc IS NOT NULL AND ($1::text IS NULL OR s.name ="
            " (SELECT db_server FROM control.tenants WHERE tenant_id = $1)) ORDER BY s.name",
            tenant_id,
        )
    finally:
        await conn.close()
    if not rows:
        return [], []
    try:
        box = SecretBox(load_settings(EncryptionSettings).encryption_keys.get_secret_value())
    except SettingsError:
        names = ", ".join(r["name"] for r in rows)
        return [], [f"{names}: ENCRYPTION_KEYS is not set, so its DSN cannot be read"]
    found: list[tuple[str, Server]] = []
    problems: list[str] = []
    for row in rows:
        try:
            found.append(
                (row["name"], Server(box.decrypt_server(row["name"], row["admin_dsn_enc"])))
            )
        except SecretDecryptionError as exc:
            problems.append(f"{row['name']}: {exc}")
    return found, problems


async def _cmd_dump(args: argparse.Namespace) -> int:
    server = _server()
    folder = Path(args.dir)
    if args.tenant:
        # From the PostgreSQL server that holds the tenant.
        there, problems = await _servers(server, args.tenant)
        if problems:
            print(f"PostgreSQL server {problems[0]}", file=sys.stderr)
            return 1
        result = await dump_tenant(there[0][1] if there else server, args.tenant, folder)
        prefix = args.tenant
    else:
        result = await dump_database(server, folder, mode=args.mode, jobs=args.jobs)
        prefix = safe_name(server.database)
    removed = prune(folder, prefix, args.keep)
    print(f"backup: {result.path} ({result.mode}, {result.schemas} tenant schema(s))")
    if result.roles:
        print(f"roles:  {result.roles}")
    failed: list[str] = []
    if not args.tenant:
        # Every other PostgreSQL server holding tenants: its database into server-<name>/.
        others, failed = await _servers(server)
        for name, other in others:
            sub = folder / f"server-{safe_name(name)}"
            try:
                done = await dump_database(other, sub, mode=args.mode, jobs=args.jobs)
            except BackupError as exc:
                failed.append(f"{name}: {exc}")
                continue
            removed += prune(sub, safe_name(other.database), args.keep)
            print(f"server {name}: {done.path} ({done.mode}, {done.schemas} tenant schema(s))")
        for problem in failed:
            print(
                f"ERROR: PostgreSQL server {problem}: its tenants are not backed up",
                file=sys.stderr,
            )
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
    return 1 if failed else 0


async def _cmd_restore(args: argparse.Namespace) -> int:
    server = _server()
    path = Path(args.path)
    if args.tenant:
        there, problems = await _servers(server, args.tenant)  # the server that holds it
        if problems:
            print(f"PostgreSQL server {problems[0]}", file=sys.stderr)
            return 1
        server = there[0][1] if there else server
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
    pattern = re.compile(rf"^(.+)-({STAMP_RE})(\.dump|\.d|\.roles\.sql|\.rdb)$")
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
