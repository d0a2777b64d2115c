"""Accounts, sessions, refresh tokens, login links and widget keys: the web's rows in the
control schema (migrations control/0009, 0010). Plain SQL with $n parameters.

Refresh tokens are random (32 bytes), handed out once and stored only as SHA-256 digests.
`rotate` spends one and issues the next in the same session, in one transaction that locks the
token's row: two concurrent uses of one token cannot both succeed, and the loser's attempt is
treated as a reuse (the session is revoked).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

ACCOUNT_COLUMNS = "id, email, company_name, owner_telegram_id, created_at"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str | None
    company_name: str
    owner_telegram_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OwnedTenant:
    tenant_id: str
    owner_telegram_id: int
    business_name: str
    status: str
    plan: str
    bot_username: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    tenant_id: str | None  # set: opened by a bot's link, limited to that bot


class RefreshRefused(Exception):
    """Unknown, expired, already used (the session is then revoked) or of a revoked session."""


class EmailTaken(Exception):
    pass


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _account(row: asyncpg.Record) -> Account:
    return Account(
        row["id"], row["email"], row["company_name"], row["owner_telegram_id"], row["created_at"]
    )


class Accounts:
    def __init__(self, pool: asyncpg.Pool, *, refresh_ttl: int) -> None:
        self.pool = pool
        self.refresh_ttl = refresh_ttl

    # --- accounts -------------------------------------------------------------------------
    async def create(self, email: str, password_hash: str, company_name: str) -> Account:
        try:
            row = await self.pool.fetchrow(
                "INSERT INTO control.web_accounts (email, password_hash, company_name)"
                f" VALUES ($1, $2, $3) RETURNING {ACCOUNT_COLUMNS}",
                email,
                password_hash,
                company_name,
            )
        except asyncpg.UniqueViolationError:
            raise EmailTaken(email) from None
        return _account(row)

    async def credentials(self, email: str) -> tuple[Account, str | None] | None:
        row = await self.pool.fetchrow(
            f"SELECT {ACCOUNT_COLUMNS}, password_hash FROM control.web_accounts WHERE email = $1",
            email,
        )
        return None if row is None else (_account(row), row["password_hash"])

    async def get(self, account_id: int) -> Account | None:
        row = await self.pool.fetchrow(
            f"SELECT {ACCOUNT_COLUMNS} FROM control.web_accounts WHERE id = $1", account_id
        )
        return None if row is None else _account(row)

    async def set_login(self, account_id: int, email: str, password_hash: str) -> None:
        """The account's email (unique) and password hash."""
        try:
            await self.pool.execute(
                "UPDATE control.web_accounts SET email = $2, password_hash = $3,"
                " updated_at = now() WHERE id = $1",
                account_id,
                email,
                password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise EmailTaken(email) from None

    async def for_telegram(self, telegram_id: int, company_name: str) -> Account:
        """The account bound to this Telegram id, created (without email/password) if none."""
        row = await self.pool.fetchrow(
            "INSERT INTO control.web_accounts (owner_telegram_id, company_name) VALUES ($1, $2)"
            " ON CONFLICT (owner_telegram_id) DO UPDATE SET updated_at = now()"
            f" RETURNING {ACCOUNT_COLUMNS}",
            telegram_id,
            company_name,
        )
        return _account(row)

    async def bind_telegram(self, account_id: int, telegram_id: int) -> bool:
        """Bind a Telegram id to an existing account; False when another account has it."""
        try:
            status = await self.pool.execute(
                "UPDATE control.web_accounts SET owner_telegram_id = $2, updated_at = now()"
                " WHERE id = $1 AND (owner_telegram_id IS NULL OR owner_telegram_id = $2)",
                account_id,
                telegram_id,
            )
        except asyncpg.UniqueViolationError:
            return False
        return bool(status == "UPDATE 1")

    async def tenants(self, account_id: int, only: str | None = None) -> list[OwnedTenant]:
        """Tenants the account owns: linked ones and those bought under its Telegram id
        (`only`: that one, if owned). Deleted tenants are not listed."""
        rows = await self.pool.fetch(
            "SELECT t.tenant_id, t.owner_telegram_id, t.business_name, t.status, t.plan, t.bot_username, t.expires_at"
            " FROM control.tenants t"
            " WHERE t.status <> 'deleted' AND ("
            "   EXISTS (SELECT 1 FROM control.web_account_tenants l"
            "           WHERE l.account_id = $1 AND l.tenant_id = t.tenant_id)"
            "   OR t.owner_telegram_id = (SELECT owner_telegram_id FROM control.web_accounts"
            "                             WHERE id = $1))"
            " AND ($2::text IS NULL OR t.tenant_id = $2)"
            " ORDER BY t.number",
            account_id,
            only,
        )
        return [
            OwnedTenant(
                r["tenant_id"],
                r["owner_telegram_id"],
                r["business_name"],
                r["status"],
                r["plan"],
                r["bot_username"],
                r["expires_at"],
            )
            for r in rows
        ]

    # --- sessions and refresh tokens ------------------------------------------------------
    async def open_session(self, account_id: int, tenant_id: str | None = None) -> tuple[str, str]:
        """A new session (limited to `tenant_id` when given) and its first refresh token:
        (session id, refresh token)."""
        token = secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn, conn.transaction():
            session_id = await conn.fetchval(
                "INSERT INTO control.web_sessions (account_id, tenant_id) VALUES ($1, $2)"
                " RETURNING id",
                account_id,
                tenant_id,
            )
            await self._add_refresh(conn, session_id, token)
        return str(session_id), token

    async def _add_refresh(self, conn: asyncpg.Connection, session_id: object, token: str) -> None:
        await conn.execute(
            "INSERT INTO control.web_refresh_tokens (token_sha256, session_id, expires_at)"
            " VALUES ($1, $2, $3)",
            digest(token),
            session_id,
            datetime.now(UTC) + timedelta(seconds=self.refresh_ttl),
        )

    async def rotate(self, refresh_token: str) -> tuple[int, str, str]:
        """Spend `refresh_token`: (account id, session id, the next refresh token).
        A token used before revokes its whole session (it leaked) and is refused."""
        new_token = secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await conn.fetchrow(
                    "SELECT r.session_id, r.expires_at, r.used_at, s.account_id, s.revoked_at"
                    " FROM control.web_refresh_tokens r"
                    " JOIN control.web_sessions s ON s.id = r.session_id"
                    " WHERE r.token_sha256 = $1 FOR UPDATE OF r",
                    digest(refresh_token),
                )
                if row is None or row["revoked_at"] is not None:
                    raise RefreshRefused("unknown or revoked refresh token")
                if row["used_at"] is None and row["expires_at"] > datetime.now(UTC):
                    await conn.execute(
                        "UPDATE control.web_refresh_tokens SET used_at = now()"
                        " WHERE token_sha256 = $1",
                        digest(refresh_token),
                    )
                    await self._add_refresh(conn, row["session_id"], new_token)
                    return row["account_id"], str(row["session_id"]), new_token
            reused = row["used_at"] is not None
            if reused:  # outside the rolled-back transaction: the revocation must stay
                await self._revoke(conn, row["session_id"], "refresh token reused")
        raise RefreshRefused("refresh token already used" if reused else "refresh token expired")

    async def _revoke(self, conn: asyncpg.Connection, session_id: object, reason: str) -> None:
        await conn.execute(
            "UPDATE control.web_sessions SET revoked_at = now(), revoke_reason = $2"
            " WHERE id = $1 AND revoked_at IS NULL",
            session_id,
            reason,
        )

    async def revoke(self, session_id: str, reason: str = "logout") -> None:
        async with self.pool.acquire() as conn:
            await self._revoke(conn, session_id, reason)

    async def caller(self, session_id: str, account_id: int) -> tuple[Account, Session] | None:
        """The account and its live session behind an access token, in one round trip (every
        request asks); None when the session ended or the account is gone."""
        row = await self.pool.fetchrow(
            "SELECT a.id, a.email, a.company_name, a.owner_telegram_id, a.created_at,"
            " s.id AS session_id, s.tenant_id FROM control.web_sessions s"
            " JOIN control.web_accounts a ON a.id = s.account_id"
            " WHERE s.id = $1 AND s.account_id = $2 AND s.revoked_at IS NULL",
            session_id,
            account_id,
        )
        if row is None:
            return None
        return _account(row), Session(str(row["session_id"]), row["tenant_id"])

    async def session(self, session_id: str, account_id: int) -> Session | None:
        """The account's session, unless revoked (logout, reuse, password change)."""
        row = await self.pool.fetchrow(
            "SELECT id, tenant_id FROM control.web_sessions"
            " WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
            session_id,
            account_id,
        )
        return None if row is None else Session(str(row["id"]), row["tenant_id"])

    async def revoke_all(self, account_id: int, reason: str) -> None:
        await self.pool.execute(
            "UPDATE control.web_sessions SET revoked_at = now(), revoke_reason = $2"
            " WHERE account_id = $1 AND revoked_at IS NULL",
            account_id,
            reason,
        )

    # --- password resets ------------------------------------------------------------------
    async def start_reset(self, account_id: int, ttl: int) -> str:
        """A one-time reset token (only its digest is kept)."""
        token = secrets.token_urlsafe(32)
        await self.pool.execute(
            "INSERT INTO control.web_password_resets (token_sha256, account_id, expires_at)"
            " VALUES ($1, $2, now() + make_interval(secs => $3))",
            digest(token),
            account_id,
            float(ttl),
        )
        return token

    async def finish_reset(self, token: str, password_hash: str) -> int | None:
        """Spend a reset token: set the password, end every session; the account id, or None
        when the token is unknown, used or expired. Other pending resets of the account die."""
        async with self.pool.acquire() as conn, conn.transaction():
            account_id = await conn.fetchval(
                "UPDATE control.web_password_resets SET used_at = now()"
                " WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > now()"
                " RETURNING account_id",
                digest(token),
            )
            if account_id is None:
                return None
            await conn.execute(
                "UPDATE control.web_password_resets SET used_at = now()"
                " WHERE account_id = $1 AND used_at IS NULL",
                account_id,
            )
            await conn.execute(
                "UPDATE control.web_accounts SET password_hash = $2, updated_at = now()"
                " WHERE id = $1",
                account_id,
                password_hash,
            )
            await conn.execute(
                "UPDATE control.web_sessions SET revoked_at = now(),"
                " revoke_reason = 'password reset' WHERE account_id = $1 AND revoked_at IS NULL",
                account_id,
            )
        return int(account_id)

    # --- one-time login links -------------------------------------------------------------
    async def use_link(self, jti: str, expires_at: int) -> bool:
        """Record the link as used; False when it already was."""
        status = await self.pool.execute(
            "INSERT INTO control.web_used_links (jti, expires_at) VALUES ($1, $2)"
            " ON CONFLICT (jti) DO NOTHING",
            jti,
            datetime.fromtimestamp(expires_at, UTC),
        )
        return bool(status == "INSERT 0 1")

    async def forget_old(self) -> None:
        """Housekeeping: expired links and refresh tokens are of no use any more."""
        await self.pool.execute("DELETE FROM control.web_used_links WHERE expires_at < now()")
        await self.pool.execute(
            "DELETE FROM control.web_password_resets WHERE expires_at < now() - interval '1 day'"
        )
        await self.pool.execute(
            "DELETE FROM control.web_refresh_tokens WHERE expires_at < now() - interval '1 day'"
        )

    # --- widget keys ----------------------------------------------------------------------
    async def widget_key(self, tenant_id: str) -> tuple[str, list[str]]:
        """The tenant's public widget key (made on first use) and its allowed origins."""
        row = await self.pool.fetchrow(
            "INSERT INTO control.web_widget_keys (key, tenant_id) VALUES ($1, $2)"
            " ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id"
            " RETURNING key, allowed_origins",
            "w_" + secrets.token_urlsafe(18),
            tenant_id,
        )
        return row["key"], list(row["allowed_origins"])

    async def set_widget_origins(self, tenant_id: str, origins: list[str]) -> None:
        await self.pool.execute(
            "UPDATE control.web_widget_keys SET allowed_origins = $2 WHERE tenant_id = $1",
            tenant_id,
            origins,
        )

    async def widget_tenant(self, key: str) -> tuple[str, list[str]] | None:
        """(tenant id, allowed origins) of an active tenant's widget key, or None."""
        row = await self.pool.fetchrow(
            "SELECT k.tenant_id, k.allowed_origins FROM control.web_widget_keys k"
            " JOIN control.tenants t ON t.tenant_id = k.tenant_id"
            " WHERE k.key = $1 AND t.status = 'active'",
            key,
        )
        return None if row is None else (row["tenant_id"], list(row["allowed_origins"]))
