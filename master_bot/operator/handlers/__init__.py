"""Routers of the operator bot, in the order they are tried (fresh ones per call)."""

from __future__ import annotations

from aiogram import Router

from master_bot.operator.handlers import clients, common, dbservers, deploy, upgrades


def routers() -> list[Router]:
    return [
        common.router(),
        deploy.commands_router(),
        clients.router(),
        dbservers.router(),
        deploy.router(),
        upgrades.router(),
        common.last_router(),
    ]
