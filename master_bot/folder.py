"""`clients/<tenant_id>/`: the tenant's non-secret settings and a hand-usable compose file.

Secrets never go into these files: the compose file names them as variables the operator
provides (`BOT_TOKEN=... docker compose up -d`), the master passes them only as environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

from master_bot.deps import MasterConfig
from master_bot.spec import labels, public_env
from master_bot.store import TenantRecord

SECRET_VARS = ("BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def settings_document(config: MasterConfig, tenant: TenantRecord) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "business_name": tenant.business_name,
        "plan": tenant.plan,
        "owner_telegram_id": tenant.owner_telegram_id,
        "bot_id": tenant.bot_id,
        "bot_username": tenant.bot_username,
        "locale": tenant.locale,
        "timezone": tenant.timezone,
        "environment": public_env(config, tenant),
        "secrets_from_environment": list(SECRET_VARS),
    }


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def compose_document(config: MasterConfig, tenant: TenantRecord) -> str:
    tid = tenant.tenant_id
    lines = [
        f"# Client bot of {tid}, written by the master. Secrets are not in this file:",
        "# export BOT_TOKEN, DATABASE_URL and REDIS_URL (and OPENAI_API_KEY) before",
        "# `docker compose up -d`. The master normally runs this container itself.",
        "services:",
        "  bot:",
        f"    image: {_yaml_str(config.client_image)}",
        f"    container_name: {_yaml_str('botfleet-' + tid)}",
        "    restart: unless-stopped",
        f"    network_mode: {_yaml_str(config.client_network)}"
        if config.client_network == "host"
        else f"    networks: [{_yaml_str(config.client_network)}]",
        "    read_only: true",
        "    tmpfs: [/tmp]",
        "    cap_drop: [ALL]",
        "    security_opt: [no-new-privileges:true]",
        "    mem_limit: 256m",
        "    cpus: 0.5",
        "    pids_limit: 128",
        "    labels:",
        *(f"      {k}: {_yaml_str(v)}" for k, v in labels(tid).items()),
        "    environment:",
        *(f"      {k}: {_yaml_str(v)}" for k, v in public_env(config, tenant).items()),
        *(f"      {k}: ${{{k}:?set {k}}}" for k in SECRET_VARS[:3]),
        "      OPENAI_API_KEY: ${OPENAI_API_KEY:-}",
    ]
    if config.client_network != "host":
        lines += ["networks:", f"  {_yaml_str(config.client_network)}:", "    external: true"]
    return "\n".join(lines) + "\n"


def _write(config: MasterConfig, tenant: TenantRecord) -> Path:
    folder = config.clients_dir / tenant.tenant_id
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(
        folder / "settings.json",
        json.dumps(settings_document(config, tenant), ensure_ascii=False, indent=2) + "\n",
    )
    _atomic_write(folder / "docker-compose.yml", compose_document(config, tenant))
    return folder


async def write_client_folder(config: MasterConfig, tenant: TenantRecord) -> Path:
    return await asyncio.to_thread(_write, config, tenant)


async def remove_client_folder(config: MasterConfig, tenant_id: str) -> None:
    await asyncio.to_thread(shutil.rmtree, config.clients_dir / tenant_id, True)
