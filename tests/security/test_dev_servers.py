"""The throwaway servers of scripts/services.sh (what `make test` gets on a fresh machine, as CI
is) authenticate the admin like production: no password-less superuser on 127.0.0.1.

The test makes a new cluster of its own (its own folder and ports), so it checks what a fresh
machine gets, whatever servers the developer's shell already runs.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError

from database.redis_tenants import create_tenant_redis_user, remove_tenant_redis
from tests.conftest import new_tenant_id
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services.sh"


@dataclass(frozen=True)
class DevServers:
    run_dir: Path
    env: dict[str, str]
    database_url: str
    redis_url: str
    stderr: str

    def secret(self, name: str) -> str:
        return (self.run_dir / f"{name}.password").read_text()


def services(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES), action], env=env, capture_output=True, text=True, timeout=180
    )


def exports(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        found[name] = value.strip("'")
    return found


@pytest.fixture(scope="module")
def dev() -> Iterator[DevServers]:
    # Not under pytest's tmp_path: its parents are 0700, and PostgreSQL runs as `postgres` there
    # when the tests run as root.
    run_dir = Path(tempfile.mkdtemp(prefix="botfleet-devservers-"))
    run_dir.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {
        "BOTFLEET_RUN_DIR": str(run_dir),
        "BOTFLEET_PG_PORT": str(free_port()),
        "BOTFLEET_REDIS_PORT": str(free_port()),
        "REDIS_MAXMEMORY": "64mb",
    }
    try:
        up = services("up", env)
        assert up.returncode == 0, up.stderr
        urls = exports(up.stdout)
        yield DevServers(run_dir, env, urls["DATABASE_URL"], urls["REDIS_URL"], up.stderr)
    finally:
        services("down", env)
        shutil.rmtree(run_dir, ignore_errors=True)


def test_passwords_are_generated_private_and_in_the_urls(dev: DevServers) -> None:
    for name in ("pg", "redis"):
        path = dev.run_dir / f"{name}.password"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(dev.secret(name)) >= 32
        assert dev.secret(name) not in dev.stderr  # never logged
    pg, redis = urlsplit(dev.database_url), urlsplit(dev.redis_url)
    assert (pg.username, pg.password) == ("postgres", quote(dev.secret("pg"), safe=""))
    assert (redis.username, redis.password) == ("default", quote(dev.secret("redis"), safe=""))
    assert "trust" not in (dev.run_dir / "pg" / "pg_hba.conf").read_text()
    # `up` again: the same servers, the same URLs.
    again = services("up", dev.env)
    assert again.returncode == 0, again.stderr
    assert exports(again.stdout) == {"DATABASE_URL": dev.database_url, "REDIS_URL": dev.redis_url}


async def test_postgres_refuses_the_superuser_without_its_password(
    dev: DevServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    url = urlsplit(dev.database_url)
    nowhere = str(dev.run_dir / "no-such-pgpass")
    for password in (None, "", "wrong"):
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InterfaceError)):
            await asyncpg.connect(
                host="127.0.0.1",
                port=url.port,
                user="postgres",
                database="postgres",
                password=password,
                passfile=nowhere,
            )
    conn = await asyncpg.connect(dev.database_url)
    try:
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await conn.fetchval("SHOW password_encryption") == "scram-sha-256"
    finally:
        await conn.close()


async def test_redis_refuses_the_default_user_without_its_password(dev: DevServers) -> None:
    port = urlsplit(dev.redis_url).port
    assert port is not None
    anonymous = Redis(host="127.0.0.1", port=port)
    wrong = Redis(host="127.0.0.1", port=port, password="wrong")
    admin = Redis.from_url(dev.redis_url)
    tenant_id = new_tenant_id()
    try:
        with pytest.raises(AuthenticationError):  # NOAUTH
            await anonymous.ping()
        with pytest.raises(AuthenticationError):
            await wrong.ping()
        assert await admin.config_get("maxmemory") == {"maxmemory": str(64 * 2**20)}
        assert await admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        # Tenants log in with their own users beside the password-protected default user.
        tenant = await create_tenant_redis_user(admin, tenant_id, server_url=dev.redis_url)
        client = Redis.from_url(tenant.url)
        try:
            await client.set(f"{tenant.key_prefix}fsm:x", "1")
            assert await admin.get(f"{tenant.key_prefix}fsm:x") == b"1"
        finally:
            await client.aclose()
    finally:
        await remove_tenant_redis(admin, tenant_id, drop_data=True)
        for c in (anonymous, wrong, admin):
            await c.aclose()
