"""`POST /yookassa/webhook`: accept YooKassa notifications fast, act on them after the answer.

The sender must be in the allowlist (403 otherwise). The body is parsed with the SDK's
notification factory; anything malformed is a 400 (never a 500). An accepted notification is
recorded under its unique key (`<event>:<object id>`) and answered 200 at once; the work —
re-reading the payment from the API and settling the order — runs after the answer, and a
notification recorded but not processed (a crash) is retried by the periodic check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import asyncpg
from aiohttp import web

from sales_bot.allowlist import SenderPolicy
from sales_bot.billing import EVENTS, Billing
from sales_bot.store import SalesStore

log = logging.getLogger(__name__)

PATH = "/yookassa/webhook"
MAX_BODY = 64 * 1024
_OBJECT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")  # \Z: `$` allows a trailing "\n"


class MalformedNotificationError(ValueError):
    pass


def parse_notification(raw: bytes) -> tuple[str, str]:
    """(event, object id) of a notification body.

    Only `type`, `event` and `object.id` are read, and they go through the SDK's notification
    factory; the rest of the object is not parsed at all: it is never trusted (the payment is
    re-read from the API), and skipping it keeps the answer fast under a burst.
    """
    from yookassa.domain.notification import WebhookNotificationFactory

    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedNotificationError("the body is not JSON") from None
    except RecursionError:  # e.g. 30,000 nested arrays: a 400, not a 500
        raise MalformedNotificationError(
            "the body is nested too deeply to be a notification"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedNotificationError("expected an object with type, event and object")
    object_id = data["object"].get("id")
    if not isinstance(object_id, str) or not _OBJECT_ID_RE.fullmatch(object_id):
        raise MalformedNotificationError("object.id is missing or has an unexpected form")
    try:
        notification = WebhookNotificationFactory().create(
            {"type": data.get("type"), "event": data.get("event"), "object": {"id": object_id}}
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedNotificationError(f"not a YooKassa notification ({exc})") from None
    event = notification.event
    if not isinstance(event, str):
        raise MalformedNotificationError("event must be a string")
    return event, object_id


class Recorder:
    """Records notifications in batches: requests arriving while a write is in flight share
    the next statement, so a burst costs a few round trips to PostgreSQL, not one each."""

    def __init__(self, store: SalesStore, max_batch: int = 500) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: list[tuple[tuple[str, str, str, str], asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, key: str, event: str, object_id: str, sender: str) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(((key, event, object_id, sender), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                needs = await self.store.record_notifications([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for item, future in batch:
                if not future.done():
                    future.set_result(needs.get(item[0], True))


def _answer(status: int, text: str) -> web.Response:
    return web.json_response({"status": text}, status=status)


def build_webhook(store: SalesStore, billing: Billing, policy: SenderPolicy) -> web.Application:
    recorder = Recorder(store)

    async def notification(request: web.Request) -> web.Response:
        sender = policy.sender(request.remote, request.headers.get("X-Forwarded-For"))
        if not policy.allows(sender):
            log.warning("webhook: refused a notification from %s", sender or request.remote)
            return _answer(403, "sender not allowed")
        try:
            raw = await request.read()
            event, object_id = parse_notification(raw)
        except web.HTTPRequestEntityTooLarge:
            return _answer(413, "too large")
        except MalformedNotificationError as exc:
            log.warning("webhook: malformed notification from %s: %s", sender, exc)
            return _answer(400, str(exc))
        if event not in EVENTS:
            return _answer(200, "ignored")
        key = f"{event}:{object_id}"
        try:
            needs_work = await recorder.record(key, event, object_id, str(sender))
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            log.error("webhook: cannot record %s: %s", key, type(exc).__name__)
            return _answer(503, "try again")
        if needs_work:
            billing.submit(key, event, object_id)
        return _answer(200, "ok")

    async def health(request: web.Request) -> web.Response:
        return _answer(200, "ok")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, notification)
    app.router.add_get("/health", health)
    return app
