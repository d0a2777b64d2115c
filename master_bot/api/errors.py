"""One error shape for every non-2xx answer: `{"error": {"code", "message", "details"}}`.

Bad input is always a 4xx: malformed JSON (400), wrong types or values (422), a missing
Idempotency-Key (400), unknown tenants (404), a wrong bearer token (401). A bug is a 500 with
a generic message (the traceback goes to the log, redacted), and the server keeps serving.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from core.logs import redact
from master_bot.errors import (
    ConflictError,
    MasterError,
    NotFoundError,
    RejectedError,
    UnavailableError,
)

log = logging.getLogger(__name__)
JSON_MAX_DEPTH = 200  # pydantic-core's JSON parser (jiter) refuses deeper nesting
JSON_TYPE = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": redact(message)}
    if details:
        body["details"] = details
    return web.json_response(
        {"error": body}, status=status, dumps=lambda v: json.dumps(v, default=str)
    )


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


def validation_details(exc: ValidationError) -> dict[str, Any]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        problems.append(
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
        )
    return {"problems": problems}


def from_validation(exc: ValidationError, what: str) -> ApiError:
    invalid = [e for e in exc.errors() if e["type"] == "json_invalid"]
    if any("recursion limit" in str(e.get("msg", "")) for e in invalid):
        return ApiError(
            400,
            "json_too_deep",
            f"the {what} is nested too deeply (at most {JSON_MAX_DEPTH} levels of arrays/objects)",
        )
    if invalid:
        return ApiError(400, "invalid_json", f"the {what} is not valid JSON")
    if any(e["type"] == "model_type" and not e["loc"] for e in exc.errors()):
        return ApiError(422, "validation_error", f"the {what} must be a JSON object")
    return ApiError(422, "validation_error", f"the {what} is invalid", validation_details(exc))


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="botfleet"'
        return response
    except MasterError as exc:
        return error_response(_status_of(exc), exc.code, exc.message, exc.details or None)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        response = error_response(exc.status, code, exc.reason)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the master's log")


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
                raise ApiError(
                    401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer ...)"
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
