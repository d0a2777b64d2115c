"""Legacy rows, parsed and checked one value at a time: what becomes a service, a customer, an
admin and a booking of the tenant schema, or a `Malformed` row with the reason shown to the
operator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

STATUS_MAP = {
    "confirmed": "confirmed",
    "active": "confirmed",
    "new": "confirmed",
    "pending": "confirmed",
    "booked": "confirmed",
    "done": "done",
    "completed": "done",
    "finished": "done",
    "no_show": "no_show",
    "noshow": "no_show",
    "missed": "no_show",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}


class Malformed(ValueError):
    """A legacy row that cannot be imported; the message is the reason shown to the operator."""


def _int(value: object, what: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or value is None or value == "":
        raise Malformed(f"{what} is missing")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            number = int(value)
        else:
            number = int(str(value).strip())
    except ValueError:
        raise Malformed(f"{what} {value!r} is not a whole number") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise Malformed(f"{what} {number} is out of range {low}..{high}")
    return number


def _text(value: object, *, limit: int | None = None) -> str:
    text = "" if value is None else str(value).strip()
    return text[:limit] if limit else text


def _price(value: object) -> Decimal:
    if value is None or value == "":
        raise Malformed("price is missing")
    raw = str(value).replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        price = Decimal(raw)
    except InvalidOperation:
        raise Malformed(f"price {value!r} is not a number") from None
    if not price.is_finite() or price < 0 or price >= Decimal("1e10"):
        raise Malformed(f"price {value!r} is out of range")
    return price.quantize(Decimal("0.01"))


def _flag(value: object) -> bool | None:
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in {"1", "true", "t", "yes", "y"}:
        return True
    if text in {"0", "false", "f", "no", "n"}:
        return False
    raise Malformed(f"{value!r} is not a yes/no value")


def _datetime(value: object, tz: ZoneInfo, what: str) -> datetime:
    """ISO 8601 text, `YYYY-MM-DD HH:MM[:SS]`, `DD.MM.YYYY HH:MM` or a Unix time stamp."""
    if value is None or value == "":
        raise Malformed(f"{what} is missing")
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise Malformed(f"{what} {value!r} is not a time") from None
    text = str(value).strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y"):
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise Malformed(f"{what} {text!r} is not a date/time")
    if not 1970 <= parsed.year <= 2100:
        raise Malformed(f"{what} {text!r} is out of range")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _date_and_time(day: object, clock: object, tz: ZoneInfo) -> datetime:
    try:
        d = date.fromisoformat(str(day).strip())
    except ValueError:
        try:
            d = datetime.strptime(str(day).strip(), "%d.%m.%Y").date()
        except ValueError:
            raise Malformed(f"date {day!r} is not a date") from None
    try:
        t = time.fromisoformat(str(clock).strip())
    except ValueError:
        raise Malformed(f"time {clock!r} is not a time of day") from None
    return datetime.combine(d, t.replace(tzinfo=None), tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Service:
    legacy_id: int
    name: str
    description: str
    price: Decimal
    duration_min: int
    position: int
    hidden: bool


@dataclass(frozen=True, slots=True)
class Customer:
    telegram_id: int
    first_name: str
    username: str | None
    phone: str | None
    language: str | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class Booking:
    legacy_id: int
    user_id: int
    service_legacy_id: int
    starts_at: datetime | None  # None: from the service's duration, known at import
    ends_at: datetime | None
    status: str
    name: str
    phone: str
    created_at: datetime | None


def parse_service(row: Mapping[str, Any]) -> Service:
    legacy_id = _int(row["id"], "id")
    name = _text(row["name"])
    if not name:
        raise Malformed("name is empty")
    if len(name) > 100:
        raise Malformed(f"name is longer than 100 characters ({len(name)})")
    hidden = _flag(row.get("hidden"))
    if hidden is None:
        active = _flag(row.get("active"))
        hidden = active is False
    position = row.get("position")
    return Service(
        legacy_id,
        name,
        _text(row.get("description")),
        _price(row["price"]),
        _int(row["duration"], "duration", low=5, high=1440),
        _int(position, "position") if position not in (None, "") else legacy_id,
        hidden,
    )


def parse_customer(row: Mapping[str, Any], tz: ZoneInfo) -> Customer:
    telegram_id = _int(row["telegram_id"], "telegram_id", low=1, high=2**63 - 1)
    username = _text(row.get("username")).lstrip("@") or None
    created = row.get("created_at")
    return Customer(
        telegram_id,
        _text(row.get("first_name"), limit=200),
        username,
        _text(row.get("phone"), limit=32) or None,
        _text(row.get("language"), limit=8) or None,
        _datetime(created, tz, "created_at") if created not in (None, "") else None,
    )


def parse_booking(row: Mapping[str, Any], tz: ZoneInfo) -> Booking:
    legacy_id = _int(row["id"], "id")
    starts: datetime | None
    if row.get("starts_at") not in (None, ""):
        starts = _datetime(row["starts_at"], tz, "starts_at")
    elif row.get("date") not in (None, "") and row.get("time") not in (None, ""):
        starts = _date_and_time(row["date"], row["time"], tz)
    else:
        raise Malformed("no start time (starts_at, or date and time)")
    ends = (
        _datetime(row["ends_at"], tz, "ends_at") if row.get("ends_at") not in (None, "") else None
    )
    if ends is not None and ends <= starts:
        raise Malformed("ends before it starts")
    raw_status = _text(row.get("status")).lower() or "confirmed"
    status = STATUS_MAP.get(raw_status.replace("-", "_").replace(" ", "_"))
    if status is None:
        raise Malformed(f"unknown status {raw_status!r}")
    created = row.get("created_at")
    return Booking(
        legacy_id,
        _int(row["user_id"], "user_id", low=1, high=2**63 - 1),
        _int(row["service_id"], "service_id"),
        starts,
        ends,
        status,
        _text(row.get("name"), limit=200),
        _text(row.get("phone"), limit=32),
        _datetime(created, tz, "created_at") if created not in (None, "") else None,
    )


def parse_admin(row: Mapping[str, Any]) -> int:
    """An admin's Telegram id."""
    return _int(row["telegram_id"], "telegram_id", low=1, high=2**63 - 1)
