"""The names a tenant has outside its own schema, and who may own them.

Per tenant, in one fleet:
- `<tenant_id>` logs in (the client bot's DATABASE_URL). It holds only data privileges
  (SELECT, INSERT, UPDATE, DELETE; sequences) in its schema: it cannot create, alter or drop
  anything, so no view, trigger, function, default or check of the tenant's own making exists.
- `<tenant_id>_owner` is NOLOGIN and owns the schema and every object in it. Only the platform
  uses it: migrations run as it.
- the Redis ACL user is named like the login role, its keys start with `<login role>:`.

Everything in a tenant schema is therefore platform code, which is what lets the platform
read tenant tables (stats, backups, restores, imports) with its own rights. A schema not in
this shape (created before the split and not yet converted, see
`database.tenants.secure_tenant_schema`) is never touched by platform code with platform rights.

**Fleets.** Roles are cluster-wide, ACL users server-wide: a second fleet (staging beside
production) sharing the servers needs other names. Every fleet but the default one
(`FLEET_NAME=botfleet`) prefixes them: `<fleet>_client_001`, `<fleet>_client_001_owner`,
keys `<fleet>_client_001:*`. The default fleet keeps the bare names, so an existing
installation renames nothing (no role, password or Redis key moves). Names alone don't stop two
fleets left at the same FLEET_NAME from meeting, so each fleet also has an id
(`control.fleet`) that it marks its roles and ACL users with; a master refuses to take over a
role or ACL user bearing another fleet's mark.
"""

from __future__ import annotations

import re

from core.tenant_id import validate_tenant_id

OWNER_SUFFIX = "_owner"
DEFAULT_FLEET = "botfleet"
_FLEET_NAME = r"[a-z][a-z0-9_]{0,19}"
_FLEET_RE = re.compile(_FLEET_NAME + r"\Z")


def validate_fleet_name(fleet: str) -> str:
    if not isinstance(fleet, str) or not _FLEET_RE.match(fleet):
        raise ValueError(
            f"invalid fleet name {fleet!r}: 1-20 characters, a lowercase letter, then lowercase "
            "letters, digits or _"
        )
    return fleet


def fleet_prefix(fleet: str = DEFAULT_FLEET) -> str:
    """'' for the default fleet, `<fleet>_` for any other."""
    return "" if validate_fleet_name(fleet) == DEFAULT_FLEET else f"{fleet}_"


def login_role(tenant_id: str, fleet: str = DEFAULT_FLEET) -> str:
    """The role the tenant's bot logs in as; also its Redis ACL user."""
    return fleet_prefix(fleet) + validate_tenant_id(tenant_id)


def owner_role(tenant_id: str, fleet: str = DEFAULT_FLEET) -> str:
    """The NOLOGIN role that owns the tenant's schema and objects (never a valid tenant id)."""
    return login_role(tenant_id, fleet) + OWNER_SUFFIX


def is_owner_role(role: str | None, tenant_id: str, fleet: str | None = None) -> bool:
    """Whether `role` has the shape of the owner role of schema `tenant_id`: exactly
    `owner_role(tenant_id, fleet)` when the fleet is known, else that of any fleet
    (`<tenant>_owner` or `<fleet>_<tenant>_owner`). Only a schema so owned holds platform code
    only, and may be read or written with platform rights (the one check for the migrator,
    stats and the legacy import)."""
    if role is None:
        return False
    if fleet is not None:
        return role == owner_role(tenant_id, fleet)
    shape = f"(?:{_FLEET_NAME}_)?{re.escape(validate_tenant_id(tenant_id))}{OWNER_SUFFIX}"
    return re.fullmatch(shape, role) is not None


def fleet_mark(fleet: str, fleet_id: str) -> str:
    """What marks a role or ACL user as this fleet's (its name and its `control.fleet` id)."""
    return f"botfleet fleet={validate_fleet_name(fleet)} id={fleet_id}"


class NameTakenError(RuntimeError):
    """A role or ACL user of that name exists and belongs to another fleet."""
