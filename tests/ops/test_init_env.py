"""`make env` (scripts/init_env.py): a .env from .env.example that docker-compose.yml accepts
as it is, with fresh secrets, 0600, never replacing an existing file."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from cryptography.fernet import Fernet
from dotenv import dotenv_values

from core.settings import WebSettings
from database.dsn import parse_dsn
from scripts.init_env import fill, main
from tests.docker_support import compose_cli

ROOT = Path(__file__).resolve().parents[2]


def test_fills_the_secrets_and_the_host_urls(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    assert main(["--to", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    values = dotenv_values(target)
    secrets = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "MASTER_API_TOKEN", "METRICS_TOKEN")
    for name in (*secrets, "SALES_INTERNAL_TOKEN"):
        assert len(values[name] or "") >= 32, name
    # The web's settings accept its JWT key (one key of >= 32 characters).
    WebSettings(
        database_url="postgresql://x:y@h/d",
        redis_url="redis://h",
        encryption_keys=values["ENCRYPTION_KEYS"],
        web_jwt_keys=values["WEB_JWT_KEYS"],
        _env_file=None,
    )
    Fernet(values["ENCRYPTION_KEYS"] or "")  # a valid key
    dsn = parse_dsn(values["DATABASE_URL"] or "")
    assert (dsn.host, dsn.port) == ("127.0.0.1", 5432)
    assert (values["POSTGRES_PASSWORD"] or "-") in (values["DATABASE_URL"] or "")
    assert values["REDIS_URL"] == f"redis://default:{values['REDIS_PASSWORD']}@127.0.0.1:6379/0"
    # Everything else is the template's, line for line.
    template = (ROOT / ".env.example").read_text().splitlines()
    written = target.read_text().splitlines()
    assert len(written) == len(template)
    changed = {a.split("=")[0] for a, b in zip(written, template, strict=True) if a != b}
    assert changed == {
        "DATABASE_URL", "REDIS_URL", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
        "ENCRYPTION_KEYS", "MASTER_API_TOKEN", "METRICS_TOKEN", "WEB_JWT_KEYS",
        "SALES_INTERNAL_TOKEN",
    }  # fmt: skip


def test_never_replaces_an_existing_env(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_text("ENCRYPTION_KEYS=the-fleet-key\n")
    assert main(["--to", str(target)]) == 1
    assert target.read_text() == "ENCRYPTION_KEYS=the-fleet-key\n"


def test_values_already_set_are_kept() -> None:
    text, chosen = fill(
        "POSTGRES_PASSWORD=mine\nDATABASE_URL=postgresql://x@db/y\nREDIS_PASSWORD=\n"
    )
    assert "POSTGRES_PASSWORD" not in chosen and "DATABASE_URL" not in chosen
    assert "POSTGRES_PASSWORD=mine\nDATABASE_URL=postgresql://x@db/y\n" in text
    assert "REDIS_PASSWORD" in chosen and "REDIS_URL" in chosen


def test_compose_accepts_the_env_as_written(tmp_path: Path) -> None:
    """`.env` from `make env`, nothing edited: compose interpolates docker-compose.yml without a
    missing variable, and the client network is compose's own (never `host`)."""
    assert main(["--to", str(tmp_path / ".env")]) == 0
    (tmp_path / "docker-compose.yml").write_text((ROOT / "docker-compose.yml").read_text())
    result = subprocess.run(
        [*compose_cli(), "-p", "envcheck", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "CLIENT_NETWORK: botfleet" in result.stdout
    assert "network_mode: host" not in result.stdout
