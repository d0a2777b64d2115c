"""The web's errors: the platform's one error shape (core/http_errors.py), as the master's API:
`{"error": {"code", "message", "details"}}`. Bad input is a 4xx (malformed JSON 400, wrong values
422, no or bad token 401, someone else's or an unknown object 404); a bug is a 500 with a
generic message, the traceback in the log (redacted), and the server keeps serving."""

from __future__ import annotations

from core.http_errors import (
    ApiError,
    ErrorBody,
    ErrorOut,
    Handler,
    error_response,
    from_validation,
    make_error_middleware,
)
from core.http_errors import unauthorized as _unauthorized

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorOut",
    "Handler",
    "error_middleware",
    "error_response",
    "from_validation",
    "unauthorized",
]

REALM = "botfleet-web"

error_middleware = make_error_middleware("the web")


def unauthorized(message: str) -> ApiError:
    return _unauthorized(message, REALM)
