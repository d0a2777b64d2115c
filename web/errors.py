"""The web's errors: the platform's one error shape (core/http_errors.py), as the master's API:
`{"error": {"code", "message", "details"}}`. Bad input is a 4xx (malformed JSON 400, wrong values
422, no or bad token 401, someone else's or an unknown object 404); a bug is a 500 with a
generic message, the traceback in the log (redacted), and the server keeps serving. A bot's
PostgreSQL server or Redis that does not answer is a 503 that says so (try again), not a 500."""

from __future__ import annotations

import logging

from aiohttp import web

from core.errors import is_outage
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
from database.pool import DatabaseUnavailableError

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

log = logging.getLogger(__name__)


def _unavailable(exc: Exception) -> web.Response | None:
    """An outage (the bots' own classification, `core.errors.is_outage`, or a pool that gave up
    connecting), not a bug: a server that is down, restarting or refusing new sessions."""
    if not (isinstance(exc, DatabaseUnavailableError) or is_outage(exc)):
        return None
    log.warning("a database did not answer: %s: %s", type(exc).__name__, exc)
    response = error_response(
        503,
        "database_unavailable",
        "this bot's database does not answer right now; try again in a minute",
    )
    response.headers["Retry-After"] = "30"
    return response


error_middleware = make_error_middleware("the web", domain=_unavailable)


def unauthorized(message: str) -> ApiError:
    return _unauthorized(message, REALM)
