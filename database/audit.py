"""Catalog checks that guard the isolation promises of docs/architecture.md."""

from __future__ import annotations

import re

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


# Functions an expression in a tenant schema (a default, a check, an index) may call: the
# built-in immutable ones (no side effects, no reads) and these few volatile ones our tenant
# migrations use. Anything else (set_config('role', …), pg_read_file, a tenant's own function)
# would run with the rights of whoever writes the row: that is tenant code.
SAFE_VOLATILE_FUNCTIONS = frozenset(
    {
        "now",
        "nextval",
        "statement_timestamp",
        "transaction_timestamp",
        "clock_timestamp",
        "gen_random_uuid",
    }
)
_EXPR_FUNC_RE = re.compile(r":(?:funcid|opfuncid) (\d+)")
_EXPR_OP_RE = re.compile(r":opno (\d+)")

# Code-carrying objects in a schema. Only catalogs are read: nothing here calls tenant code.
_CODE_OBJECTS = """
    SELECT 'function ' || p.oid::regprocedure::text AS what
      FROM pg_proc p WHERE p.pronamespace = $1::regnamespace
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                          ELSE 'foreign table ' END || c.relname
      FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('v', 'm', 'f')
    UNION ALL
    SELECT 'trigger ' || t.tgname || ' on ' || c.relname
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT 'rule ' || r.rulename || ' on ' || c.relname
      FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
     WHERE c.relnamespace = $1::regnamespace AND c.relkind NOT IN ('v', 'm')
    UNION ALL
    SELECT 'policy ' || pol.polname || ' on ' || c.relname
      FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
     WHERE c.relnamespace = $1::regnamespace
    UNION ALL
    SELECT 'row level security on ' || c.relname
      FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relrowsecurity
    UNION ALL
    SELECT 'type ' || t.typname
      FROM pg_type t WHERE t.typnamespace = $1::regnamespace AND t.typtype IN ('d', 'r', 'm', 'b')
       AND t.typelem = 0
    UNION ALL
    SELECT 'operator ' || o.oid::regoperator::text
      FROM pg_operator o WHERE o.oprnamespace = $1::regnamespace
    UNION ALL
    SELECT 'conversion ' || v.conname
      FROM pg_conversion v WHERE v.connamespace = $1::regnamespace
"""

# The stored expression trees of defaults, checks/exclusions and index expressions/predicates.
_EXPRESSIONS = """
    SELECT 'default of ' || c.relname || '.' || a.attname AS what, ad.adbin::text AS tree
      FROM pg_attrdef ad JOIN pg_class c ON c.oid = ad.adrelid
      JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
     WHERE c.relnamespace = $1::regnamespace
    UNION ALL
    SELECT 'constraint ' || co.conname, co.conbin::text
      FROM pg_constraint co WHERE co.connamespace = $1::regnamespace AND co.conbin IS NOT NULL
    UNION ALL
    SELECT 'index ' || c.relname, coalesce(i.indexprs::text, '') || coalesce(i.indpred::text, '')
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE c.relnamespace = $1::regnamespace
       AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
"""


async def tenant_code_objects(conn: asyncpg.Connection, schema: str) -> list[str]:
    """What in `schema` would run as code when the platform reads or writes it.

    Functions, views, triggers, rules, policies, row level security, types and operators of
    the schema, and defaults, checks and index expressions that call anything but a safe
    built-in. Tenant migrations create none of these (a test keeps it so), so an empty list
    means the platform may read and write the schema's tables with its own rights.
    """
    found = [r["what"] for r in await conn.fetch(_CODE_OBJECTS, schema)]
    for row in await conn.fetch(_EXPRESSIONS, schema):
        tree = row["tree"]
        ids = {int(x) for x in _EXPR_FUNC_RE.findall(tree)}
        ops = [int(x) for x in _EXPR_OP_RE.findall(tree)]
        if ops:
            codes = await conn.fetch(
                "SELECT oprcode::oid AS f FROM pg_operator WHERE oid = ANY($1::oid[])", ops
            )
            ids |= {r["f"] for r in codes}
        unsafe = await conn.fetch(
            """
            SELECT p.oid::regprocedure::text AS fn FROM pg_proc p
             WHERE p.oid = ANY($1::oid[])
               AND NOT (p.pronamespace = 'pg_catalog'::regnamespace
                        AND (p.provolatile = 'i' OR p.proname = ANY($2::text[])))
            """,
            sorted(ids),
            sorted(SAFE_VOLATILE_FUNCTIONS),
        )
        found.extend(f"{row['what']} calls {fn['fn']}" for fn in unsafe)
    return sorted(found)
