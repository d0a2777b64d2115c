"""What the master hands a client bot: the env of the started bot, built from a tenant row.

Plans mean what they say (the plan's features decide the OpenAI key and PLAN_FEATURES), what the
owner told the sales bot travels (BUSINESS_NAME, LOCALE, TIMEZONE), and the master's fleet-wide
assistant settings reach every bot. No database: `build_spec` is a pure function of its inputs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.secrets import SecretBox, generate_key
from core.settings import ClientBotSettings, MasterSettings, SettingsError, load_settings
from master_bot.config import config_from
from master_bot.deps import MasterConfig
from master_bot.spec import build_spec, public_env
from master_bot.store import Step, TenantRecord, TenantStatus

PLATFORM_KEY = "sk-platform-test-key"
TOKEN = "5000001:test-client-bot-token-abcdefghij"


def tenant(box: SecretBox, plan: str, **overrides: object) -> TenantRecord:
    tid = "client_0000000042"
    now = datetime(2026, 12, 1, tzinfo=UTC)
    values: dict[str, object] = {
        "tenant_id": tid,
        "number": 42,
        "status": TenantStatus.ACTIVE,
        "plan": plan,
        "business_name": "Sunny Nails",
        "owner_telegram_id": 7001,
        "locale": "en",
        "timezone": "Asia/Yekaterinburg",
        "bot_id": 5000001,
        "bot_username": "sunny_bot",
        "bot_token_enc": box.encrypt(tid, TOKEN),
        "bot_token_sha256": "0" * 64,
        "db_password_enc": box.encrypt(tid, "db-secret"),
        "redis_password_enc": box.encrypt(tid, "redis-secret"),
        "provision_step": Step.DONE,
        "expires_at": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
        "suspended_at": None,
        "deleted_at": None,
    }
    values.update(overrides)
    return TenantRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(generate_key())


def config(**overrides: object) -> MasterConfig:
    root = Path("clients-of-test-spec")  # never written: build_spec does no I/O
    values: dict[str, object] = {
        "tenant_database_url": "postgresql://admin:pw@db.internal:5432/botfleet",
        "tenant_redis_url": "redis://default:pw@redis.internal:6379/0",
        "telegram_api_url": "https://api.telegram.org",
        "clients_dir": root / "clients",
        "backups_dir": root / "backups",
        "openai_api_key": PLATFORM_KEY,
    }
    values.update(overrides)
    return MasterConfig(**values)  # type: ignore[arg-type]


def client_settings(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> ClientBotSettings:
    """The client bot's settings read from exactly this environment (as its process would)."""
    for name in ClientBotSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(ClientBotSettings, _env_file=None)


# --- plans mean what they say ------------------------------------------------------------------
def test_start_plan_gets_no_openai_key_and_no_ai_or_broadcasts(box, monkeypatch):
    spec = build_spec(config(), box, tenant(box, "start"))
    assert "OPENAI_API_KEY" not in spec.env
    assert spec.env["PLAN_FEATURES"].split(",") == ["booking", "reminders", "admin_panel"]
    settings = client_settings(spec.env, monkeypatch)
    assert settings.openai_api_key is None
    assert not settings.has_feature("ai_assistant") and not settings.has_feature("broadcasts")
    assert settings.has_feature("booking")


@pytest.mark.parametrize("plan", ["business", "business_year"])
def test_business_plans_get_the_key_and_every_feature(box, monkeypatch, plan):
    spec = build_spec(config(), box, tenant(box, plan))
    assert spec.env["OPENAI_API_KEY"] == PLATFORM_KEY
    settings = client_settings(spec.env, monkeypatch)
    assert settings.has_feature("ai_assistant") and settings.has_feature("broadcasts")
    assert settings.openai_api_key is not None


def test_the_key_never_goes_to_the_public_part(box):
    env = public_env(config(), tenant(box, "business"))
    assert PLATFORM_KEY not in json.dumps(env)
    assert "db-secret" not in json.dumps(env) and TOKEN not in json.dumps(env)


def test_unknown_plan_gets_the_safest_features_and_a_warning(box, caplog, monkeypatch):
    with caplog.at_level(logging.WARNING, logger="master_bot.spec"):
        spec = build_spec(config(), box, tenant(box, "gold_legacy"))
    assert "OPENAI_API_KEY" not in spec.env
    features = spec.env["PLAN_FEATURES"].split(",")
    assert "ai_assistant" not in features and "broadcasts" not in features
    assert "booking" in features
    assert any("gold_legacy" in r.getMessage() for r in caplog.records)
    settings = client_settings(spec.env, monkeypatch)
    assert not settings.has_feature("broadcasts")


def test_no_key_on_the_master_means_no_key_for_anyone(box):
    spec = build_spec(config(openai_api_key=None), box, tenant(box, "business"))
    assert "OPENAI_API_KEY" not in spec.env
    assert "ai_assistant" in spec.env["PLAN_FEATURES"].split(",")


# --- the master reads the same plan file as the sales bot --------------------------------------
def master_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> MasterSettings:
    for name in MasterSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("ENCRYPTION_KEYS", generate_key())
    monkeypatch.setenv("MASTER_API_TOKEN", "api-token-for-tests")
    monkeypatch.setenv("OPENAI_API_KEY", PLATFORM_KEY)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(MasterSettings, _env_file=None)


def test_master_reads_the_plans_file_of_sales_plans_file(box, monkeypatch, tmp_path):
    plans = tmp_path / "plans.json"
    plans.write_text(
        json.dumps(
            {
                "plans": [
                    {"id": "start", "title": "Старт", "price_rub": "990.00", "period_days": 30,
                     "features": ["booking", "ai_assistant"]},
                ]
            }
        ),
        encoding="utf-8",
    )  # fmt: skip
    cfg = config_from(master_settings(monkeypatch, SALES_PLANS_FILE=str(plans)))
    spec = build_spec(cfg, box, tenant(box, "start"))
    assert spec.env["OPENAI_API_KEY"] == PLATFORM_KEY
    assert spec.env["PLAN_FEATURES"] == "booking,ai_assistant"
    # The built-in catalogue (empty SALES_PLANS_FILE): Start has no AI assistant.
    builtin = build_spec(config_from(master_settings(monkeypatch)), box, tenant(box, "start"))
    assert "OPENAI_API_KEY" not in builtin.env


def test_a_broken_plans_file_stops_the_master_with_a_readable_message(monkeypatch, tmp_path):
    plans = tmp_path / "plans.json"
    plans.write_text('{"plans": []}', encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        master_settings(monkeypatch, SALES_PLANS_FILE=str(plans))
    assert "SALES_PLANS_FILE" in str(caught.value) and "at least one plan" in str(caught.value)


# --- what the owner told the sales bot ---------------------------------------------------------
def test_business_name_locale_and_timezone_reach_the_bot(box, monkeypatch):
    record = tenant(box, "start", business_name="Sunny «Nails» & Co")
    assert public_env(config(), record)["BUSINESS_NAME"] == "Sunny «Nails» & Co"  # not secret
    settings = client_settings(build_spec(config(), box, record).env, monkeypatch)
    assert settings.business_name == "Sunny «Nails» & Co"
    assert settings.locale == "en" and settings.timezone == "Asia/Yekaterinburg"


def test_category_and_the_web_panel_url_reach_the_bot_only_when_set(box, monkeypatch):
    record = tenant(box, "start", category="fitness")
    web = "https://panel.example.com"
    settings = client_settings(build_spec(config(web_public_url=web), box, record).env, monkeypatch)
    assert settings.business_category == "fitness"
    assert settings.web_public_url == web  # /admin offers "Open the web panel"
    plain = public_env(config(), tenant(box, "start"))
    assert "BUSINESS_CATEGORY" not in plain and "WEB_PUBLIC_URL" not in plain
    with pytest.raises(SystemExit, match="WEB_PUBLIC_URL"):
        master_settings(monkeypatch, WEB_PUBLIC_URL="ftp://nope")


# --- fleet-wide assistant settings ---------------------------------------------------------------
def test_master_assistant_settings_reach_every_bot(box, monkeypatch):
    settings = master_settings(
        monkeypatch,
        ASSISTANT_DAILY_TOKENS="123",
        ASSISTANT_RATE_LIMIT="7",
        ASSISTANT_RATE_WINDOW="90",
        ASSISTANT_HISTORY_DAYS="30",
        OPENAI_TRANSCRIPTION_MODEL="whisper-large",
        OPENAI_TIMEOUT="12.5",
        OPENAI_MAX_RETRIES="4",
        OPENAI_RETRY_DELAY="0.25",
        OPENAI_RETRY_MAX_DELAY="3",
    )
    spec = build_spec(config_from(settings), box, tenant(box, "business"))
    assert spec.env["ASSISTANT_DAILY_TOKENS"] == "123"
    client = client_settings(spec.env, monkeypatch)
    assert client.assistant_daily_tokens == 123
    assert (client.assistant_rate_limit, client.assistant_rate_window) == (7, 90)
    assert client.assistant_history_days == 30
    assert client.openai_transcription_model == "whisper-large"
    assert client.openai_timeout == 12.5
    assert client.openai_max_retries == 4
    assert (client.openai_retry_delay, client.openai_retry_max_delay) == (0.25, 3.0)
    # Non-secret: the same values are in the public part (clients/<id>/settings.json).
    assert (
        public_env(config_from(settings), tenant(box, "start"))["ASSISTANT_DAILY_TOKENS"] == "123"
    )


def test_client_refuses_an_unknown_plan_feature(monkeypatch):
    env = {
        "TENANT_ID": "client_0000000042",
        "BOT_TOKEN": TOKEN,
        "PLAN_FEATURES": "booking,teleport",
    }
    with pytest.raises(SettingsError) as caught:
        client_settings(env, monkeypatch)
    assert "PLAN_FEATURES" in str(caught.value) and "teleport" in str(caught.value)
    env["PLAN_FEATURES"] = ""
    assert not client_settings(env, monkeypatch).has_feature("booking")  # set and empty: none
    del env["PLAN_FEATURES"]
    assert client_settings(env, monkeypatch).has_feature("broadcasts")  # a bot run by hand
