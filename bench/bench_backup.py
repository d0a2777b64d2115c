"""Whole-database backup and restore of N tenant schemas (issue 7: 300 tenants must work).

    python -m bench.bench_backup [--tenants 300] [--per-schema]

A scratch database with N seeded tenant schemas. Prints the lock budget check, a single-file
pg_dump, its restore into a new database (every tenant's tables compared by rows and md5), and
with --per-schema also the per-schema dump that `--mode auto` falls back to when
max_locks_per_transaction is short (slow: each pg_dump reads the whole catalog; 163 s for 300).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.fleet_seed import scratch_fleet
from database.identifiers import quote_ident
from scripts.backup import Server, dump_database, lock_budget, restore_database, table_fingerprints


def size_mib(path: Path) -> float:
    files = path.rglob("*") if path.is_dir() else [path]
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


async def prints(dsn: str, schemas: list[str]) -> dict[str, dict[str, tuple[int, str]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {s: await table_fingerprints(conn, s) for s in schemas}
    finally:
        await conn.close()


async def main(tenants: int, per_schema: bool) -> None:
    t0 = time.perf_counter()
    async with scratch_fleet(tenants) as (dsn, ids):
        print(f"seeded {tenants} tenants in {time.perf_counter() - t0:.1f} s")
        server = Server(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            budget = await lock_budget(conn)
        finally:
            await conn.close()
        print(budget.explain())
        with tempfile.TemporaryDirectory() as folder:
            whole = await dump_database(server, Path(folder), mode="whole")
            print(f"single-file dump: {whole.seconds:.1f} s, {size_mib(whole.path):.1f} MiB")
            target = f"{server.database}_restored"
            t1 = time.perf_counter()
            try:
                await restore_database(server, whole.path, into="scratch", name=target)
                print(f"restore into a new database: {time.perf_counter() - t1:.1f} s")
                t2 = time.perf_counter()
                same = await prints(dsn, ids) == await prints(server.with_database(target), ids)
                print(
                    f"all {tenants} tenants' tables equal (rows + md5): {same}"
                    f" (checked in {time.perf_counter() - t2:.1f} s)"
                )
            finally:
                admin = await asyncpg.connect(server.with_database("postgres"))
                await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(target)} WITH (FORCE)")
                await admin.close()
            if not per_schema:
                return
            per = await dump_database(server, Path(folder) / "per", mode="per-schema", jobs=2)
            print(
                f"per-schema dump (jobs 2): {per.seconds:.1f} s, {size_mib(per.path):.1f} MiB,"
                f" {per.schemas} tenant files"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--per-schema", action="store_true", help="also time the fallback")
    args = parser.parse_args()
    asyncio.run(main(args.tenants, args.per_schema))
