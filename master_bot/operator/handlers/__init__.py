"""Routers of the operator bot, in the order they are tried (fresh ones per call)."""

from __future__ import annotations

from aiogram import Router

from master_bot.operator.handlers import clients, common, deploy, upgrades


def routers() -> list[Router]:
    return [
        common.router(),
        deploy.commands_router(),
        clients.router(),
        deploy.router(),
        upgrades.router(),
        common.last_router(),
    ]
