"""The two PostgreSQL roles of a tenant, and the rule that ties them to its schema.

- `<tenant_id>` logs in (the client bot's DATABASE_URL). It holds only data privileges
  (SELECT, INSERT, UPDATE, DELETE; sequences) in its schema: it cannot create, alter or drop
  anything, so no view, trigger, function, default or check of the tenant's own making exists.
- `<tenant_id>_owner` is NOLOGIN and owns the schema and every object in it. Only the platform
  uses it: migrations run as it.

Everything in a tenant schema is therefore platform code, which is what lets the platform
read tenant tables (stats, backups, restores, imports) with its own rights. A schema not in
this shape (created before the split and not yet converted, see
`database.tenants.secure_tenant_schema`) is never touched by platform code with platform rights.
"""

from __future__ import annotations

from core.tenant_id import validate_tenant_id

OWNER_SUFFIX = "_owner"


def login_role(tenant_id: str) -> str:
    """The role the tenant's bot logs in as (named like the tenant)."""
    return validate_tenant_id(tenant_id)


def owner_role(tenant_id: str) -> str:
    """The NOLOGIN role that owns the tenant's schema and objects (never a valid tenant id)."""
    return validate_tenant_id(tenant_id) + OWNER_SUFFIX
