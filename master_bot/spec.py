"""The environment contract of a client bot (DESIGN.md), built from a tenant row.

Secrets are decrypted here, just before a start, and go only into the `ClientSpec` env.
"""

from __future__ import annotations

from core.secrets import SecretBox
from database.dsn import parse_dsn
from database.redis_tenants import key_prefix, tenant_redis_url
from master_bot.deploy.base import ClientSpec
from master_bot.deps import MasterConfig
from master_bot.store import TenantRecord

LABEL_TENANT = "botfleet.tenant"
LABEL_ROLE = "botfleet.role"


class SpecError(RuntimeError):
    """The tenant row lacks what a start needs (a step of provisioning is missing)."""


def tenant_database_url(config: MasterConfig, tenant_id: str, password: str) -> str:
    return parse_dsn(config.tenant_database_url).with_credentials(tenant_id, password)


def labels(tenant_id: str) -> dict[str, str]:
    return {LABEL_TENANT: tenant_id, LABEL_ROLE: "client-bot"}


def public_env(config: MasterConfig, tenant: TenantRecord) -> dict[str, str]:
    """The non-secret part of the contract (also written to clients/<id>/settings.json)."""
    env = {
        "TENANT_ID": tenant.tenant_id,
        "REDIS_KEY_PREFIX": key_prefix(tenant.tenant_id),
        "TELEGRAM_API_URL": config.telegram_api_url,
        "OPENAI_BASE_URL": config.openai_base_url,
        "OPENAI_MODEL": config.openai_model,
        "ADMIN_IDS": str(tenant.owner_telegram_id),
        "LOCALE": tenant.locale,
        "TIMEZONE": tenant.timezone,
    }
    return env


def build_spec(config: MasterConfig, box: SecretBox, tenant: TenantRecord) -> ClientSpec:
    """Everything the tenant's bot gets: its own credentials and nothing platform-wide."""
    if not (tenant.bot_token_enc and tenant.db_password_enc and tenant.redis_password_enc):
        raise SpecError(
            f"tenant {tenant.tenant_id} is not fully provisioned "
            f"(last step: {tenant.provision_step.value})"
        )
    tid = tenant.tenant_id
    db_password = box.decrypt(tid, tenant.db_password_enc)
    redis_password = box.decrypt(tid, tenant.redis_password_enc)
    env = public_env(config, tenant)
    env["BOT_TOKEN"] = box.decrypt(tid, tenant.bot_token_enc)
    env["DATABASE_URL"] = tenant_database_url(config, tid, db_password)
    env["REDIS_URL"] = tenant_redis_url(config.tenant_redis_url, tid, redis_password)
    if config.openai_api_key:
        env["OPENAI_API_KEY"] = config.openai_api_key
    return ClientSpec(tenant_id=tid, env=env, labels=labels(tid))
