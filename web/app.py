"""Builds and serves the web application."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from core.redis import redis_client
from core.secrets import SecretBox
from core.settings import WebSettings
from database.pool import create_pool
from web.accounts import Accounts
from web.clientip import ClientAddress
from web.deps import DEPS, WebDeps
from web.errors import Handler, error_middleware
from web.openapi import build_openapi
from web.routes import ROUTES
from web.tenants import TenantGate
from web.tokens import SigningKeys

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Method, path and status: never the query string (login links carry a token there)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.3fs",
            request.remote,
            request.method,
            request.path,
            response.status,
            time,
        )


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if request.path != "/widget.js":
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def build_app(deps: WebDeps) -> web.Application:
    app = web.Application(
        middlewares=[security_headers, error_middleware], client_max_size=MAX_BODY
    )
    app[DEPS] = deps
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app


async def open_deps(settings: WebSettings) -> WebDeps:
    control = await create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=settings.database_pool_max,
        stateless=True,
    )
    if await control.fetchval("SELECT to_regclass('control.web_widget_keys')") is None:
        await control.close()
        raise SystemExit(
            "the control schema lacks the web's tables (migrations 0009, 0010): run `make migrate`"
        )
    redis = redis_client(settings.redis_url.get_secret_value())
    box = SecretBox(settings.encryption_keys.get_secret_value())
    return WebDeps(
        settings=settings,
        control=control,
        redis=redis,
        accounts=Accounts(control, refresh_ttl=settings.web_refresh_ttl),
        keys=SigningKeys(settings.web_jwt_keys.get_secret_value()),
        gate=TenantGate(settings, control, box),
        openapi=build_openapi(),
        client_address=ClientAddress(settings.web_trusted_proxies),
    )


async def close_deps(deps: WebDeps) -> None:
    await deps.gate.close()
    await deps.redis.aclose()
    await deps.control.close()


async def housekeeping(deps: WebDeps, stop: asyncio.Event, interval: float = 3600.0) -> None:
    while not stop.is_set():
        try:
            await deps.accounts.forget_old()
        except Exception:
            log.exception("web housekeeping failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def serve(settings: WebSettings, *, stop: asyncio.Event) -> None:
    deps = await open_deps(settings)
    runner = web.AppRunner(build_app(deps), access_log_class=PathOnlyAccessLogger)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web_host, settings.web_port)
        await site.start()
        log.info("web listening on http://%s:%d", settings.web_host, settings.web_port)
        cleaner = asyncio.create_task(housekeeping(deps, stop))
        await stop.wait()
        await cleaner
    finally:
        await runner.cleanup()
        await close_deps(deps)
