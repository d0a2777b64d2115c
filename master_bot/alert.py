"""Operator alerts: provisioning results, crash loops, expired subscriptions.

The master raises alerts through `Alerter`; the operators' Telegram bot plugs in as one more
alerter later. Alert texts carry tenant ids and reasons, never secrets.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)


class AlertKind(enum.StrEnum):
    PROVISIONED = "provisioned"
    PROVISION_FAILED = "provision_failed"
    CRASH_LOOP = "crash_loop"
    SUBSCRIPTION_EXPIRED = "subscription_expired"
    ROLLOUT_HALTED = "rollout_halted"
    RENEWAL_FAILED = "renewal_failed"  # a saved card declined (read from the sales bot's orders)


class Alerter(Protocol):
    async def alert(self, kind: AlertKind, tenant_id: str | None, text: str) -> None: ...


class LogAlerter:
    """Writes alerts to the log (always on)."""

    async def alert(self, kind: AlertKind, tenant_id: str | None, text: str) -> None:
        log.warning("alert %s tenant=%s: %s", kind.value, tenant_id or "-", text)


class Alerts:
    """Fans an alert out to every alerter; one failing alerter does not stop the others."""

    def __init__(self, alerters: Iterable[Alerter] = ()) -> None:
        self.alerters: list[Alerter] = [LogAlerter(), *alerters]

    def add(self, alerter: Alerter) -> None:
        self.alerters.append(alerter)

    async def alert(self, kind: AlertKind, tenant_id: str | None, text: str) -> None:
        for alerter in self.alerters:
            try:
                await alerter.alert(kind, tenant_id, text)
            except Exception:
                log.exception("alerter %s failed", type(alerter).__name__)
