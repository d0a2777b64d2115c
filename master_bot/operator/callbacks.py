"""Inline-button payloads of the operator bot (aiogram CallbackData: short prefixes)."""

from __future__ import annotations

import enum

from aiogram.filters.callback_data import CallbackData


class ListCb(CallbackData, prefix="ol"):
    """A page of /clients; `status` filters by status ("" = every tenant not deleted)."""

    page: int
    status: str = ""


class TenantAction(enum.StrEnum):
    card = "c"  # a new message with the card
    refresh = "r"  # the card message redrawn
    start = "s"
    stop = "p"
    restart = "rs"
    suspend = "su"
    resume = "re"
    extend = "e"
    logs = "l"
    remove = "d"
    to_shared = "ms"  # move the bot into a shared hub (master_bot/placement.py)
    to_dedicated = "md"  # move it back to a runtime of its own


class TenantCb(CallbackData, prefix="ot"):
    action: TenantAction
    tenant_id: str
    stamp: int = 0  # extend: the expiry shown on the card (Unix time), the idempotency basis


class RemoveCb(CallbackData, prefix="orm"):
    tenant_id: str
    confirm: bool


class DeployAction(enum.StrEnum):
    plan = "p"
    days = "d"
    defaults = "l"
    confirm = "y"
    cancel = "n"


class DeployCb(CallbackData, prefix="od"):
    action: DeployAction
    value: str = ""
