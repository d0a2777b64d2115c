"""The master API's errors: the platform's one error shape (core/http_errors.py), with the
master's own exceptions mapped to their statuses, its bearer-token check and its JSON-only rule.

Bad input is always a 4xx: malformed JSON (400), wrong types or values (422), a missing
Idempotency-Key (400), unknown tenants (404), a wrong bearer token (401). A bug is a 500 with
a generic message (the traceback goes to the log, redacted), and the server keeps serving.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from core.http_errors import (
    JSON_MAX_DEPTH,
    JSON_TYPE,
    ApiError,
    Handler,
    error_response,
    from_validation,
    make_error_middleware,
    unauthorized,
    validation_details,
)
from master_bot.errors import (
    ConflictError,
    MasterError,
    NotFoundError,
    RejectedError,
    UnavailableError,
)

__all__ = [
    "JSON_MAX_DEPTH",
    "ApiError",
    "Handler",
    "auth_middleware",
    "error_middleware",
    "error_response",
    "from_validation",
    "json_body_middleware",
    "validation_details",
]

REALM = "botfleet"


def _status_of(exc: MasterError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, RejectedError):
        return 422
    if isinstance(exc, UnavailableError):
        return 503
    return 400


def _master_errors(exc: Exception) -> web.Response | None:
    if isinstance(exc, MasterError):
        return error_response(_status_of(exc), exc.code, exc.message, exc.details or None)
    return None


error_middleware = make_error_middleware("the master", domain=_master_errors)


def auth_middleware(
    token: str,
    *,
    public: frozenset[str],
    also: Mapping[str, Sequence[str]] | None = None,
) -> Callable[..., Any]:
    """Every path but `public` needs `Authorization: Bearer <token>`; `also` names further
    tokens accepted on one path only (METRICS_TOKEN on /metrics)."""
    expected = f"Bearer {token}".encode()
    extra = {path: [f"Bearer {t}".encode() for t in ts if t] for path, ts in (also or {}).items()}

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in public:
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            ok = hmac.compare_digest(given, expected)
            for other in extra.get(request.path, ()):
                ok = hmac.compare_digest(given, other) or ok  # no short cut: constant work
            if not ok:
                raise unauthorized(
                    "missing or wrong bearer token (Authorization: Bearer ...)", REALM
                )
        return await handler(request)

    return check


@web.middleware
async def json_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request that carries a body must say it is JSON: anything else is a 415."""
    if request.body_exists and request.content_type != JSON_TYPE:
        given = request.headers.get("Content-Type", "")[:80] or "none"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"request bodies must be JSON sent as Content-Type: {JSON_TYPE} (got {given!r})",
        )
    return await handler(request)
