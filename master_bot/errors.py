"""Errors of the master's business rules. Each carries a stable code; the API maps it to HTTP."""

from __future__ import annotations

from typing import Any


class MasterError(Exception):
    """Base: `code` is stable (clients branch on it), `message` is for people (no secrets)."""

    code = "error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFoundError(MasterError):
    code = "tenant_not_found"


class ConflictError(MasterError):
    """The request contradicts the current state (token in use, wrong status, key reuse)."""

    code = "conflict"

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.code = code


class RejectedError(MasterError):
    """Well-formed input the platform cannot accept (an invalid or revoked bot token)."""

    code = "rejected"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnavailableError(MasterError):
    """A dependency failed (Telegram, the deploy backend, pg_dump); retrying may help."""

    def __init__(self, code: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.code = code
