"""One owner-shape check (database/roles.is_owner_role) for the migrator, stats and the legacy
import: only a schema owned by its own owner role is touched with platform rights."""

from __future__ import annotations

import pytest

from database.roles import is_owner_role, owner_role


def test_the_owner_of_its_own_schema_in_any_fleet() -> None:
    assert is_owner_role("client_001_owner", "client_001")
    assert is_owner_role("fleet2_client_001_owner", "client_001")
    assert is_owner_role(owner_role("client_001", "fleet2"), "client_001", "fleet2")


@pytest.mark.parametrize(
    "role",
    [
        "client_001",  # the login role: a tenant's code could have made objects as it
        "xclient_001_owner",  # passed the old `endswith` check of the legacy import
        "client_0010_owner",
        "client_002_owner",  # a neighbour's owner
        "_client_001_owner",
        "Fleet_client_001_owner",
        "a" * 21 + "_client_001_owner",  # not a fleet name
        "botfleet",
        None,
    ],
)
def test_anything_else_is_refused(role: str | None) -> None:
    assert not is_owner_role(role, "client_001")


def test_a_known_fleet_means_exactly_its_owner() -> None:
    assert is_owner_role("client_001_owner", "client_001", "botfleet")
    assert not is_owner_role("fleet2_client_001_owner", "client_001", "botfleet")
    assert not is_owner_role("client_001_owner", "client_001", "fleet2")
