"""The master's REST API (aiohttp): routes, models, errors and the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from master_bot.api.errors import auth_middleware, error_middleware
from master_bot.api.handlers import MASTER, OPENAPI
from master_bot.api.openapi import build_openapi
from master_bot.api.routes import ROUTES

if TYPE_CHECKING:
    from master_bot.app import Master

MAX_BODY = 64 * 1024


def build_api(master: Master, api_token: str) -> web.Application:
    public = frozenset(r.path for r in ROUTES if r.public)
    app = web.Application(
        middlewares=[error_middleware, auth_middleware(api_token, public=public)],
        client_max_size=MAX_BODY,
    )
    app[MASTER] = master
    app[OPENAPI] = build_openapi()
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app


__all__ = ["build_api"]
