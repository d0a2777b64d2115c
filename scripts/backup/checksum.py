"""Rows and an md5 per table: what restore drills compare before and after."""

from __future__ import annotations

import hashlib
import json

import asyncpg

from database.identifiers import quote_ident


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
