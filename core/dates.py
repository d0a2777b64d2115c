"""Dates people read, said one way everywhere: "paid until" in the sales bot, the operators' bot
and `make stats`.

A subscription's `expires_at` (`control.tenants.expires_at`, the master's) is the **exclusive
end**: the bot is paid while `now < expires_at`, then the grace period runs. People are shown
the **last paid day, inclusive**: the calendar day, in the platform's date zone (Moscow time,
the audience's and the operators'), that holds the last paid moment, as `DD.MM.YYYY`. So a
subscription ending at 00:00 on 1 January is "paid until 31.12.2026" and one ending at 12:40 on
1 January is "paid until 01.01.2027", in every bot and tool alike.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

DATE_ZONE = ZoneInfo("Europe/Moscow")
DATE_FORMAT = "%d.%m.%Y"
_JUST_BEFORE = timedelta(microseconds=1)


def last_paid_day(expires_at: datetime, zone: ZoneInfo = DATE_ZONE) -> date:
    """The day (in `zone`) of the last paid moment before the exclusive end `expires_at`."""
    if expires_at.tzinfo is None:  # stored and sent as UTC; a naive value means UTC too
        expires_at = expires_at.replace(tzinfo=UTC)
    return (expires_at.astimezone(zone) - _JUST_BEFORE).date()


def paid_until(expires_at: datetime | None, zone: ZoneInfo = DATE_ZONE) -> str:
    """`DD.MM.YYYY` of `last_paid_day`, or "—" when there is no end."""
    if expires_at is None:
        return "—"
    return last_paid_day(expires_at, zone).strftime(DATE_FORMAT)
