"""Prometheus metrics of a bot process (sales bot, client bot, hub), with `prometheus_client`.

    metrics = BotMetrics()
    metrics.setup(dp)              # update-handling latency and errors by kind
    metrics.watch(bot.session)     # Telegram 429s (and other refusals) by method
    metrics.webhook("ok")          # a webhook request, by outcome
    runner = await serve_metrics(metrics, "0.0.0.0:9100", token)   # GET /metrics

The master's own metrics (tenants, deploys, orders) are master_bot/metrics.py; the names here
are `FAMILIES`, the ones docs/prometheus/alerts.yml may use. Each BotMetrics has a registry of
its own (several bots may share a test process). `/metrics` is meant for an internal-only port
(METRICS_LISTEN: a container's port that is not published, or 127.0.0.1); with METRICS_TOKEN set
it also asks for `Authorization: Bearer <token>` (401 otherwise), compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from core.errors import is_outage

log = logging.getLogger(__name__)

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `<counter>_created` series

FAMILIES: dict[str, tuple[str, str]] = {
    "botfleet_bot_update_seconds": (
        "histogram",
        "Time to handle one update, by update type (answered or not).",
    ),
    "botfleet_bot_errors_total": (
        "counter",
        "Updates whose handling raised, by kind (outage, telegram, handler) and exception.",
    ),
    "botfleet_telegram_refused_total": (
        "counter",
        "Bot API calls Telegram refused, by method and reason (retry_after = a 429).",
    ),
    "botfleet_webhook_requests_total": (
        "counter",
        "Webhook requests by outcome (ok, unauthorized, not_found, invalid, error).",
    ),
}

# Handling takes ~1-50 ms; a slow one (the assistant, an outage's timeouts) seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _base(name: str) -> str:
    return name.removesuffix("_total")  # prometheus_client adds `_total` to a counter


def error_kind(exc: BaseException) -> str:
    """outage (PostgreSQL/Redis unreachable), telegram (the Bot API refused), else handler."""
    if is_outage(exc):
        return "outage"
    if isinstance(exc, TelegramAPIError):
        return "telegram"
    return "handler"


def webhook_outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "unauthorized"
    if status == 404:
        return "not_found"
    return "invalid" if status < 500 else "error"


class _Refusals(BaseRequestMiddleware):
    """Counts what Telegram refuses; the call's outcome itself is untouched."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Any,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter:
            self.counter.labels(method=method.__api_method__, reason="retry_after").inc()
            raise
        except TelegramAPIError:
            self.counter.labels(method=method.__api_method__, reason="other").inc()
            raise


class BotMetrics:
    """A bot's metrics, in a registry of their own, or in `registry` (the master's, for the
    operators' bot, so its errors show on the master's /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        name = "botfleet_bot_update_seconds"
        self.updates = Histogram(
            name, FAMILIES[name][1], ["update"], buckets=BUCKETS, registry=self.registry
        )
        name = "botfleet_bot_errors_total"
        self.errors = Counter(
            _base(name), FAMILIES[name][1], ["kind", "exception"], registry=self.registry
        )
        name = "botfleet_telegram_refused_total"
        self.refused = Counter(
            _base(name), FAMILIES[name][1], ["method", "reason"], registry=self.registry
        )
        name = "botfleet_webhook_requests_total"
        self.webhooks = Counter(_base(name), FAMILIES[name][1], ["outcome"], registry=self.registry)

    def setup(self, dp: Dispatcher) -> None:
        """Time every update the dispatcher handles. Registered after aiogram's own errors
        middleware, so a handler's exception passes here (counted) before the error handler
        answers the user."""
        dp.update.outer_middleware(self._timed)

    def watch(self, session: BaseSession) -> None:
        """Count the Bot API calls of every bot on `session` that Telegram refuses."""
        session.middleware(_Refusals(self.refused))

    def webhook(self, outcome: str) -> None:
        self.webhooks.labels(outcome=outcome).inc()

    def webhook_middleware(self) -> Any:
        """An aiohttp middleware counting a webhook server's answers by outcome (2xx ok, 401/403
        unauthorized, 404 not_found, other 4xx invalid, 5xx or an exception error)."""

        @web.middleware
        async def counted(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                self.webhook(webhook_outcome(exc.status))
                raise
            except Exception:
                self.webhook("error")
                raise
            self.webhook(webhook_outcome(response.status))
            return response

        return counted

    async def _timed(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        kind = (event.event_type if isinstance(event, Update) else None) or "unknown"
        started = time.perf_counter()
        try:
            return await handler(event, data)
        except Exception as exc:
            self.errors.labels(kind=error_kind(exc), exception=type(exc).__name__).inc()
            raise
        finally:
            self.updates.labels(update=kind).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_app(metrics: BotMetrics, token: str | None) -> web.Application:
    """GET /metrics; with `token`, only for `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode() if token else None

    async def handle(request: web.Request) -> web.Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.json_response(
                    {
                        "error": "unauthorized",
                        "detail": "send Authorization: Bearer <METRICS_TOKEN>",
                    },
                    status=401,
                )
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app


async def serve_metrics(metrics: BotMetrics, listen: str, token: str | None) -> web.AppRunner:
    """Serve `/metrics` on `listen` (host:port) until the returned runner is cleaned up."""
    host, _, port = listen.rpartition(":")
    runner = web.AppRunner(metrics_app(metrics, token), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    log.info("metrics on http://%s/metrics%s", listen, " (token required)" if token else "")
    return runner
