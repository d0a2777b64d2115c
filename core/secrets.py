"""Tenant secrets (bot tokens, keys) encrypted at rest.

`ENCRYPTION_KEYS` holds one or more Fernet keys, newest first. Each tenant's secrets are
encrypted under a key *derived* from the platform key and the tenant id (HKDF-SHA256), so a
ciphertext copied into another tenant's row does not decrypt there. `MultiFernet` gives
rotation: the first key encrypts, every key decrypts, and `rotate()` re-encrypts under the first.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.tenant_id import validate_tenant_id

_INFO = b"botfleet tenant secret v1"
_SERVER_INFO = b"botfleet db server secret v1"
_SERVER_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")


class SecretKeyError(ValueError):
    """ENCRYPTION_KEYS is missing or malformed."""


class SecretDecryptionError(ValueError):
    """A ciphertext does not open with the configured keys for this tenant."""


def generate_key() -> str:
    """A fresh Fernet key, for `.env` (`python -m core.secrets` prints one)."""
    return Fernet.generate_key().decode()


def parse_keys(raw: str) -> list[bytes]:
    """Split comma-separated Fernet keys and check each; SecretKeyError names the bad one."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise SecretKeyError(
            "no encryption key configured: set ENCRYPTION_KEYS "
            "(generate one with `python -m core.secrets`)"
        )
    parsed = []
    for position, key in enumerate(keys, start=1):
        try:
            decoded = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != 32:
            raise SecretKeyError(
                f"ENCRYPTION_KEYS key #{position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; generate one with `python -m core.secrets`)"
            )
        parsed.append(key.encode())
    return parsed


class SecretBox:
    """Encrypts and decrypts secrets bound to one tenant id."""

    def __init__(self, keys: str) -> None:
        self._keys = parse_keys(keys)
        self._cache: dict[str, MultiFernet] = {}

    def _fernet(self, tenant_id: str) -> MultiFernet:
        validate_tenant_id(tenant_id)
        return self._derived(tenant_id, _INFO + b":" + tenant_id.encode())

    def _derived(self, cache_key: str, info: bytes) -> MultiFernet:
        box = self._cache.get(cache_key)
        if box is None:
            derived = []
            for key in self._keys:
                hkdf = HKDF(
                    algorithm=hashes.SHA256(),
                    length=32,
                    salt=base64.urlsafe_b64decode(key),
                    info=info,
                )
                derived.append(Fernet(base64.urlsafe_b64encode(hkdf.derive(b"tenant-secret"))))
            box = self._cache[cache_key] = MultiFernet(derived)
        return box

    def _server_fernet(self, server: str) -> MultiFernet:
        if not _SERVER_RE.match(server):
            raise ValueError(f"invalid database server name {server[:40]!r}")
        return self._derived("server:" + server, _SERVER_INFO + b":" + server.encode())

    def encrypt_server(self, server: str, secret: str) -> str:
        """Encrypt a database server's DSN, bound to its name (control.db_servers)."""
        if not isinstance(secret, str) or not secret:
            raise ValueError("refusing to encrypt an empty secret")
        return self._server_fernet(server).encrypt(secret.encode()).decode()

    def decrypt_server(self, server: str, ciphertext: str) -> str:
        try:
            return self._server_fernet(server).decrypt(ciphertext.encode()).decode()
        except (InvalidToken, UnicodeError, AttributeError):
            raise SecretDecryptionError(
                f"cannot decrypt the DSN stored for database server {server}: it was encrypted "
                "with a key that is not in ENCRYPTION_KEYS, or it belongs to another server"
            ) from None

    def rotate_server(self, server: str, ciphertext: str) -> str:
        """Re-encrypt a server's DSN under the current primary key."""
        try:
            return self._server_fernet(server).rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretDecryptionError(
                f"cannot rotate the DSN of database server {server}: no configured key opens it"
            ) from None

    def encrypt(self, tenant_id: str, secret: str) -> str:
        """Encrypt `secret` for `tenant_id` under the primary (first) key."""
        if not isinstance(secret, str) or not secret:
            raise ValueError("refusing to encrypt an empty secret")
        return self._fernet(tenant_id).encrypt(secret.encode()).decode()

    def decrypt(self, tenant_id: str, ciphertext: str) -> str:
        """Decrypt a secret of `tenant_id`; SecretDecryptionError on a wrong key or tenant."""
        try:
            return self._fernet(tenant_id).decrypt(ciphertext.encode()).decode()
        except (InvalidToken, UnicodeError, AttributeError):
            raise SecretDecryptionError(
                f"cannot decrypt the secret stored for tenant {tenant_id}: it was encrypted with "
                "a key that is not in ENCRYPTION_KEYS, or it belongs to another tenant"
            ) from None

    def rotate(self, tenant_id: str, ciphertext: str) -> str:
        """Re-encrypt under the current primary key (old keys must still be configured)."""
        try:
            return self._fernet(tenant_id).rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretDecryptionError(
                f"cannot rotate the secret of tenant {tenant_id}: no configured key opens it"
            ) from None


def mask_token(token: str) -> str:
    """`123456:ABCdef...xyz` -> `123456:***xyz` — safe to show operators."""
    bot_id, _, secret = token.partition(":")
    return f"{bot_id}:***{secret[-3:]}" if secret else "***"


if __name__ == "__main__":
    print(generate_key())
