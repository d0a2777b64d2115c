"""The business's admin panel (/admin), reachable only by admins."""

from __future__ import annotations

from aiogram import Router


def admin_routers() -> list[Router]:
    return []
