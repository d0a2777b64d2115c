"""Settings of every botfleet process, read from the environment and `.env`.

Shared groups (PostgreSQL, Redis, Telegram endpoint, OpenAI, YooKassa, encryption keys) are small
classes; each process composes the groups it needs into one settings class. Variable names are
exactly the environment contract of docs/architecture.md (`BOT_TOKEN`, `DATABASE_URL`, ...).

`load_settings(cls)` is the one way to read them: a missing or malformed variable stops the
process with one readable message that names every bad variable, instead of a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.tenant_id import validate_tenant_id

TELEGRAM_PUBLIC_API = "https://api.telegram.org"
BOT_TOKEN_RE = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,}\Z")


class SettingsError(SystemExit):
    """Raised (as an exit) when settings are missing or malformed; the message names each one."""


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


def _check_dsn(value: SecretStr, schemes: set[str]) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in schemes or (not parts.hostname and not parts.path):
        raise ValueError(f"must be a URL with scheme {' or '.join(sorted(schemes))}")
    return value


def _split_ints(value: Any) -> Any:
    if isinstance(value, str):
        return [int(v) for v in value.replace(" ", "").split(",") if v]
    return value


def _fleet_name(value: str) -> str:
    if not re.match(r"^[a-z][a-z0-9_]{0,19}\Z", value):
        raise ValueError("1-20 characters: a lowercase letter, then lowercase letters, digits, _")
    return value


class _Base(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )


class PostgresSettings(_Base):
    database_url: SecretStr = Field(
        SecretStr("postgresql://botfleet:botfleet@127.0.0.1:5432/botfleet"),
        description="PostgreSQL DSN (postgresql://user:password@host:port/db)",
    )
    database_pool_max: int = Field(10, ge=1, le=200)

    @field_validator("database_url")
    @classmethod
    def _dsn(cls, v: SecretStr) -> SecretStr:
        return _check_dsn(v, {"postgresql", "postgres"})


class RedisSettings(_Base):
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL (redis://user:password@host:port/db); a Redis Cluster:"
        " redis+cluster://user:password@any-node:port/0 (docs/scaling.md)",
    )

    @field_validator("redis_url")
    @classmethod
    def _dsn(cls, v: SecretStr) -> SecretStr:
        return _check_dsn(v, {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"})


class TelegramSettings(_Base):
    telegram_api_url: HttpUrl = TELEGRAM_PUBLIC_API
    telegram_timeout: float = Field(30.0, gt=0, le=600)


class OpenAISettings(_Base):
    openai_api_key: SecretStr | None = None
    openai_base_url: HttpUrl = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    openai_transcription_model: str = "whisper-1"
    openai_timeout: float = Field(30.0, gt=0, le=600)


class AssistantTuningSettings(_Base):
    """The AI assistant's retries, cost and flood limits: fleet-wide, set on the master, which
    passes them to every client bot (the client bot reads them; on when OPENAI_API_KEY is set)."""

    openai_max_retries: int = Field(2, ge=0, le=10)
    openai_retry_delay: float = Field(0.5, ge=0, le=60)
    openai_retry_max_delay: float = Field(8.0, ge=0, le=120)
    assistant_daily_tokens: int = Field(300_000, ge=0, description="per tenant per day; 0 = no cap")
    assistant_rate_limit: int = Field(10, ge=1, le=1000)
    assistant_rate_window: int = Field(60, ge=1, le=86400)
    assistant_history_days: int = Field(
        90, ge=1, le=3650, description="customers' messages to the assistant are kept this long"
    )


class YooKassaSettings(_Base):
    yookassa_shop_id: str | None = None
    yookassa_secret_key: SecretStr | None = None
    yookassa_api_url: HttpUrl = "https://api.yookassa.ru/v3"
    yookassa_trusted_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("yookassa_trusted_networks", mode="before")
    @classmethod
    def _networks(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [n.strip() for n in v.split(",") if n.strip()]
        return v


class EncryptionSettings(_Base):
    encryption_keys: SecretStr = Field(
        description="comma-separated Fernet keys; the first encrypts, all decrypt"
    )

    @field_validator("encryption_keys")
    @classmethod
    def _keys(cls, v: SecretStr) -> SecretStr:
        from core.secrets import parse_keys  # local: keeps core.secrets free of settings

        parse_keys(v.get_secret_value())
        return v


class LoggingSettings(_Base):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "text"


WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{16,256}\Z")  # Telegram's secret_token alphabet


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be host:port (e.g. 0.0.0.0:8080)")
    return value


class MetricsSettings(_Base):
    """A bot process's Prometheus `/metrics` (core/metrics.py): on an internal-only port (a
    container port that is not published, or 127.0.0.1), optionally behind a Bearer token."""

    metrics_listen: Annotated[str, AfterValidator(lambda v: _host_port(v) if v else v)] = Field(
        "", description="host:port serving GET /metrics (internal only); empty = none"
    )
    metrics_token: SecretStr | None = Field(
        None, description="when set, /metrics asks for Authorization: Bearer <token>"
    )


class WebhookSettings(_Base):
    """Updates by webhook (docs/scaling.md): empty WEBHOOK_BASE_URL = long polling (development,
    the sandbox). A bot's URL is `<WEBHOOK_BASE_URL>/tg/<tenant_id>`, never its token."""

    webhook_base_url: Annotated[str, AfterValidator(lambda v: _check_http_url(v) if v else v)] = (
        Field("", description="public URL of the reverse proxy; empty = long polling")
    )


class ClientBotSettings(
    WebhookSettings,
    PostgresSettings,
    RedisSettings,
    TelegramSettings,
    OpenAISettings,
    AssistantTuningSettings,
    LoggingSettings,
    MetricsSettings,
):
    """Environment of one client bot: only its own tenant's credentials (docs/architecture.md)."""

    tenant_id: Annotated[str, AfterValidator(validate_tenant_id)]
    bot_token: SecretStr
    redis_key_prefix: str = ""
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    locale: Literal["ru", "en"] = "ru"
    timezone: str = "Europe/Moscow"
    business_name: str = Field("", description="seeds the profile's name on first start")
    business_category: str = Field(
        "",
        pattern=r"^[a-z_]{0,32}$",
        description="the category picked in the sales bot: seeds example services and hours"
        " on first start (unknown or empty: none)",
    )
    plan_features: Annotated[frozenset[str] | None, NoDecode] = Field(
        None, description="the plan's features (comma-separated); unset = all (a bot run by hand)"
    )
    database_idle_seconds: float = Field(
        10.0, gt=0, le=3600, description="a PostgreSQL connection unused this long is closed"
    )
    redis_idle_seconds: float = Field(
        30.0, gt=0, le=3600, description="a Redis connection unused this long is closed"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="this bot's secret_token (the master sets it with WEBHOOK_BASE_URL)"
    )
    webhook_listen: Annotated[str, AfterValidator(_host_port)] = Field(
        "127.0.0.1:8080", description="host:port the webhook server listens on"
    )
    web_public_url: Annotated[str, AfterValidator(lambda v: _check_http_url(v) if v else v)] = (
        Field("", description="the owner's web: /admin offers a login link to it; empty = none")
    )

    @property
    def webhook_on(self) -> bool:
        return bool(self.webhook_base_url)

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _no_webhook_secret(cls, v: Any) -> Any:
        return None if v == "" else v  # WEBHOOK_SECRET= (an .env from .env.example)

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not WEBHOOK_SECRET_RE.match(v.get_secret_value()):
            raise ValueError("must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
        return v

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admins(cls, v: Any) -> Any:
        return _split_ints(v)

    @field_validator("plan_features", mode="before")
    @classmethod
    def _features(cls, v: Any) -> Any:
        from core.plans import FEATURES  # local, like core.secrets above

        if isinstance(v, str):
            v = [f.strip() for f in v.split(",") if f.strip()]
        unknown = sorted(set(v) - set(FEATURES)) if v is not None else []
        if unknown:
            known = ", ".join(FEATURES)
            raise ValueError(f"unknown feature(s) {', '.join(unknown)} (known: {known})")
        return v

    def has_feature(self, feature: str) -> bool:
        """Whether the tenant's plan includes `feature` (every feature when PLAN_FEATURES is
        unset: the master always sets it, a bot run by hand has no plan)."""
        return self.plan_features is None or feature in self.plan_features

    @field_validator("bot_token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        if not BOT_TOKEN_RE.match(v.get_secret_value()):
            raise ValueError(
                "is not a Telegram bot token (expected <digits>:<secret> from @BotFather)"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r} (e.g. Europe/Moscow)") from None
        return v

    @model_validator(mode="after")
    def _webhook(self) -> ClientBotSettings:
        if self.webhook_base_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_BASE_URL is set")
        return self

    @model_validator(mode="after")
    def _prefix(self) -> ClientBotSettings:
        """`{client_001}:` (core.redis.tenant_key_prefix); the form before hash tags,
        `client_001:`, is read as the same tenant's (a contract written by an older master)."""
        from core.redis import tenant_key_prefix  # local: settings load without redis-py

        expected = tenant_key_prefix(self.tenant_id)
        if not self.redis_key_prefix:
            self.redis_key_prefix = expected
            return self
        named = re.fullmatch(
            rf"(\{{)?((?:[a-z][a-z0-9_]{{0,19}}_)?{re.escape(self.tenant_id)})(?(1)\}}):",
            self.redis_key_prefix,
        )
        if named is None:
            raise ValueError(
                f"REDIS_KEY_PREFIX must be {expected!r} (TENANT_ID in braces, then ':'), in a "
                f"fleet other than the default one '{{<FLEET_NAME>_{self.tenant_id}}}:'"
            )
        self.redis_key_prefix = tenant_key_prefix(named.group(2))
        return self


class FleetSettings(_Base):
    """Which fleet this is, when several share one PostgreSQL cluster, Redis or Docker Engine
    (database/roles.py): the default one keeps bare names, any other prefixes them."""

    fleet_name: Annotated[str, AfterValidator(_fleet_name)] = "botfleet"


class MasterSettings(
    WebhookSettings,
    PostgresSettings,
    RedisSettings,
    TelegramSettings,
    OpenAISettings,
    AssistantTuningSettings,
    EncryptionSettings,
    LoggingSettings,
    FleetSettings,
):
    """The control plane: admin rights on PostgreSQL and Redis, the Docker Engine, its own bot."""

    master_bot_token: SecretStr | None = None
    master_api_host: str = "127.0.0.1"
    master_api_port: int = Field(8000, ge=1, le=65535)
    master_api_token: SecretStr
    metrics_token: SecretStr | None = None  # bearer token for GET /metrics only (optional)
    # The owners' web (python -m web) as browsers reach it: client bots get it in their contract
    # (WEB_PUBLIC_URL), and /admin then offers "Open the web panel". Empty = no button.
    web_public_url: Annotated[str, AfterValidator(lambda v: _check_http_url(v) if v else v)] = (
        Field("", description="public URL of the owners' web; empty = bots offer no web panel")
    )
    operator_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    deploy_backend: Literal["docker", "process", "swarm"] = "docker"
    # Swarm services (DEPLOY_BACKEND=swarm): placement constraints and spread preferences,
    # comma-separated, e.g. SWARM_CONSTRAINTS=node.labels.pool==bots, SWARM_SPREAD=node.labels.zone
    swarm_constraints: Annotated[list[str], NoDecode] = Field(default_factory=list)
    swarm_spread: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The overlay network the master creates when CLIENT_NETWORK is missing on a swarm: sized
    # for the fleet (Swarm's default /24 holds ~250 addresses; docs/scaling.md).
    swarm_subnet: Annotated[str, AfterValidator(lambda v: str(ipaddress.ip_network(v)))] = Field(
        "10.20.0.0/20", description="subnet of the overlay network the master creates"
    )

    @field_validator("swarm_constraints", "swarm_spread", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v

    client_image: str = "botfleet-client:latest"
    # A bridge network the master creates when missing; `host` (loopback shared) only if set.
    client_network: str = Field("botfleet-clients", min_length=1)
    clients_dir: str = "clients"
    tenant_database_url: SecretStr | None = Field(
        None, description="DSN template the client bots use; defaults to DATABASE_URL's host"
    )
    tenant_redis_url: SecretStr | None = None
    backups_dir: str = Field("backups", description="final pg_dump backups of deleted tenants")
    subscription_grace_days: float = Field(3.0, ge=0, le=365)
    reconcile_interval: float = Field(15.0, gt=0, le=3600)
    subscription_check_interval: float = Field(300.0, gt=0, le=86400)
    sales_plans_file: str = Field(
        "", description="the sales bot's plans file (same variable): each tenant gets its features"
    )
    hub_capacity: int = Field(200, ge=1, le=10_000, description="shared tenants per hub process")
    # Webhooks (WEBHOOK_BASE_URL set): the reverse proxy's admin API and the routes it serves.
    caddy_admin_url: HttpUrl = "http://127.0.0.1:2019"
    webhook_proxy_listen: str = Field(":8443", description="the proxy's site address")
    webhook_port_base: int = Field(
        20000, ge=1024, le=60000, description="process backend: bot N listens on base + N"
    )

    @field_validator("operator_ids", mode="before")
    @classmethod
    def _operators(cls, v: Any) -> Any:
        return _split_ints(v)

    @field_validator("sales_plans_file")
    @classmethod
    def _plans(cls, v: str) -> str:
        from core.plans import load_plans  # raises PlansError (a ValueError) with the reason

        load_plans(v)
        return v

    @field_validator("master_bot_token")
    @classmethod
    def _master_bot_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None  # empty: the operator bot is off
        if not BOT_TOKEN_RE.match(v.get_secret_value()):
            raise ValueError(
                "is not a Telegram bot token (expected <digits>:<secret> from @BotFather)"
            )
        return v


class SalesSettings(
    PostgresSettings,
    RedisSettings,
    TelegramSettings,
    YooKassaSettings,
    EncryptionSettings,
    LoggingSettings,
    MetricsSettings,
):
    """The sales bot and its YooKassa webhook.

    REDIS_URL holds the dialog state (keys `sales:*`); ENCRYPTION_KEYS seal the bot tokens of
    orders until the master has them (give the sales bot its own keys in production).
    """

    sales_bot_token: SecretStr
    master_api_url: HttpUrl = "http://127.0.0.1:8000"
    master_api_token: SecretStr
    master_api_timeout: float = Field(60.0, gt=0, le=3600)
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(8080, ge=1, le=65535)
    webhook_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of reverse proxies whose X-Forwarded-For is believed",
    )
    yookassa_vat_code: int = Field(1, ge=1, le=12)
    yookassa_return_url: HttpUrl = "https://t.me"
    yookassa_timeout: float = Field(20.0, gt=0, le=300)
    sales_plans_file: str = Field("", description="JSON file of the plans; empty = built-in")
    sales_support_contact: str = "@botfleet_support"
    sales_refund_suspends: bool = True
    sales_check_interval: float = Field(60.0, gt=0, le=86400)
    sales_check_after: float = Field(300.0, ge=0, le=86400)
    sales_slow_after: float = Field(45.0, ge=0, le=86400)
    sales_retry_max_delay: float = Field(300.0, gt=0, le=86400)
    renewal_days_before: int = Field(
        3, ge=0, le=30, description="auto-renewal charges the saved card this many days early"
    )
    renewal_retry_days: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [1, 2, 3],
        description="days between a declined auto-renewal and the next attempts (then none)",
    )
    renewal_interval: float = Field(600.0, gt=0, le=86400, description="renewal worker period")
    sales_internal_token: SecretStr | None = Field(
        None,
        description="bearer token of the /internal/ endpoints on the webhook port, where the"
        " owner's web opens renewal payments (/internal/subscription/renew) and buys bots"
        " (/internal/purchase/…); empty: those endpoints are off",
    )

    @field_validator("sales_internal_token", mode="before")
    @classmethod
    def _no_internal_token(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("webhook_trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [n.strip() for n in v.split(",") if n.strip()]
        return v

    @field_validator("renewal_retry_days", mode="before")
    @classmethod
    def _retry_days(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [int(n) for n in v.split(",") if n.strip()]
        if any(int(n) < 1 or int(n) > 60 for n in v):
            raise ValueError("each retry delay is 1 to 60 days")
        return v


class WebSettings(
    PostgresSettings,
    RedisSettings,
    TelegramSettings,
    OpenAISettings,
    AssistantTuningSettings,
    EncryptionSettings,
    LoggingSettings,
    FleetSettings,
):
    """The owner's web (`python -m web`): accounts in the control schema (DATABASE_URL), each
    tenant's data only through that tenant's own login role and ACL user, whose passwords it
    decrypts with ENCRYPTION_KEYS (web/tenants.py)."""

    web_host: str = "127.0.0.1"
    web_port: int = Field(8070, ge=1, le=65535)
    web_public_url: HttpUrl = Field(
        "http://127.0.0.1:8070", description="where browsers reach the web (login links, widget)"
    )
    web_jwt_keys: SecretStr = Field(
        description="comma-separated JWT signing keys, newest first: the first signs, all verify"
    )
    web_access_ttl: int = Field(900, ge=30, le=86400, description="access JWT lifetime, seconds")
    web_refresh_ttl: int = Field(30 * 86400, ge=300, le=365 * 86400)
    web_link_ttl: int = Field(900, ge=30, le=86400, description="one-time login link lifetime")
    web_login_email_limit: int = Field(10, ge=1, le=10000, description="failed logins/min/email")
    web_login_ip_limit: int = Field(50, ge=1, le=100000, description="failed logins/min/IP")
    web_redis_prefix: str = Field(
        "web:", pattern=r"^[a-z][a-z0-9_:-]{0,40}:$", description="the web's own Redis keys"
    )
    tenant_database_url: SecretStr | None = Field(
        None, description="server the tenants' roles log in to; defaults to DATABASE_URL's"
    )
    tenant_redis_url: SecretStr | None = None
    sales_plans_file: str = Field("", description="the plans file: which plans have the assistant")
    sales_bot_token: SecretStr | None = Field(
        None, description="the sales bot's token: password-reset links go to the owner's chat"
    )
    web_reset_ttl: int = Field(1800, ge=60, le=86400, description="password reset link lifetime")
    renewal_days_before: int = Field(
        3,
        ge=0,
        le=30,
        description="as the sales bot's: a renewal turned on on the web is charged"
        " this many days before the end (give both the same value)",
    )
    sales_internal_url: str | None = Field(
        None,
        description="the sales bot's webhook base URL (http://host:8080): Renew / pay and buying a"
        " bot on the web open their YooKassa payments there; empty: Renew / pay opens the"
        " owner's chat with the sales bot and the web sells no bots",
    )
    sales_internal_token: SecretStr | None = Field(
        None, description="the sales bot's SALES_INTERNAL_TOKEN"
    )

    @field_validator("sales_internal_url", "sales_internal_token", mode="before")
    @classmethod
    def _no_internal(cls, v: Any) -> Any:
        return None if v == "" else v

    web_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of reverse proxies whose X-Forwarded-For names the client (throttling)",
    )
    web_reset_log_links: bool = Field(
        False,
        description="sandbox only: write reset links for accounts without Telegram to the log",
    )

    @field_validator("sales_bot_token", mode="before")
    @classmethod
    def _no_sales_token(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("web_trusted_proxies", mode="before")
    @classmethod
    def _web_proxies(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [n.strip() for n in v.split(",") if n.strip()]
        import ipaddress

        for network in v:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an IP address or CIDR network") from None
        return v

    @field_validator("web_jwt_keys")
    @classmethod
    def _jwt_keys(cls, v: SecretStr) -> SecretStr:
        keys = [k.strip() for k in v.get_secret_value().split(",") if k.strip()]
        if not keys or any(len(k) < 32 for k in keys):
            raise ValueError(
                "needs one or more keys of at least 32 characters (python -m web.tokens prints one)"
            )
        return v


S = TypeVar("S", bound=BaseSettings)


def describe_errors(cls: type[BaseSettings], error: ValidationError) -> str:
    """One line per bad variable, by its environment name, without echoing secret values."""
    lines = []
    for err in error.errors():
        name = str(err["loc"][0]).upper() if err["loc"] else "(settings)"
        reason = "is required but not set" if err["type"] == "missing" else err["msg"]
        reason = reason.removeprefix("Value error, ")
        lines.append(f"  {name}: {reason}")
    return f"{cls.__name__}: {len(lines)} bad setting(s):\n" + "\n".join(lines)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Read `cls` from the environment/.env; exit with a readable message when anything is wrong.

    With SECRETS_DIR set (a Swarm service: master_bot/deploy/swarm.py), settings missing from
    the environment are also read from files there, one per field (`bot_token`, `database_url`).
    """
    secrets_dir = os.environ.get("SECRETS_DIR")
    if secrets_dir and "_secrets_dir" not in overrides:
        overrides["_secrets_dir"] = secrets_dir
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_errors(cls, exc)) from None
