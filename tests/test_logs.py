from __future__ import annotations

import io
import logging

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr

from core.logs import REDACTED, redact, secrets_of, setup_logging
from core.settings import MasterSettings

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


def test_every_secret_of_a_settings_object_is_redacted_a_new_one_too(monkeypatch):
    """Redaction is derived from the settings' SecretStr fields: the master's own list used to
    omit the database, Redis and OpenAI secrets; a field added later needs no list at all."""

    class WithNewVendor(MasterSettings):
        new_vendor_api_key: SecretStr = SecretStr("nv-live-3b7f2a9c")
        nested: dict[str, SecretStr] = Field(
            default_factory=lambda: {"sms": SecretStr("sms-key-77aa91")}
        )

    monkeypatch.setenv("DATABASE_URL", "postgresql://botfleet:pg-pass-5e1d@db:5432/botfleet")
    monkeypatch.setenv("REDIS_URL", "redis://default:redis-pass-9c2e@cache:6379/0")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fleet-openai-4f6a")
    monkeypatch.setenv("MASTER_API_TOKEN", "api-token-1f3e5d7c9b")
    monkeypatch.setenv("MASTER_BOT_TOKEN", TOKEN)
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{first},{second}")
    settings = WithNewVendor(_env_file=None)
    values = {
        "nv-live-3b7f2a9c",
        "sms-key-77aa91",
        "pg-pass-5e1d",
        "redis-pass-9c2e",
        "sk-fleet-openai-4f6a",
        "api-token-1f3e5d7c9b",
        TOKEN,
        first,
        second,
    }
    assert values <= set(secrets_of(settings))
    assert not any("://" in s for s in secrets_of(settings))  # addresses stay readable

    stream = io.StringIO()
    setup_logging("DEBUG", "text", stream=stream, settings=settings)
    log = logging.getLogger("botfleet.test")
    for value in sorted(values):
        log.warning("value=%s.", value)  # bare, not in a URL: only the derived list catches it
    log.info("host db:5432 database botfleet")
    out = stream.getvalue()
    for value in values:
        assert value not in out
    assert out.count(f"value={REDACTED}.") == len(values)
    assert "host db:5432 database botfleet" in out
