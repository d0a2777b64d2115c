"""Checks of what an owner types in the dialog (plain functions, unit-tested)."""

from __future__ import annotations

import re

from core.settings import BOT_TOKEN_RE

EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$"
)
NAME_MAX = 100
TIMEZONES = (
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Vladivostok",
)
DEFAULT_TIMEZONE = "Europe/Moscow"


def clean_email(text: str) -> str | None:
    """The address normalised (trimmed, domain lower-cased), or None when it is not one."""
    email = text.strip()
    if len(email) > 254 or not EMAIL_RE.match(email) or ".." in email:
        return None
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_business_name(text: str) -> str | None:
    name = " ".join(text.split())
    if not name or len(name) > NAME_MAX or name.startswith("/"):
        return None
    return name


def extract_token(text: str) -> str | None:
    """The bot token in what was pasted (people paste it with words around), or None."""
    for word in text.replace("`", " ").split():
        if BOT_TOKEN_RE.match(word):
            return word
    return None
