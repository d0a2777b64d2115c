"""One error shape for every non-2xx answer of the platform's HTTP APIs (the master's REST API
and the owners' web): `{"error": {"code", "message", "details"}}`.

Bad input is always a 4xx: malformed or too deeply nested JSON (400), wrong types or values
(422), no or a wrong token (401, with `WWW-Authenticate`), someone else's or an unknown object
(404), a body that is not JSON (415). A bug is a 500 with a generic message (the traceback goes
to the log, redacted), and the server keeps serving. Messages are redacted before they are sent.

    error_middleware = make_error_middleware("the master", domain=answer_master_errors)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from core.logs import redact

log = logging.getLogger(__name__)
JSON_MAX_DEPTH = 200  # pydantic-core's JSON parser (jiter) refuses deeper nesting
JSON_TYPE = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# An exception of the service's own domain -> its answer; None: not one of them.
DomainErrors = Callable[[Exception], web.Response | None]

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. tenant_not_found")
    message: str = Field(description="what went wrong, for people; never contains secrets")
    details: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def unauthorized(message: str, realm: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'}
    )


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": redact(message)}
    if details:
        body["details"] = details
    return web.json_response(
        {"error": body}, status=status, dumps=lambda v: json.dumps(v, default=str)
    )


def validation_details(exc: ValidationError) -> dict[str, Any]:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    problems = [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
        for e in errors
    ]
    return {"problems": problems}


def from_validation(exc: ValidationError, what: str) -> ApiError:
    """What a request whose `what` ("request body", "query", …) did not validate gets."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    invalid = [e for e in errors if e["type"] == "json_invalid"]
    if any("recursion limit" in str(e.get("msg", "")) for e in invalid):
        return ApiError(
            400,
            "json_too_deep",
            f"the {what} is nested too deeply (at most {JSON_MAX_DEPTH} levels of arrays/objects)",
        )
    if invalid:
        return ApiError(400, "invalid_json", f"the {what} is not valid JSON")
    if any(e["type"] in {"model_type", "dict_type"} and not e["loc"] for e in errors):
        return ApiError(422, "validation_error", f"the {what} must be a JSON object")
    return ApiError(422, "validation_error", f"the {what} is invalid", validation_details(exc))


def make_error_middleware(service: str, *, domain: DomainErrors | None = None) -> Any:
    """The aiohttp middleware answering every error in the one shape; `service` names whose
    log a 500 points to ("the master", "the web"), `domain` answers the service's own
    exceptions."""

    @web.middleware
    async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.details)
            response.headers.update(exc.headers)
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = HTTP_CODES.get(exc.status, "http_error")
            response = error_response(exc.status, code, exc.reason)
            if exc.status == 405 and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception as exc:
            answer = domain(exc) if domain is not None else None
            if answer is not None:
                return answer
            log.exception("unhandled error in %s %s", request.method, request.path)
            return error_response(500, "internal_error", f"internal error; see {service}'s log")

    return error_middleware
