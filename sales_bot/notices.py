"""Messages to owners that must not be lost: "your bot is live", "extended", "paused", "send
another token", "we are setting it up", "the upgrade was refunded: back on the old plan", and
auto-renewal's "we are about to charge your card" and "the charge failed" (those two are
written by the transactions that claim or decline a charge, and sent by `run_once`).

`tell` writes the notice (control.sales_notices) before sending it and marks it sent after
Telegram took it. When Telegram is down or answers 5xx / 429, the notice stays and `run_once`
(called by the relay's loop) sends it again with backoff, for as long as it takes; a crash
between the write and the send is covered the same way. An owner who blocked the bot (403) or
a chat that is gone (400) cannot be told: the notice is given up, with the reason kept.
A notice is told once per order and kind (a retried provisioning does not say "live" twice),
except "send another token", which is re-armed each time a token is refused. A late "we are
setting it up" is dropped once the bot is live. `Notices` is a `billing.Notifier` itself.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)

from core.retry import backoff
from sales_bot.billing import Notifier
from sales_bot.master import Tenant
from sales_bot.store import Order, SalesStore

log = logging.getLogger(__name__)

# The owner cannot be reached this way, whatever we do: retrying is pointless.
_PERMANENT = (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound)


class NoticeKind(enum.StrEnum):
    LIVE = "live"
    EXTENDED = "extended"
    SUSPENDED = "suspended"
    TOKEN_REFUSED = "token_refused"  # noqa: S105 - a kind of message, not a secret
    SETTING_UP = "setting_up"
    RENEWAL_SOON = "renewal_soon"  # written by the renewal worker's claim
    RENEWAL_FAILED = "renewal_failed"  # written with the declined renewal's move
    UPGRADE_REFUNDED = "upgrade_refunded"  # the plan an upgrade paid for was refunded


class Notices:
    def __init__(
        self,
        store: SalesStore,
        notifier: Notifier,
        *,
        base_delay: float = 2.0,
        max_delay: float = 300.0,
        lease: float = 60.0,
        batch: int = 8,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease
        self.batch = batch

    async def live(self, order: Order, tenant: Tenant) -> None:
        await self._tell(order, NoticeKind.LIVE, tenant.to_json())

    async def extended(self, order: Order, tenant: Tenant) -> None:
        await self._tell(order, NoticeKind.EXTENDED, tenant.to_json())

    async def suspended(self, order: Order) -> None:
        await self._tell(order, NoticeKind.SUSPENDED, {})

    async def token_refused(self, order: Order, code: str) -> None:
        await self._tell(order, NoticeKind.TOKEN_REFUSED, {"code": code})

    async def setting_up(self, order: Order) -> None:
        await self._tell(order, NoticeKind.SETTING_UP, {})

    async def renewal_soon(self, order: Order, payload: dict[str, Any]) -> None:
        await self._tell(order, NoticeKind.RENEWAL_SOON, payload)

    async def renewal_failed(self, order: Order, payload: dict[str, Any]) -> None:
        await self._tell(order, NoticeKind.RENEWAL_FAILED, payload)

    async def upgrade_refunded(self, order: Order, tenant: Tenant) -> None:
        await self._tell(order, NoticeKind.UPGRADE_REFUNDED, tenant.to_json())

    async def run_once(self) -> int:
        """Send the notices that are due (earlier sends failed, or were cut by a crash)."""
        due = await self.store.claim_notices(self.batch, self.lease)
        for notice in due:
            await self._send(notice.id, NoticeKind(notice.kind), notice.order, notice.payload,
                             notice.attempts)  # fmt: skip
        return len(due)

    async def _tell(self, order: Order, kind: NoticeKind, payload: dict[str, Any]) -> None:
        notice_id = await self.store.add_notice(
            order.order_id, kind.value, payload, lease=self.lease,
            again=kind is NoticeKind.TOKEN_REFUSED,
        )  # fmt: skip
        if notice_id is None:
            log.info("order %s: the owner was told %s already", order.order_id, kind.value)
            return
        await self._send(notice_id, kind, order, payload, attempts=1)

    async def _send(
        self, notice_id: int, kind: NoticeKind, order: Order, payload: dict[str, Any],
        attempts: int,
    ) -> None:  # fmt: skip
        if kind is NoticeKind.SETTING_UP and order.fulfilled_at is not None:
            await self.store.notice_gave_up(notice_id, "obsolete: the bot is live already")
            return
        try:
            await self._deliver(kind, order, payload)
        except _PERMANENT as exc:
            log.warning("order %s: cannot tell the owner (%s): %s", order.order_id, kind, exc)
            await self.store.notice_gave_up(notice_id, str(exc)[:500])
        except TelegramUnauthorizedError as exc:
            # The sales bot's own token: an operator must fix the settings; keep the notice.
            log.error("order %s: Telegram refused the sales bot's token", order.order_id)
            await self.store.notice_retry(notice_id, self.max_delay, str(exc)[:500])
        except TelegramRetryAfter as exc:
            await self.store.notice_retry(notice_id, float(exc.retry_after), "flood control")
        except Exception as exc:  # network, 5xx: Telegram will be back
            delay = self.backoff(attempts)
            log.warning(
                "order %s: could not tell the owner (%s): %s; retry in %.0f s",
                order.order_id, kind, type(exc).__name__, delay,
            )  # fmt: skip
            await self.store.notice_retry(notice_id, delay, f"{type(exc).__name__}: {exc}"[:500])
        else:
            await self.store.notice_sent(notice_id)

    async def _deliver(self, kind: NoticeKind, order: Order, payload: dict[str, Any]) -> None:
        if kind is NoticeKind.LIVE:
            await self.notifier.live(order, Tenant.from_json(payload))
        elif kind is NoticeKind.EXTENDED:
            await self.notifier.extended(order, Tenant.from_json(payload))
        elif kind is NoticeKind.SUSPENDED:
            await self.notifier.suspended(order)
        elif kind is NoticeKind.SETTING_UP:
            await self.notifier.setting_up(order)
        elif kind is NoticeKind.RENEWAL_SOON:
            await self.notifier.renewal_soon(order, payload)
        elif kind is NoticeKind.RENEWAL_FAILED:
            await self.notifier.renewal_failed(order, payload)
        elif kind is NoticeKind.UPGRADE_REFUNDED:
            await self.notifier.upgrade_refunded(order, Tenant.from_json(payload))
        else:
            await self.notifier.token_refused(order, str(payload["code"]))

    def backoff(self, attempts: int) -> float:
        return backoff(attempts, self.base_delay, self.max_delay)
