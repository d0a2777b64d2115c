from __future__ import annotations

import io
import logging

from core.logs import REDACTED, redact, setup_logging

TOKEN = "1234567:test-secret-token-value-abcdef"


def test_tokens_passwords_and_registered_secrets_are_redacted():
    stream = io.StringIO()
    setup_logging("DEBUG", "json", secrets=["sk-openai-secret-key"], stream=stream)
    log = logging.getLogger("botfleet.test")
    log.info("GET https://api.telegram.org/bot%s/getMe", TOKEN)
    log.warning("connecting to postgresql://client_001:p4ssw0rd@db:5432/botfleet")
    log.error("openai key %s refused", "sk-openai-secret-key")
    try:
        raise RuntimeError(f"boom with {TOKEN}")
    except RuntimeError:
        log.exception("failed")
    out = stream.getvalue()
    assert TOKEN not in out and "p4ssw0rd" not in out and "sk-openai-secret-key" not in out
    assert out.count(REDACTED) >= 4
    assert "getMe" in out and "client_001:[REDACTED]@db" in out and "boom with" in out


def test_redact_keeps_ordinary_text():
    assert (
        redact("booking #12 at 10:00 for +79001234567") == "booking #12 at 10:00 for +79001234567"
    )
