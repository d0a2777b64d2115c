"""Tenant ids: `client_` followed by digits. Validated everywhere they enter the system."""

from __future__ import annotations

import re

# `\Z`, not `$`: `$` also matches before a trailing newline ("client_001\n").
TENANT_ID_RE = re.compile(r"^client_[0-9]{1,12}\Z")


class InvalidTenantIdError(ValueError):
    """A tenant id that is not `client_<digits>`."""


def validate_tenant_id(tenant_id: object) -> str:
    """Return `tenant_id` when it is `client_<digits>`; otherwise raise InvalidTenantIdError."""
    if not isinstance(tenant_id, str) or not TENANT_ID_RE.fullmatch(tenant_id):
        raise InvalidTenantIdError(
            f"invalid tenant id {tenant_id!r}: expected 'client_' followed by 1-12 digits, "
            "e.g. 'client_001'"
        )
    return tenant_id


def format_tenant_id(number: int) -> str:
    """`7` -> `client_007` (at least three digits, more when needed)."""
    if number < 1:
        raise InvalidTenantIdError(f"tenant number must be positive, got {number}")
    return validate_tenant_id(f"client_{number:03d}")
