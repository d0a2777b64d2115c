"""The master's REST API (aiohttp): routes, models, errors and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from master_bot.api.errors import auth_middleware, error_middleware, json_body_middleware
from master_bot.api.handlers import KEY_LOCKS, MASTER, OPENAPI, KeyLocks
from master_bot.api.openapi import build_openapi
from master_bot.api.routes import ROUTES
from master_bot.services import Master

MAX_BODY = 64 * 1024


def build_api(
    master: Master, api_token: str, *, metrics_token: str | None = None
) -> web.Application:
    """The REST API. `/metrics` takes the API token or, when set, `metrics_token` (a token
    Prometheus may hold: it opens nothing else)."""
    public = frozenset(r.path for r in ROUTES if r.public)
    scrape = {"/metrics": [metrics_token]} if metrics_token else None
    app = web.Application(
        middlewares=[
            error_middleware,
            auth_middleware(api_token, public=public, also=scrape),
            json_body_middleware,
        ],
        client_max_size=MAX_BODY,
    )
    app[MASTER] = master
    app[OPENAPI] = build_openapi()
    app[KEY_LOCKS] = KeyLocks()
    deps = master.deps
    if deps.metrics not in deps.alerts.alerters:
        deps.alerts.add(deps.metrics)  # botfleet_alerts_total{kind=...}
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app


__all__ = ["build_api"]
