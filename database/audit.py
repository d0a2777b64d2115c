"""Catalog checks that guard the isolation promises of DESIGN.md."""

from __future__ import annotations

import asyncpg


async def unpinned_security_definers(conn: asyncpg.Connection) -> list[str]:
    """`schema.function` of every SECURITY DEFINER function without a pinned search_path."""
    rows = await conn.fetch(
        """
        SELECT n.nspname || '.' || p.proname AS name
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND NOT EXISTS (
              SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) AS c WHERE c LIKE 'search_path=%'
          )
        ORDER BY 1
        """
    )
    return [r["name"] for r in rows]
