"""Apply control migrations, then tenant migrations to every tenant schema.

python -m scripts.migrate [--dry-run] [--concurrency N] [--tenant client_001 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import asyncpg

from core.logs import setup_logging
from core.secrets import SecretBox, SecretDecryptionError
from core.settings import (
    EncryptionSettings,
    FleetSettings,
    PostgresSettings,
    SettingsError,
    load_settings,
)
from core.tenant_id import validate_tenant_id
from database.locks import PlatformLockTimeoutError
from database.migrator import FleetReport, migrate_control, migrate_tenants
from database.pool import DatabaseUnavailableError, create_pool
from database.roles import NameTakenError
from database.tenants import TenantCodeError, secure_tenant_schema


async def known_tenants(conn: asyncpg.Connection) -> list[str]:
    """Tenant ids from the control schema (none yet when it is still to be created)."""
    if not await conn.fetchval("SELECT to_regclass('control.tenants') IS NOT NULL"):
        return []
    rows = await conn.fetch(
        "SELECT tenant_id FROM control.tenants WHERE status <> 'deleted' ORDER BY number"
    )
    return [r["tenant_id"] for r in rows]


async def tenants_elsewhere(conn: asyncpg.Connection, tenants: list[str]) -> dict[str, list[str]]:
    """{server: its tenants} for those of `tenants` not on the platform's own server."""
    if not await conn.fetchval("SELECT to_regclass('control.db_servers') IS NOT NULL"):
        return {}
    rows = await conn.fetch(
        "SELECT db_server, array_agg(tenant_id ORDER BY number) AS ids FROM control.tenants"
        " WHERE tenant_id = ANY($1::text[]) AND db_server <> 'default'"
        " AND provision_step <> 'allocated' GROUP BY db_server",  # allocated: no schema yet
        tenants,
    )
    return {r["db_server"]: list(r["ids"]) for r in rows}


async def migrate_elsewhere(
    control: asyncpg.Pool, server: str, tenants: list[str], args: argparse.Namespace, fleet: str
) -> FleetReport:
    """The same as for the platform's server, on `server` (its admin DSN decrypted with
    ENCRYPTION_KEYS); every tenant there fails with the reason when it cannot be reached."""
    started = time.perf_counter()
    try:
        box = SecretBox(load_settings(EncryptionSettings).encryption_keys.get_secret_value())
        async with control.acquire() as conn:
            sealed = await conn.fetchval(
                "SELECT admin_dsn_enc FROM control.db_servers WHERE name = $1", server
            )
        pool = await create_pool(box.decrypt_server(server, sealed), max_size=4, attempts=2)
    except (SettingsError, SecretDecryptionError, DatabaseUnavailableError) as exc:
        why = f"on PostgreSQL server {server!r}, not migrated: {exc}"
        return FleetReport([], {t: why for t in tenants}, time.perf_counter() - started)
    try:
        refused: dict[str, str] = {}
        if not args.dry_run:
            async with pool.acquire() as conn:
                for tenant_id in tenants:
                    try:
                        await secure_tenant_schema(conn, tenant_id, fleet)
                    except (TenantCodeError, NameTakenError, asyncpg.PostgresError) as exc:
                        refused[tenant_id] = str(exc)
        result = await migrate_tenants(
            pool,
            [t for t in tenants if t not in refused],
            concurrency=args.concurrency,
            dry_run=args.dry_run,
            fleet=fleet,
        )
        result.failures.update(refused)
        return result
    finally:
        await pool.close()


async def run(args: argparse.Namespace) -> int:
    settings = load_settings(PostgresSettings)
    fleet = load_settings(FleetSettings).fleet_name
    pool = await create_pool(
        settings.database_url.get_secret_value(), max_size=max(2, args.concurrency)
    )
    try:
        refused: dict[str, str] = {}
        async with pool.acquire() as conn:
            control = await migrate_control(conn, dry_run=args.dry_run)
            tenants = args.tenant or await known_tenants(conn)
            # Tenants on another PostgreSQL server (master_bot/dbservers.py) are migrated there.
            elsewhere = await tenants_elsewhere(conn, tenants)
            tenants = [t for t in tenants if all(t not in ids for ids in elsewhere.values())]
            if not args.tenant:
                # A tenant still provisioning (or failed before its database step) has no schema
                # yet: provisioning creates and migrates it, so it is skipped, not a failure
                # (one such tenant must not keep `migrate`, and with it the master, from starting).
                waiting = await conn.fetch(
                    "SELECT t.tenant_id FROM control.tenants t WHERE t.tenant_id = ANY($1::text[])"
                    " AND t.status IN ('provisioning', 'failed') AND NOT EXISTS"
                    " (SELECT 1 FROM pg_namespace n WHERE n.nspname = t.tenant_id)",
                    tenants,
                )
                for row in waiting:
                    print(f"{row['tenant_id']}: no schema yet (provisioning creates it): skipped")
                tenants = [t for t in tenants if t not in {r["tenant_id"] for r in waiting}]
            if not args.dry_run:
                # Roles, grants and session limits re-applied (a tenant may have changed its
                # own defaults); schemas from before the owner split converted, or refused.
                for tenant_id in tenants:
                    try:
                        await secure_tenant_schema(conn, tenant_id, fleet)
                    except (
                        TenantCodeError,
                        NameTakenError,
                        PlatformLockTimeoutError,
                        asyncpg.PostgresError,
                    ) as exc:
                        refused[tenant_id] = str(exc)
        verb = "pending" if args.dry_run else "applied"
        done = control.pending if args.dry_run else control.applied
        print(f"control: {len(done)} {verb}" + (f" ({', '.join(done)})" if done else ""))
        result = await migrate_tenants(
            pool,
            [t for t in tenants if t not in refused],
            concurrency=args.concurrency,
            dry_run=args.dry_run,
            fleet=fleet,
        )
        result.failures.update(refused)
        for server, ids in elsewhere.items():
            there = await migrate_elsewhere(pool, server, ids, args, fleet)
            result.reports += there.reports
            result.failures.update(there.failures)
            tenants += ids
        for report in sorted(result.reports, key=lambda r: r.schema):
            names = report.pending if args.dry_run else report.applied
            if names:
                print(f"{report.schema}: {len(names)} {verb} ({', '.join(names)})")
        for tenant_id, error in sorted(result.failures.items()):
            print(f"{tenant_id}: FAILED: {error}", file=sys.stderr)
        print(
            f"tenants: {len(tenants)} checked, {len(result.failures)} failed, "
            f"{result.seconds:.2f}s (concurrency {args.concurrency})"
        )
        return 1 if result.failures else 0
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.migrate", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="list pending migrations only")
    parser.add_argument("--concurrency", type=int, default=8, help="tenant schemas at once")
    parser.add_argument(
        "--tenant",
        action="append",
        type=validate_tenant_id,
        default=[],
        help="only this tenant (repeatable)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
