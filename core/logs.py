"""One logging setup for every process: structured records, secrets redacted.

Redaction happens in a logging.Filter on the handler, so it covers our records, third-party
records (aiogram logs request URLs that contain the bot token) and formatted tracebacks.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

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


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with secrets removed."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def add_secret(self, secret: str) -> None:
        if secret:
            self.secrets.add(secret)

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
) -> RedactingFilter:
    """Configure the root logger once per process; returns the redaction filter."""
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
