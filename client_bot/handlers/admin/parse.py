"""What admins type, read into values: prices, minutes, intervals, dates, time zones.

Each reader returns the value or raises `InputError` whose text says what is wrong and how to
type it (translated for the admin: call inside a handler, where the locale is set).
"""

from __future__ import annotations

import itertools
import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiogram.utils.i18n import gettext as _

MIDNIGHT = time(0)
SERVICE_NAME_MAX = 100
DESCRIPTION_MAX = 1000
_TIME_RE = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?$")
_RANGE_SPLIT = re.compile(r"\s*[-–—]\s*")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_RU_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})(?:\.(\d{4}))?$")


class InputError(ValueError):
    """Input that cannot be used; `str(exc)` is the message for the admin."""


def is_blank(raw: str) -> bool:
    """`-` (or an empty message) means "nothing" where a field may be empty."""
    return raw.strip() in ("", "-", "—", "–")


def text_value(raw: str, max_len: int, *, optional: bool = False) -> str:
    value = raw.strip()
    if optional and is_blank(value):
        return ""
    if not value:
        raise InputError(_("The text is empty. Please send it again."))
    if len(value) > max_len:
        raise InputError(
            _("This is too long: {length} characters, at most {limit}. Please shorten it.").format(
                length=len(value), limit=max_len
            )
        )
    return value


def price(raw: str) -> Decimal:
    cleaned = re.sub(r"[\s\u00a0₽]|руб\.?|р\.?$", "", raw.strip().lower()).replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value >= Decimal("1e10"):
        raise InputError(_("The price must be a number of roubles, like 1500 or 990.50."))
    if value != value.quantize(Decimal("0.01")):
        raise InputError(_("The price can have at most two digits after the point."))
    return value.quantize(Decimal("0.01"))


def number(raw: str, low: int, high: int) -> int:
    value = raw.strip()
    if not re.fullmatch(r"\d{1,6}", value) or not low <= int(value) <= high:
        raise InputError(
            _("Please send a whole number from {low} to {high}.").format(low=low, high=high)
        )
    return int(value)


def duration(raw: str) -> int:
    try:
        return number(raw, 5, 1440)
    except InputError:
        raise InputError(
            _("The duration is a whole number of minutes from 5 to 1440, like 60.")
        ) from None


def service_line(raw: str) -> tuple[str, Decimal, int, str]:
    """`Name; price; minutes; description` (the description may be left out)."""
    parts = [p.strip() for p in raw.split(";")]
    if len(parts) < 3:
        raise InputError(
            _(
                "Please send the service as one line: name; price; minutes; description.\n"
                "For example: Haircut; 1500; 60; Men's and women's"
            )
        )
    name = text_value(parts[0], SERVICE_NAME_MAX)
    description = text_value(";".join(parts[3:]), DESCRIPTION_MAX, optional=True)
    return name, price(parts[1]), duration(parts[2]), description


def clock_time(raw: str, *, end: bool = False) -> time:
    match = _TIME_RE.match(raw.strip())
    if match:
        hours, minutes = int(match.group(1)), int(match.group(2) or 0)
        if end and hours == 24 and minutes == 0:
            return MIDNIGHT
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise InputError(
        _("«{value}» is not a time. Use hours and minutes, like 09:30.").format(value=raw.strip())
    )


def intervals(raw: str, *, until_midnight: bool = True) -> list[tuple[time, time]]:
    """`10:00-14:00, 15:00-19:00`; `-` is none. Sorted, each end after its start, no overlaps."""
    if is_blank(raw):
        return []
    result = []
    for chunk in re.split(r"[,;\n]+", raw.strip()):
        if not chunk.strip():
            continue
        bounds = _RANGE_SPLIT.split(chunk.strip())
        if len(bounds) != 2:
            raise InputError(
                _("«{value}» is not an interval. Write it like 10:00-19:00.").format(
                    value=chunk.strip()
                )
            )
        start = clock_time(bounds[0])
        stop = clock_time(bounds[1], end=until_midnight)
        if _minutes(stop, end=True) <= _minutes(start):
            raise InputError(
                _("In «{value}» the end must be later than the start.").format(value=chunk.strip())
            )
        result.append((start, stop))
    result.sort()
    for (_s1, e1), (s2, _e2) in itertools.pairwise(result):
        if _minutes(s2) < _minutes(e1, end=True):
            raise InputError(_("The intervals overlap. Please check the times."))
    return result


def _minutes(t: time, *, end: bool = False) -> int:
    return 24 * 60 if end and t == MIDNIGHT else t.hour * 60 + t.minute


def day(raw: str, today: date) -> date:
    """`2026-12-31`, `31.12.2026` or `31.12` (the next such day); not in the past."""
    value = raw.strip()
    iso, ru = _ISO_DATE.match(value), _RU_DATE.match(value)
    try:
        if iso:
            result = date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        elif ru:
            d, m = int(ru.group(1)), int(ru.group(2))
            if ru.group(3):
                result = date(int(ru.group(3)), m, d)
            else:
                result = date(today.year, m, d)
                if result < today:
                    result = date(today.year + 1, m, d)
        else:
            raise ValueError(value)
    except ValueError:
        raise InputError(
            _("«{value}» is not a date. Write it like 31.12.2026 or 2026-12-31.").format(
                value=value
            )
        ) from None
    return result


def future_day(raw: str, today: date) -> date:
    result = day(raw, today)
    if result < today:
        raise InputError(_("This date has already passed. Please send a future date."))
    return result


def offsets(raw: str) -> tuple[int, ...]:
    """Reminder offsets in minutes before the visit: `1440, 120`; `-` is none."""
    if is_blank(raw):
        return ()
    values = set()
    for chunk in re.split(r"[,;\s]+", raw.strip()):
        if chunk:
            values.add(number(chunk, 5, 10080))
    if len(values) > 5:
        raise InputError(_("At most five reminders, please."))
    return tuple(sorted(values, reverse=True))


def timezone(raw: str) -> str:
    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            _(
                "«{value}» is not a time zone. Send its name, like Europe/Moscow or Asia/Yekaterinburg."
            ).format(value=value)
        ) from None
    return value


def url(raw: str) -> str:
    value = raw.strip()
    if is_blank(value):
        return ""
    if not re.fullmatch(r"https?://[^\s<>\"]{3,500}", value):
        raise InputError(_("A link must start with https:// (or http://). Please send it again."))
    return value


def telegram_id(raw: str) -> int:
    value = raw.strip()
    if not re.fullmatch(r"[1-9]\d{0,15}", value):
        raise InputError(
            _(
                "A Telegram id is a number, like 123456789. The person can learn theirs from @userinfobot."
            )
        )
    return int(value)
