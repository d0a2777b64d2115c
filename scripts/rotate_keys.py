"""Re-encrypt every stored secret under the newest encryption key.

    python -m scripts.rotate_keys [--dry-run]

Rotation, step by step (docs/operations.md):
1. generate a key (`python -m core.secrets`) and put it FIRST in ENCRYPTION_KEYS, keeping the
   old ones after it; restart the master and the sales bot (new secrets use the new key, old
   ones still open);
2. run this script: every ciphertext of control.tenants (bot token, database and Redis
   passwords, the bots' webhook secret_token), of control.db_servers (the DSNs of the
   PostgreSQL servers holding tenants) and of control.sales_orders (bot tokens waiting for the
   master) is re-encrypted under the first key; rows are updated only when they still hold the ciphertext that was read,
   so a concurrent change by the master is never overwritten;
3. the script then checks that the first key alone opens everything; when it says so, remove
   the old keys from ENCRYPTION_KEYS and restart again.

A ciphertext that no configured key opens is reported (tenant and column, never a secret) and
left as it is; the exit code is 1 then.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from core.logs import setup_logging
from core.secrets import SecretBox, SecretDecryptionError, parse_keys
from core.settings import EncryptionSettings, PostgresSettings, load_settings

# control.tenants: the bot token, the database and Redis passwords, the webhook secret_token
# (migration 0014), each bound to its tenant id.
TENANT_COLUMNS = ("bot_token_enc", "db_password_enc", "redis_password_enc", "webhook_secret_enc")
_TENANT_SELECT = "SELECT tenant_id, " + ", ".join(TENANT_COLUMNS) + " FROM control.tenants"
SERVER_COLUMNS = ("admin_dsn_enc", "tenant_dsn_enc")  # control.db_servers (migration 0019)


@dataclass(slots=True)
class RotationReport:
    rotated: int = 0
    unchanged_rows: int = 0  # changed by someone else meanwhile: left to the next run
    failures: list[str] = field(default_factory=list)
    verified: int = 0
    unverified: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unverified


class _Sealer:
    """The sales bot's Vault (context-bound keys), when the sales bot is installed."""

    def __init__(self, keys: str) -> None:
        from sales_bot.vault import Vault

        self.vault = Vault(keys)

    def rotate(self, context: str, ciphertext: str) -> str:
        return self.vault.seal(context, self.vault.open(context, ciphertext))

    def check(self, context: str, ciphertext: str) -> None:
        self.vault.open(context, ciphertext)


def _sealer(keys: str) -> _Sealer | None:
    try:
        return _Sealer(keys)
    except ImportError:
        return None


async def rotate_secrets(
    conn: asyncpg.Connection, keys: str, *, dry_run: bool = False
) -> RotationReport:
    """Re-encrypt under the first of `keys`, then verify with the first key alone."""
    box = SecretBox(keys)
    primary = parse_keys(keys)[0].decode()
    report = RotationReport()
    rows = await conn.fetch(_TENANT_SELECT + " ORDER BY number")
    for row in rows:
        tenant_id = row["tenant_id"]
        for column in TENANT_COLUMNS:
            old = row[column]
            if not old:
                continue
            try:
                new = box.rotate(tenant_id, old)
            except SecretDecryptionError:
                report.failures.append(f"{tenant_id}.{column}: no configured key opens it")
                continue
            if dry_run:
                report.rotated += 1
                continue
            # column is one of TENANT_COLUMNS (a fixed name), values are parameters
            done = await conn.fetchval(
                f"UPDATE control.tenants SET {column} = $1"
                f" WHERE tenant_id = $2 AND {column} = $3 RETURNING true",
                new,
                tenant_id,
                old,
            )
            if done:
                report.rotated += 1
            else:
                report.unchanged_rows += 1
    if await conn.fetchval("SELECT to_regclass('control.db_servers') IS NOT NULL"):
        await _rotate_servers(conn, box, report, dry_run=dry_run)
    sealer = _sealer(keys)
    orders_table = await conn.fetchval("SELECT to_regclass('control.sales_orders') IS NOT NULL")
    if orders_table and sealer is not None:
        await _rotate_orders(conn, sealer, report, dry_run=dry_run)
    if not dry_run:
        await verify(conn, primary, report)
    return report


async def _rotate_servers(
    conn: asyncpg.Connection, box: SecretBox, report: RotationReport, *, dry_run: bool
) -> None:
    """The DSNs of the PostgreSQL servers other than the platform's (master_bot/dbservers.py)."""
    rows = await conn.fetch(
        "SELECT name, admin_dsn_enc, tenant_dsn_enc FROM control.db_servers"
        " WHERE admin_dsn_enc IS NOT NULL ORDER BY name"
    )
    for row in rows:
        for column in SERVER_COLUMNS:
            old = row[column]
            if not old:
                continue
            try:
                new = box.rotate_server(row["name"], old)
            except SecretDecryptionError:
                report.failures.append(
                    f"db server {row['name']}.{column}: no configured key opens it"
                )
                continue
            if dry_run:
                report.rotated += 1
                continue
            done = await conn.fetchval(
                f"UPDATE control.db_servers SET {column} = $1"
                f" WHERE name = $2 AND {column} = $3 RETURNING true",
                new,
                row["name"],
                old,
            )
            if done:
                report.rotated += 1
            else:
                report.unchanged_rows += 1


async def _rotate_orders(
    conn: asyncpg.Connection, sealer: _Sealer, report: RotationReport, *, dry_run: bool
) -> None:
    from sales_bot.vault import VaultError, order_context

    rows = await conn.fetch(
        "SELECT order_id, bot_token_enc FROM control.sales_orders WHERE bot_token_enc IS NOT NULL"
    )
    for row in rows:
        context = order_context(row["order_id"])
        try:
            new = sealer.rotate(context, row["bot_token_enc"])
        except VaultError:
            report.failures.append(f"sales order {row['order_id']}: no configured key opens it")
            continue
        if dry_run:
            report.rotated += 1
            continue
        done = await conn.fetchval(
            "UPDATE control.sales_orders SET bot_token_enc = $1"
            " WHERE order_id = $2 AND bot_token_enc = $3 RETURNING true",
            new,
            row["order_id"],
            row["bot_token_enc"],
        )
        if done:
            report.rotated += 1
        else:
            report.unchanged_rows += 1


async def verify(conn: asyncpg.Connection, primary: str, report: RotationReport) -> None:
    """Every stored ciphertext opens with `primary` alone (then the old keys can go)."""
    box = SecretBox(primary)
    rows = await conn.fetch(_TENANT_SELECT)
    for row in rows:
        for column in TENANT_COLUMNS:
            if row[column]:
                _check(
                    f"{row['tenant_id']}.{column}",
                    report,
                    box.decrypt,
                    row["tenant_id"],
                    row[column],
                )
    if await conn.fetchval("SELECT to_regclass('control.db_servers') IS NOT NULL"):
        for row in await conn.fetch(
            "SELECT name, admin_dsn_enc, tenant_dsn_enc FROM control.db_servers"
            " WHERE admin_dsn_enc IS NOT NULL"
        ):
            for column in SERVER_COLUMNS:
                if row[column]:
                    _check(
                        f"db server {row['name']}.{column}",
                        report,
                        box.decrypt_server,
                        row["name"],
                        row[column],
                    )
    from sales_bot.vault import order_context

    sealer = _sealer(primary)
    if sealer is not None and await conn.fetchval(
        "SELECT to_regclass('control.sales_orders') IS NOT NULL"
    ):
        for row in await conn.fetch(
            "SELECT order_id, bot_token_enc FROM control.sales_orders"
            " WHERE bot_token_enc IS NOT NULL"
        ):
            _check(
                f"sales order {row['order_id']}",
                report,
                sealer.check,
                order_context(row["order_id"]),
                row["bot_token_enc"],
            )


def _check(
    label: str, report: RotationReport, fn: Callable[[str, str], object], *args: str
) -> None:
    try:
        fn(*args)
    except ValueError:  # SecretDecryptionError and VaultError are ValueErrors
        report.unverified.append(label)
    else:
        report.verified += 1


async def run(args: argparse.Namespace) -> int:
    database = load_settings(PostgresSettings).database_url.get_secret_value()
    keys = load_settings(EncryptionSettings).encryption_keys.get_secret_value()
    if len(parse_keys(keys)) < 2:
        print(
            "note: ENCRYPTION_KEYS holds one key: put the new key first and keep the old ones "
            "after it, or there is nothing to rotate from",
            file=sys.stderr,
        )
    conn = await asyncpg.connect(database)
    try:
        report = await rotate_secrets(conn, keys, dry_run=args.dry_run)
    finally:
        await conn.close()
    verb = "would be re-encrypted" if args.dry_run else "re-encrypted"
    print(f"{report.rotated} secret(s) {verb} under the first key")
    if report.unchanged_rows:
        print(f"{report.unchanged_rows} changed meanwhile by the master: run again")
    for failure in report.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if not args.dry_run:
        if report.unverified:
            for label in report.unverified:
                print(f"NOT under the first key: {label}", file=sys.stderr)
        else:
            print(
                f"verified: all {report.verified} secret(s) open with the first key alone; "
                "the old keys can be removed from ENCRYPTION_KEYS"
            )
    return 0 if report.ok and not report.unchanged_rows else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.rotate_keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
