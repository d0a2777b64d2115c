"""Password hashing: Argon2id through argon2-cffi (its defaults follow RFC 9106's advice).

Hashing is CPU-heavy on purpose, so it runs in a worker thread: the event loop keeps serving.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
# Verified when an account is unknown or has no password, so a login takes as long either way
# (the answer alone must not tell which emails have accounts).
_DUMMY = _HASHER.hash("botfleet: no such account")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(encoded: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(encoded or _DUMMY, password) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(encoded: str | None, password: str) -> bool:
    """Whether `password` matches `encoded` (None: no password set; still does the work)."""
    return await asyncio.to_thread(_verify, encoded, password)


def needs_rehash(encoded: str) -> bool:
    return _HASHER.check_needs_rehash(encoded)
