"""The /deploy form: each answer is checked by the order's own rules (`master_bot.orders.OrderIn`,
which the REST API's `ProvisionIn` is), so a manual deployment accepts exactly what
`POST /api/v1/tenants` accepts. No aiogram here."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from core.tenant_id import format_tenant_id, validate_tenant_id
from master_bot.orders import OrderIn, ProvisionOrder

DEFAULT_LOCALE = "ru"
DEFAULT_TIMEZONE = "Europe/Moscow"
# A valid stand-in for every field, so one field can be checked on its own.
_SAMPLE: dict[str, Any] = {
    "plan": "start",
    "period_days": 30,
    "business_name": "x",
    "bot_token": "1:x",
    "owner_telegram_id": 1,
    "locale": DEFAULT_LOCALE,
    "timezone": DEFAULT_TIMEZONE,
}
_REF_RE = re.compile(r"^(?:client_)?([0-9]{1,12})$")


class FormError(ValueError):
    """An answer the form cannot take; the message says why, for the operator."""


def _reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return str(err["msg"]).removeprefix("Value error, ")


def check(field: str, value: Any) -> Any:
    """The value of `field` as OrderIn normalises it, or FormError."""
    try:
        model = OrderIn.model_validate({**_SAMPLE, field: value})
    except ValidationError as exc:
        raise FormError(_reason(exc)) from None
    return getattr(model, field)


def parse_int(text: str) -> int:
    cleaned = text.strip().replace(" ", "")
    if not cleaned.isdigit():
        raise FormError("нужно целое положительное число")
    return int(cleaned)


def parse_locale_timezone(text: str) -> tuple[str, str]:
    """`en Europe/Berlin`, `Europe/Berlin` or `en` (the other keeps its default)."""
    locale, timezone = DEFAULT_LOCALE, DEFAULT_TIMEZONE
    for part in text.split():
        if part.lower() in ("ru", "en"):
            locale = part.lower()
        else:
            timezone = check("timezone", part)
    return locale, timezone


def order(data: dict[str, Any]) -> ProvisionOrder:
    """The complete form as the ProvisionOrder the REST API would build; FormError otherwise."""
    fields = {name: data.get(name) for name in _SAMPLE}
    try:
        body = OrderIn.model_validate(fields)
    except ValidationError as exc:
        raise FormError(_reason(exc)) from None
    return body.to_order()


def tenant_ref(text: str | None) -> str | None:
    """`client_001`, `client_1` or `1` -> `client_001`; None for anything else."""
    match = _REF_RE.match((text or "").strip())
    if match is None:
        return None
    number = int(match.group(1))
    if number < 1:
        return None
    tenant_id = format_tenant_id(number)
    return validate_tenant_id(tenant_id)
