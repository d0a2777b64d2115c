"""Updates by webhook (docs/scaling.md): aiogram's own aiohttp handler, behind the reverse proxy.

A bot's webhook path is `/tg/<tenant_id>` (never its token). Every request must carry the bot's
own secret in `X-Telegram-Bot-Api-Secret-Token`; aiogram's `SimpleRequestHandler` compares it
in constant time (`secrets.compare_digest`) and answers 401 to a wrong or missing one before
anything is parsed or handled. Refusals are counted (`WebhookServer.refused`) and logged
without the header's value.

One `WebhookServer` listens on one host:port and serves any number of bots, routing by path:
a dedicated bot registers itself alone, a hub registers each of its tenants, all with the
process's one Dispatcher and each with its own Bot (aiogram's multibot shape, keyed by tenant id
instead of a token in the path); the Dispatcher resolves the tenant from that Bot. Updates are handled before the
answer (`handle_in_background=False`): Telegram hears 200 only once an update was handled, and
retries it otherwise, as `handle_as_tasks=False` does for polling.
"""

from __future__ import annotations

import logging
from collections import Counter

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from core.metrics import BotMetrics
from core.tenant_id import TENANT_ID_RE

log = logging.getLogger(__name__)

PATH_PREFIX = "/tg/"


def webhook_path(tenant_id: str) -> str:
    return f"{PATH_PREFIX}{tenant_id}"


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class TenantHandler(SimpleRequestHandler):
    """aiogram's handler for one bot, counting requests whose secret is wrong or missing."""

    def __init__(
        self, server: WebhookServer, tenant_id: str, dp: Dispatcher, bot: Bot, secret: str
    ) -> None:
        if not secret:
            raise ValueError("a webhook needs its secret_token")
        super().__init__(dp, bot, handle_in_background=False, secret_token=secret)
        self.server = server
        self.tenant_id = tenant_id

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        if super().verify_secret(telegram_secret_token, bot):
            return True
        self.server.refused[self.tenant_id] += 1
        log.warning(
            "webhook of %s: %s secret token refused (401)",
            self.tenant_id,
            "a wrong" if telegram_secret_token else "no",
        )
        return False

    async def close(self) -> None:
        return None  # the bot's session belongs to its ClientBot (or the hub)


class WebhookServer:
    """One aiohttp server for one or many bots: `POST /tg/<tenant_id>`."""

    def __init__(self, listen: str, metrics: BotMetrics | None = None) -> None:
        self.host, self.port = split_listen(listen)
        self.handlers: dict[str, TenantHandler] = {}
        self.refused: Counter[str] = Counter()
        self.app = web.Application(client_max_size=1024**2)
        if metrics is not None:  # requests by outcome: ok, unauthorized (a wrong secret), ...
            self.app.middlewares.append(metrics.webhook_middleware())
        self.app.router.add_post(PATH_PREFIX + "{tenant_id}", self._route)
        self._runner: web.AppRunner | None = None

    def add(self, tenant_id: str, dp: Dispatcher, bot: Bot, secret: str) -> None:
        self.handlers[tenant_id] = TenantHandler(self, tenant_id, dp, bot, secret)

    def remove(self, tenant_id: str) -> None:
        self.handlers.pop(tenant_id, None)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        tenant_id = request.match_info["tenant_id"]
        handler = self.handlers.get(tenant_id) if TENANT_ID_RE.match(tenant_id) else None
        if handler is None:  # a token or a guess in the path: nothing here
            raise web.HTTPNotFound()
        return await handler.handle(request)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=10)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        log.info("webhooks served on %s:%s", self.host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
