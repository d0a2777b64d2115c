"""Bot tokens at rest in the sales bot (Redis dialog state, orders) are sealed, never plain.

Keys are ENCRYPTION_KEYS (the first seals, all open: rotation as in core.secrets). Each
ciphertext is bound to a context (`order:<id>`, `draft:<user id>`) through a derived key, so a
ciphertext copied elsewhere does not open.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.secrets import parse_keys

_INFO = b"botfleet sales secret v1:"


def order_context(order_id: str) -> str:
    """The context an order's bot token is sealed under: the one place `order:<id>` is built
    (the sales bot seals and opens with it, scripts/rotate_keys.py re-seals with it)."""
    return f"order:{order_id}"


class VaultError(ValueError):
    """A ciphertext that does not open with the configured keys for this context."""


class Vault:
    def __init__(self, keys: str) -> None:
        self._keys = parse_keys(keys)

    def _fernet(self, context: str) -> MultiFernet:
        derived = []
        for key in self._keys:
            hkdf = HKDF(
                algorithm=hashes.SHA256(),
                length=32,
                salt=base64.urlsafe_b64decode(key),
                info=_INFO + context.encode(),
            )
            derived.append(Fernet(base64.urlsafe_b64encode(hkdf.derive(b"sales-secret"))))
        return MultiFernet(derived)

    def seal(self, context: str, secret: str) -> str:
        return self._fernet(context).encrypt(secret.encode()).decode()

    def open(self, context: str, ciphertext: str) -> str:
        try:
            return self._fernet(context).decrypt(ciphertext.encode()).decode()
        except (InvalidToken, UnicodeError):
            raise VaultError(
                f"cannot open the secret of {context}: sealed with a key that is not in "
                "ENCRYPTION_KEYS, or for another context"
            ) from None
