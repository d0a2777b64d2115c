"""Rotating ENCRYPTION_KEYS: every stored secret ends up under the new key, nothing is lost."""

from __future__ import annotations

import secrets

import pytest
from cryptography.fernet import Fernet

from core.secrets import SecretBox, SecretDecryptionError
from scripts.rotate_keys import rotate_secrets
from tests.ops.conftest import Fleet, run_cli

# Every secret of a tenant: bot token, database and Redis passwords, the bot's webhook
# secret_token (the last one is what Telegram sends back; lost, no webhook update gets in).
COLUMNS = ("bot_token_enc", "db_password_enc", "redis_password_enc", "webhook_secret_enc")


def key() -> str:
    return Fernet.generate_key().decode()


async def test_rotation_re_encrypts_verifies_and_reports(fleet: Fleet) -> None:
    old, new = key(), key()
    box = SecretBox(old)
    plain: dict[tuple[str, str], str] = {}
    tenants = [await fleet.add_tenant(schema=False) for _ in range(3)]
    conn = await fleet.connect()
    try:
        for tenant_id in tenants:
            for column in COLUMNS:
                secret = secrets.token_urlsafe(16)
                plain[(tenant_id, column)] = secret
                await conn.execute(
                    f"UPDATE control.tenants SET {column} = $1 WHERE tenant_id = $2",
                    box.encrypt(tenant_id, secret),
                    tenant_id,
                )
        has_orders = await conn.fetchval("SELECT to_regclass('control.sales_orders') IS NOT NULL")
        if has_orders:
            from sales_bot.vault import Vault

            order_id = "ord_" + secrets.token_hex(12)
            await conn.execute(
                "INSERT INTO control.sales_orders (order_id, kind, user_id, plan, period_days,"
                " amount, email, idempotence_key, bot_token_enc)"
                " VALUES ($1, 'new', 1, 'basic', 30, 990, 'a@b.ru', $1, $2)",
                order_id,
                Vault(old).seal(f"order:{order_id}", "123:order-token"),
            )

        before = await conn.fetch("SELECT * FROM control.tenants ORDER BY tenant_id")
        dry = await rotate_secrets(conn, f"{new},{old}", dry_run=True)
        assert dry.rotated == 12 + (1 if has_orders else 0) and dry.ok
        assert await conn.fetch("SELECT * FROM control.tenants ORDER BY tenant_id") == before

        report = await rotate_secrets(conn, f"{new},{old}")
        assert report.ok and report.rotated == dry.rotated
        assert report.verified == report.rotated
        only_new = SecretBox(new)
        for (tenant_id, column), secret in plain.items():
            stored = await conn.fetchval(
                f"SELECT {column} FROM control.tenants WHERE tenant_id = $1", tenant_id
            )
            assert only_new.decrypt(tenant_id, stored) == secret
            with pytest.raises(SecretDecryptionError):
                SecretBox(old).decrypt(tenant_id, stored)
        if has_orders:
            stored = await conn.fetchval(
                "SELECT bot_token_enc FROM control.sales_orders WHERE order_id = $1", order_id
            )
            assert Vault(new).open(f"order:{order_id}", stored) == "123:order-token"

        # A ciphertext no key opens (e.g. copied from another tenant) is reported, not lost.
        await conn.execute(
            "UPDATE control.tenants SET bot_token_enc = $1 WHERE tenant_id = $2",
            SecretBox(new).encrypt(tenants[1], "other"),
            tenants[0],
        )
        broken = await rotate_secrets(conn, f"{new},{old}")
        assert broken.failures == [f"{tenants[0]}.bot_token_enc: no configured key opens it"]
        assert broken.unverified == [f"{tenants[0]}.bot_token_enc"]
        assert not broken.ok
    finally:
        await conn.close()

    # The CLI: the same through the environment; exit 1 while something does not open.
    env = {"DATABASE_URL": fleet.dsn, "ENCRYPTION_KEYS": f"{new},{old}"}
    result = await run_cli("scripts.rotate_keys", env=env)
    assert result.returncode == 1
    assert f"FAILED {tenants[0]}.bot_token_enc" in result.stderr
    assert "re-encrypted under the first key" in result.stdout
    assert not any(secret in result.stdout + result.stderr for secret in plain.values())
