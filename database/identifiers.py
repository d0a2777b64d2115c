"""Quoting of SQL identifiers. Values never go into SQL text: they are $n parameters."""

from __future__ import annotations

import re

_SAFE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")


def quote_ident(name: str) -> str:
    """Quote a schema/role name as a PostgreSQL identifier (only simple lower-case names pass)."""
    if not isinstance(name, str) or not _SAFE_RE.match(name):
        raise ValueError(f"refusing to use {name!r} as an SQL identifier")
    return '"' + name + '"'
