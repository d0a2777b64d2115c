"""Signed tokens of the owner's web, with PyJWT (HS256): access tokens and one-time login links.

Keys rotate: `WEB_JWT_KEYS` lists them newest first; the first signs, every one verifies. Each
token names its key in the `kid` header (a digest of the key, never the key), so verification
tries exactly one key. Access tokens and login links have different audiences, so one can
never pass for the other.

Refresh tokens are not JWTs: they are random, stored as digests and single-use (web/accounts.py).

`python -m web.tokens` prints a fresh key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
ISSUER = "botfleet-web"
ACCESS_AUDIENCE = "botfleet-web-access"
LINK_AUDIENCE = "botfleet-web-login-link"
LEEWAY = 5  # seconds of clock skew tolerated


class TokenError(ValueError):
    """A token that is malformed, forged, expired, of another kind or signed by an unknown key.
    The message is safe to show (it never contains the token)."""


def generate_key() -> str:
    return secrets.token_urlsafe(48)


def key_id(key: str) -> str:
    return hashlib.sha256(b"botfleet-web-kid:" + key.encode()).hexdigest()[:16]


class SigningKeys:
    """The configured keys: the first signs, all verify."""

    def __init__(self, raw: str) -> None:
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        if not keys:
            raise ValueError("no JWT signing key configured (WEB_JWT_KEYS)")
        self._signing = keys[0]
        self._by_kid = {key_id(k): k for k in keys}

    def __repr__(self) -> str:  # never print a key
        return f"SigningKeys(kids={list(self._by_kid)})"

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._signing, algorithm=ALGORITHM, headers={"kid": key_id(self._signing)}
        )

    def verify(self, token: str, audience: str, required: list[str]) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise TokenError("malformed token") from None
        key = self._by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("token signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", *required]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidTokenError:
            raise TokenError("invalid token") from None
        return claims


@dataclass(frozen=True, slots=True)
class AccessClaims:
    account_id: int
    session_id: str
    expires_at: int


def issue_access(keys: SigningKeys, account_id: int, session_id: str, ttl: int) -> str:
    now = int(time.time())
    return keys.sign(
        {
            "iss": ISSUER,
            "aud": ACCESS_AUDIENCE,
            "sub": str(account_id),
            "sid": session_id,
            "iat": now,
            "exp": now + ttl,
        }
    )


def verify_access(keys: SigningKeys, token: str) -> AccessClaims:
    claims = keys.verify(token, ACCESS_AUDIENCE, ["sub", "sid"])
    sub, sid = claims["sub"], claims["sid"]
    if not (isinstance(sub, str) and sub.isdigit() and isinstance(sid, str)):
        raise TokenError("invalid token")
    try:
        uuid.UUID(sid)
    except ValueError:
        raise TokenError("invalid token") from None
    return AccessClaims(int(sub), sid, int(claims["exp"]))


@dataclass(frozen=True, slots=True)
class LinkClaims:
    telegram_id: int
    jti: str
    expires_at: int


def issue_login_link(keys: SigningKeys, telegram_id: int, ttl: int) -> str:
    """A short-lived token that logs the owner with this Telegram id in once (the sales bot and
    the client bot's /admin hand it out as `<WEB_PUBLIC_URL>/login/link?token=...`)."""
    if not isinstance(telegram_id, int) or telegram_id <= 0:
        raise ValueError("a login link is for a Telegram user id (a positive integer)")
    now = int(time.time())
    return keys.sign(
        {
            "iss": ISSUER,
            "aud": LINK_AUDIENCE,
            "sub": str(telegram_id),
            "jti": secrets.token_urlsafe(18),
            "iat": now,
            "exp": now + ttl,
        }
    )


def login_link_url(keys: SigningKeys, public_url: str, telegram_id: int, ttl: int) -> str:
    return f"{public_url.rstrip('/')}/login/link?token={issue_login_link(keys, telegram_id, ttl)}"


def verify_login_link(keys: SigningKeys, token: str) -> LinkClaims:
    """The link's claims; TokenError when forged or expired. Whether it was already used is
    for the caller to record (web/accounts.py `use_link`)."""
    claims = keys.verify(token, LINK_AUDIENCE, ["sub", "jti"])
    sub, jti = claims["sub"], claims["jti"]
    if not (isinstance(sub, str) and sub.isdigit() and isinstance(jti, str)):
        raise TokenError("invalid token")
    if not 16 <= len(jti) <= 64:
        raise TokenError("invalid token")
    return LinkClaims(int(sub), jti, int(claims["exp"]))


if __name__ == "__main__":
    print(generate_key())
