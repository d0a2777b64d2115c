"""The environment contract of a client bot (docs/architecture.md), built from a tenant row.

Secrets are decrypted here, just before a start, and go only into the `ClientSpec` env.
Plans mean what they say: the features of the tenant's plan (from the plan catalogue, never from
the tenant's own settings) decide whether its bot gets the platform's OpenAI key at all, and
travel as PLAN_FEATURES so the bot can gate the rest (broadcasts).
"""

from __future__ import annotations

import logging

from core.plans import SAFEST_FEATURES
from core.secrets import SecretBox
from core.settings import AssistantTuningSettings, MasterSettings
from database.dsn import parse_dsn
from database.redis_tenants import key_prefix, tenant_redis_url
from database.roles import login_role
from master_bot.deploy.base import ClientSpec
from master_bot.deploy.hub import LABEL_PLACEMENT
from master_bot.deps import MasterConfig
from master_bot.store import TenantRecord

log = logging.getLogger(__name__)

LABEL_TENANT = "botfleet.tenant"
# Fleet-wide assistant settings of the master that every client bot gets (none is a secret).
ASSISTANT_FIELDS = (
    "openai_transcription_model",
    "openai_timeout",
    *AssistantTuningSettings.model_fields,
)
LABEL_ROLE = "botfleet.role"


class SpecError(RuntimeError):
    """The tenant row lacks what a start needs (a step of provisioning is missing)."""


def tenant_database_url(
    config: MasterConfig, tenant_id: str, password: str, server_url: str | None = None
) -> str:
    """The tenant's own login on `server_url` (its PostgreSQL server's DSN; None: the
    platform's own server, TENANT_DATABASE_URL)."""
    role = login_role(tenant_id, config.fleet_name)
    return parse_dsn(server_url or config.tenant_database_url).with_credentials(role, password)


def tenant_server_url(config: MasterConfig, box: SecretBox, tenant: TenantRecord) -> str:
    """The DSN (host, port, database) at which the tenant's bot reaches the PostgreSQL server
    that holds its schema (control.tenants.db_server, master_bot/dbservers.py)."""
    if tenant.db_server_dsn_enc is None:
        return config.tenant_database_url
    return box.decrypt_server(tenant.db_server, tenant.db_server_dsn_enc)


def labels(tenant_id: str) -> dict[str, str]:
    return {LABEL_TENANT: tenant_id, LABEL_ROLE: "client-bot"}


def assistant_env(settings: MasterSettings) -> dict[str, str]:
    """The master's own assistant settings as client-bot environment (for `MasterConfig`)."""
    return {name.upper(): str(getattr(settings, name)) for name in ASSISTANT_FIELDS}


def placement(config: MasterConfig, tenant: TenantRecord) -> str:
    """Where the tenant's bot runs: as an operator set it, else its plan's default."""
    return tenant.placement or config.plans.placement(tenant.plan)


def plan_features(config: MasterConfig, tenant: TenantRecord) -> tuple[str, ...]:
    """The features of the tenant's plan; a plan missing from the catalogue gets the safest
    ones (no AI assistant, no broadcasts) and a warning for the operator."""
    features = config.plans.features(tenant.plan)
    if features is None:
        log.warning(
            "tenant %s: plan %r is not in the plan catalogue; its bot gets only %s",
            tenant.tenant_id,
            tenant.plan,
            ", ".join(SAFEST_FEATURES),
        )
        return SAFEST_FEATURES
    return features


def public_env(config: MasterConfig, tenant: TenantRecord) -> dict[str, str]:
    """The non-secret part of the contract (also written to clients/<id>/settings.json)."""
    env = {
        "TENANT_ID": tenant.tenant_id,
        "REDIS_KEY_PREFIX": key_prefix(tenant.tenant_id, config.fleet_name),
        "TELEGRAM_API_URL": config.telegram_api_url,
        **config.assistant_env,
        "OPENAI_BASE_URL": config.openai_base_url,
        "OPENAI_MODEL": config.openai_model,
        "ADMIN_IDS": str(tenant.owner_telegram_id),
        "BUSINESS_NAME": tenant.business_name,
        "LOCALE": tenant.locale,
        "TIMEZONE": tenant.timezone,
        "PLAN_FEATURES": ",".join(plan_features(config, tenant)),
    }
    if tenant.category:  # only when given: the contract of a tenant without one is unchanged
        env["BUSINESS_CATEGORY"] = tenant.category
    if config.web_public_url:  # /admin's "Open the web panel" (web/, issue 15)
        env["WEB_PUBLIC_URL"] = config.web_public_url
    return env


def webhook_url(config: MasterConfig, tenant_id: str) -> str:
    """The bot's webhook URL: its tenant id under the proxy's /tg/, never its token."""
    return f"{config.webhook_base_url}/tg/{tenant_id}"


def webhook_listen(config: MasterConfig, tenant: TenantRecord) -> str:
    """Where a dedicated bot serves its webhook: a process gets a port of its own, a container
    (its own network namespace) 8080."""
    if config.webhook_port_base:
        port = config.webhook_port_base + tenant.number
        if port > 65535:
            raise SpecError(f"tenant {tenant.tenant_id}: no webhook port (base + number > 65535)")
        return f"127.0.0.1:{port}"
    return "0.0.0.0:8080"  # inside the container, reached by the proxy only


def serves_webhook(config: MasterConfig, tenant: TenantRecord) -> bool:
    """Whether the tenant's bot takes updates by webhook: the platform has a public URL, the
    tenant has its secret (set before its runtime starts), and it runs dedicated or in a hub
    container (which serves its tenants' webhooks on one port; hub processes, i.e. a process
    backend with its WEBHOOK_PORT_BASE, still poll)."""
    return bool(
        config.webhook_base_url
        and tenant.webhook_secret_enc
        and (placement(config, tenant) == "dedicated" or not config.webhook_port_base)
    )


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
    ai = "ai_assistant" in env["PLAN_FEATURES"].split(",")
    env["BOT_TOKEN"] = box.decrypt(tid, tenant.bot_token_enc)
    env["DATABASE_URL"] = tenant_database_url(
        config, tid, db_password, tenant_server_url(config, box, tenant)
    )
    env["REDIS_URL"] = tenant_redis_url(
        config.tenant_redis_url, login_role(tid, config.fleet_name), redis_password
    )
    if config.webhook_base_url:  # explicit either way: a stray .env must not decide it
        env["WEBHOOK_BASE_URL"] = ""
        if serves_webhook(config, tenant):
            assert tenant.webhook_secret_enc is not None
            env["WEBHOOK_BASE_URL"] = config.webhook_base_url
            if placement(config, tenant) == "dedicated":  # a hub listens for all its tenants
                env["WEBHOOK_LISTEN"] = webhook_listen(config, tenant)
            env["WEBHOOK_SECRET"] = box.decrypt(tid, tenant.webhook_secret_enc)
    if config.openai_api_key and ai:  # the platform pays for the model: only plans that include it
        env["OPENAI_API_KEY"] = config.openai_api_key
    spec_labels = labels(tid)
    if placement(config, tenant) == "shared":  # dedicated specs stay as they were (no drift)
        spec_labels[LABEL_PLACEMENT] = "shared"
    return ClientSpec(tenant_id=tid, env=env, labels=spec_labels)
