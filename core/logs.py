"""One logging setup for every process: structured records, secrets redacted.

Redaction happens in a logging.Filter on the handler, so it covers our records, third-party
records (aiogram logs request URLs that contain the bot token) and formatted tracebacks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretBytes, SecretStr

# Telegram bot tokens anywhere (URLs like /bot<token>/getMe included).
_TOKEN_RE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{20,}")
# user:password@ in DSNs.
_DSN_PASSWORD_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")
REDACTED = "[REDACTED]"


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """Remove bot tokens, DSN passwords and every known secret value from `text`."""
    for secret in extra:
        if secret and len(secret) >= 6:
            text = text.replace(secret, REDACTED)
    text = _TOKEN_RE.sub(REDACTED, text)
    return _DSN_PASSWORD_RE.sub(rf"\g<scheme>{REDACTED}@", text)


def url_password(url: str) -> str | None:
    """The password of `scheme://user:password@host/...`, or None (no password, not a URL)."""
    if "://" not in url:
        return None
    try:
        return urlsplit(url.strip()).password or None
    except ValueError:
        return None


def secrets_of(settings: object) -> list[str]:
    """Every secret a settings object holds, derived from its types rather than listed by hand,
    so a new `SecretStr` field is redacted without touching the logging set-up: each `SecretStr`
    / `SecretBytes` value (walking nested models, lists and mappings), each comma-separated part
    of one (key lists such as ENCRYPTION_KEYS), and the password of every URL, secret or not."""
    found: list[str] = []

    def add(*candidates: str | None) -> None:
        for candidate in candidates:
            candidate = (candidate or "").strip()
            if candidate and candidate not in found:
                found.append(candidate)

    def add_secret(value: str) -> None:
        if "://" in value:  # a DSN or URL: its password is the secret, the address is not
            add(*(url_password(part) for part in value.split(",")))
        else:
            add(value, *value.split(","))

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            add_secret(value.get_secret_value())
        elif isinstance(value, SecretBytes):
            add_secret(value.get_secret_value().decode("utf-8", "replace"))
        elif isinstance(value, str):
            add(url_password(value))
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)

    walk(settings)
    return found


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with secrets removed."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def add_secret(self, secret: str) -> None:
        if secret:
            self.secrets.add(secret)

    def add_settings(self, settings: object) -> None:
        """Redact every secret of `settings` (`secrets_of`) from now on."""
        for secret in secrets_of(settings):
            self.add_secret(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage(), self.secrets)
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("tenant_id", "update_id", "user_id"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


_filter = RedactingFilter()


def setup_logging(
    level: str = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    *,
    settings: object = None,
) -> RedactingFilter:
    """Configure the root logger once per process; returns the redaction filter.

    `settings` (the process's settings object): all its secrets are redacted (`secrets_of`);
    `secrets`: any further values known only at run time."""
    if settings is not None:
        _filter.add_settings(settings)
    for secret in secrets:
        _filter.add_secret(secret)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_filter)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return _filter


def exit_flushed(code: int) -> NoReturn:
    """End a bot process once it has shut down (its connections closed): the log flushed, then
    os._exit, without the interpreter's teardown of aiogram's and pydantic's thousands of
    objects, which took 1-4 s of CPU after the bot was done, long enough for a stop timeout of
    5 s on a busy host to end a clean stop with SIGKILL (exit 137)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
