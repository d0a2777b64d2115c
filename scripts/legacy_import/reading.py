"""Reading a legacy SQLite file: the four tables, with columns under their aliases renamed to
the canonical names (read-only; the file is never written)."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.legacy_import.rows import Malformed

TABLES = ("services", "users", "admins", "bookings")

ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "services": {
        "id": ("id",),
        "name": ("name", "title"),
        "description": ("description",),
        "price": ("price",),
        "duration": ("duration", "duration_min", "duration_minutes"),
        "position": ("position", "sort", "sort_order"),
        "hidden": ("hidden",),
        "active": ("is_active", "active", "enabled"),
    },
    "users": {
        "telegram_id": ("telegram_id", "user_id", "tg_id", "id"),
        "first_name": ("first_name", "name", "full_name"),
        "username": ("username",),
        "phone": ("phone", "phone_number"),
        "language": ("language", "lang", "language_code"),
        "created_at": ("created_at", "registered_at"),
    },
    "admins": {"telegram_id": ("telegram_id", "user_id", "tg_id", "id")},
    "bookings": {
        "id": ("id",),
        "user_id": ("user_id", "telegram_id", "customer_id", "tg_id"),
        "service_id": ("service_id",),
        "starts_at": ("starts_at", "start_at", "datetime", "start_time"),
        "date": ("date", "booking_date"),
        "time": ("time", "booking_time"),
        "ends_at": ("ends_at", "end_at", "end_time"),
        "status": ("status",),
        "name": ("name", "customer_name", "client_name"),
        "phone": ("phone", "phone_number"),
        "created_at": ("created_at",),
    },
}
REQUIRED = {
    "services": ("id", "name", "price", "duration"),
    "users": ("telegram_id",),
    "admins": ("telegram_id",),
    "bookings": ("id", "user_id", "service_id"),
}


@dataclass(slots=True)
class Legacy:
    rows: dict[str, list[dict[str, Any]]]
    missing: list[str]
    sha256: str


def read_legacy(path: Path) -> Legacy:
    """All rows of the four tables, with columns renamed to the canonical names."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    uri = f"file:{path.resolve()}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise Malformed(f"cannot open {path} as SQLite: {exc}") from None
    try:
        db.row_factory = sqlite3.Row
        try:
            present = {
                r[0].lower()
                for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise Malformed(f"{path} is not a SQLite database ({exc})") from None
        rows: dict[str, list[dict[str, Any]]] = {}
        missing: list[str] = []
        for table in TABLES:
            if table not in present:
                missing.append(table)
                rows[table] = []
                continue
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [c[0].lower() for c in cursor.description]
            mapping: dict[str, str] = {}
            for canonical, aliases in ALIASES[table].items():
                for alias in aliases:
                    if alias in columns and alias not in mapping.values():
                        mapping[canonical] = alias
                        break
            lacking = [c for c in REQUIRED[table] if c not in mapping]
            if lacking:
                raise Malformed(
                    f"table {table} has no column {', '.join(lacking)} "
                    f"(columns: {', '.join(columns)})"
                )
            index = {name: i for i, name in enumerate(columns)}
            rows[table] = [
                {canonical: r[index[alias]] for canonical, alias in mapping.items()} for r in cursor
            ]
        return Legacy(rows, missing, digest)
    finally:
        db.close()
