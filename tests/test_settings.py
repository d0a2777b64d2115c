from __future__ import annotations

import subprocess
import sys

import pytest

from core.settings import ClientBotSettings, MasterSettings, SettingsError, load_settings

GOOD = {
    "TENANT_ID": "client_001",
    "BOT_TOKEN": "1000001:test-token-of-the-first-bot-xyz",
    "DATABASE_URL": "postgresql://client_001:pw@127.0.0.1:5432/botfleet",
    "REDIS_URL": "redis://client_001:pw@127.0.0.1:6379/0",
    "ADMIN_IDS": "11, 22",
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [*GOOD, "REDIS_KEY_PREFIX", "TIMEZONE", "LOCALE", "TELEGRAM_API_URL"]:
        monkeypatch.delenv(name, raising=False)

    def set_env(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)

    return set_env


def test_client_settings_follow_the_design_contract(env):
    env(**GOOD, TELEGRAM_API_URL="http://127.0.0.1:8081/")
    s = load_settings(ClientBotSettings)
    assert s.tenant_id == "client_001"
    assert s.redis_key_prefix == "{client_001}:"  # a Redis Cluster hash tag
    assert s.admin_ids == [11, 22]
    assert s.telegram_api_url == "http://127.0.0.1:8081"
    assert s.locale == "ru" and s.timezone == "Europe/Moscow"
    assert "test-token" not in repr(s)  # SecretStr


def test_every_bad_variable_is_named_in_one_message(env):
    env(
        TENANT_ID="tenant-1",
        BOT_TOKEN="1000001:test-token-of-the-first-bot-xyz",
        DATABASE_URL="mysql://nope",
        TIMEZONE="Mars/Olympus",
        ADMIN_IDS="11",
        TELEGRAM_API_URL="ftp://x",
    )
    with pytest.raises(SettingsError) as info:
        load_settings(ClientBotSettings)
    message = str(info.value)
    for name in ("TENANT_ID", "DATABASE_URL", "TIMEZONE", "TELEGRAM_API_URL"):
        assert name in message
    assert "expected 'client_' followed by" in message
    assert "unknown IANA time zone" in message
    assert "BOT_TOKEN" not in message  # the good ones are not blamed


def test_missing_required_and_secrets_never_echoed(env):
    env(BOT_TOKEN="12345:short")
    with pytest.raises(SettingsError) as info:
        load_settings(ClientBotSettings)
    message = str(info.value)
    assert "TENANT_ID: is required but not set" in message
    assert "BOT_TOKEN: is not a Telegram bot token" in message
    assert "12345:short" not in message


def test_redis_prefix_must_match_tenant(env):
    env(**GOOD, REDIS_KEY_PREFIX="client_002:")
    with pytest.raises(SettingsError, match=r"REDIS_KEY_PREFIX must be '\{client_001\}:'"):
        load_settings(ClientBotSettings)


def test_a_prefix_from_before_hash_tags_is_read_as_the_tagged_one(env):
    env(**GOOD, REDIS_KEY_PREFIX="staging_client_001:")  # a contract an older master wrote
    assert load_settings(ClientBotSettings).redis_key_prefix == "{staging_client_001}:"
    env(REDIS_KEY_PREFIX="{client_001:")
    with pytest.raises(SettingsError, match="REDIS_KEY_PREFIX"):
        load_settings(ClientBotSettings)


def test_master_needs_keys_and_api_token(env, monkeypatch):
    monkeypatch.delenv("ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("MASTER_API_TOKEN", raising=False)
    with pytest.raises(SettingsError) as info:
        load_settings(MasterSettings)
    assert "ENCRYPTION_KEYS: is required" in str(info.value)
    assert "MASTER_API_TOKEN: is required" in str(info.value)


def test_a_process_stops_with_a_readable_message_not_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "scripts.migrate"],
        env={
            "DATABASE_URL": "mysql://127.0.0.1/x",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1]),
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "DATABASE_URL: must be a URL with scheme postgres or postgresql" in result.stderr
    assert "Traceback" not in result.stderr
