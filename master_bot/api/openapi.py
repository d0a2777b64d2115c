"""The OpenAPI 3.1 document, generated from the route table and the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from core.http_errors import ErrorOut
from master_bot.api.routes import ROUTES, Route

REF = "#/components/schemas/{model}"
_REASONS = {
    400: "Malformed request (bad or too deeply nested JSON, missing Idempotency-Key)",
    401: "Missing or wrong bearer token",
    404: "Unknown tenant",
    409: "Conflicts with the current state (token in use, wrong status, key reused)",
    415: "A request body that is not Content-Type: application/json",
    422: "Invalid values (or a bot token Telegram rejects, or an expiry past 9999-01-01)",
    503: "A dependency failed (Telegram, deploy backend, pg_dump); retry later",
}


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorOut]
    for route in ROUTES:
        for model in (route.body, route.response):
            if model is not None and model not in found:
                found.append(model)
    return found


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    params = []
    for name, prop in schema.get("properties", {}).items():
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", []),
                "schema": prop,
            }
        )
    return params


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "parameters": [],
        "responses": {},
    }
    if "{tenant_id}" in route.path:
        op["parameters"].append(
            {
                "name": "tenant_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": r"^client_[0-9]{1,12}$"},
            }
        )
    if "{db_server}" in route.path:
        op["parameters"].append(
            {
                "name": "db_server",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": r"^[a-z][a-z0-9_-]{0,31}$"},
            }
        )
    if route.idempotency_key:
        op["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                "description": "the order id: a retry with the same key returns the same result",
            }
        )
    if route.query is not None:
        op["parameters"].extend(_query_parameters(route.query))
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=route.body.__name__)}}
            },
        }
    if route.response is not None:
        content = {"schema": {"$ref": REF.format(model=route.response.__name__)}}
    else:
        content = {"schema": {"type": "string"}}
    op["responses"][str(route.ok)] = {
        "description": "OK",
        "content": {route.content_type: content},
    }
    if route.ok == 201:
        op["responses"]["200"] = {
            "description": "Already provisioned for this Idempotency-Key",
            "content": {route.content_type: content},
        }
    for status in route.errors:
        op["responses"][str(status)] = {
            "description": _REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorOut")}}},
        }
    if not route.public:
        op["security"] = [{"bearer": []}]
    return op


def build_openapi() -> dict[str, Any]:
    _, schemas = models_json_schema([(m, "serialization") for m in _models()], ref_template=REF)
    components = schemas.get("$defs", {})
    # Request bodies are described as validated (input) schemas.
    for route in ROUTES:
        if route.body is not None:
            components[route.body.__name__] = route.body.model_json_schema(
                ref_template=REF, mode="validation"
            )
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "botfleet master API",
            "version": "1.0.0",
            "description": "Control plane of the bot fleet. Errors: "
            '{"error": {"code": ..., "message": ..., "details": ...}}.',
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
