"""Locale-aware formatting of prices, dates and times (Babel), and HTML escaping."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, get_day_names
from babel.numbers import format_decimal

PHONE_RE = re.compile(r"^\+?[0-9()\-\s]{7,24}$")


def esc(value: object) -> str:
    """HTML-escape user or admin text before it goes into an HTML message."""
    return html.escape(str(value), quote=False)


def price(amount: Decimal, locale: str) -> str:
    """`1 500 ₽` / `1,500.50 ₽` (kopecks only when there are any)."""
    pattern = "#,##0" if amount == amount.to_integral_value() else "#,##0.00"
    return f"{format_decimal(amount, format=pattern, locale=locale)} ₽"


def day(value: date, locale: str) -> str:
    """`пн, 1 дек.` / `Mon, Dec 1`."""
    return format_date(value, "EEE, d MMM", locale=locale)


def day_long(value: date, locale: str) -> str:
    return format_date(value, "EEEE, d MMMM", locale=locale)


def month(value: date, locale: str) -> str:
    return format_date(value, "LLLL yyyy", locale=locale)


def weekday_short(weekday: int, locale: str) -> str:
    """0 (Monday) -> `пн` / `Mon`."""
    return str(get_day_names("abbreviated", locale=locale)[weekday])


def weekday_long(weekday: int, locale: str) -> str:
    return str(get_day_names("wide", locale=locale)[weekday])


def hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def when(moment: datetime, tz: str, locale: str) -> str:
    """`пн, 1 дек., 10:00` in the business's time zone."""
    return format_datetime(moment, "EEE, d MMM, HH:mm", tzinfo=_zone(tz), locale=locale)


def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def normalize_phone(raw: str) -> str | None:
    """A phone number as +<digits>, or None when it does not look like one.

    Russian habits are understood: 8XXXXXXXXXX and 7XXXXXXXXXX both become +7XXXXXXXXXX.
    """
    raw = raw.strip()
    if not PHONE_RE.match(raw):
        return None
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits[0] == "8" and not raw.startswith("+"):
        digits = "7" + digits[1:]
    elif len(digits) == 10 and not raw.startswith("+"):
        digits = "7" + digits
    if not 10 <= len(digits) <= 15:
        return None
    return "+" + digits
