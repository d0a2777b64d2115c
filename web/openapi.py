"""The OpenAPI document, generated from the route table and the pydantic models.

OpenAPI 3.0.3, not 3.1: the Swagger UI that `swagger-ui-bundle` ships (4.x) renders only 3.0, so
pydantic's JSON Schema is written down in 3.0 terms (`nullable` instead of a null type, `enum`
instead of `const`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.errors import ErrorOut
from web.routes import ROUTES, Route

REF = "#/components/schemas/{model}"
_REASONS = {
    400: "Malformed request (invalid JSON)",
    401: "Missing, expired, forged or revoked token; or wrong credentials",
    403: "This site may not use this widget",
    404: "Not yours, or unknown",
    409: "Conflicts with the current state (email taken, bot not active, assistant off)",
    415: "Wrong Content-Type",
    422: "Invalid values",
    429: "Too many attempts or messages: see Retry-After",
    503: "A dependency failed",
}


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [ErrorOut]
    for route in ROUTES:
        for model in (route.response,):
            if model is not None and model not in found:
                found.append(model)
    return found


def _parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    return [
        {"name": name, "in": where, "required": name in schema.get("required", []), "schema": p}
        for name, p in schema.get("properties", {}).items()
    ]


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": [],
        "responses": {},
    }
    for name, schema in (
        ("tenant_id", {"type": "string"}),
        ("key", {"type": "string"}),
        ("lead_id", {"type": "integer", "minimum": 1}),
        ("booking_id", {"type": "integer", "minimum": 1}),
        ("service_id", {"type": "integer", "minimum": 1}),
        ("customer_id", {"type": "integer", "description": "negative: a web customer"}),
        ("day", {"type": "string", "format": "date"}),
    ):
        if "{" + name + "}" in route.path:
            op["parameters"].append(
                {"name": name, "in": "path", "required": True, "schema": schema}
            )
    if route.query is not None:
        op["parameters"].extend(_parameters(route.query, "query"))
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=route.body.__name__)}}
            },
        }
    if route.form is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"$ref": REF.format(model=route.form.__name__)}
                }
            },
        }
    if route.response is not None:
        op["responses"][str(route.ok)] = {
            "description": "OK",
            "content": {
                route.content_type: {"schema": {"$ref": REF.format(model=route.response.__name__)}}
            },
        }
    else:
        op["responses"][str(route.ok)] = {"description": "OK"}
    for status in route.errors:
        op["responses"][str(status)] = {
            "description": _REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorOut")}}},
        }
    if route.auth == "bearer":
        op["security"] = [{"oauth2": []}]
    elif route.auth == "optional":
        op["security"] = [{"oauth2": []}, {}]
    return op


def to_openapi30(node: Any) -> Any:
    """Pydantic's (JSON Schema 2020-12) spelling of a schema, rewritten for OpenAPI 3.0."""
    if isinstance(node, list):
        return [to_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: to_openapi30(value) for key, value in node.items()}
    variants = node.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        others = [v for v in variants if v != {"type": "null"}]
        del node["anyOf"]
        if len(others) == 1:
            node = {**others[0], **node, "nullable": True}
        else:
            node = {**node, "anyOf": others, "nullable": True}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node


def build_openapi() -> dict[str, Any]:
    _, schemas = models_json_schema([(m, "serialization") for m in _models()], ref_template=REF)
    components = schemas.get("$defs", {})
    for route in ROUTES:
        for model in (route.body, route.form):
            if model is not None:
                components[model.__name__] = model.model_json_schema(
                    ref_template=REF, mode="validation"
                )
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        if route.documented:
            paths.setdefault(route.path, {})[route.method.lower()] = to_openapi30(_operation(route))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "botfleet web API",
            "version": "1.0.0",
            "description": "The owner's web: accounts, leads, the AI assistant, the website"
            ' widget. Errors: {"error": {"code": ..., "message": ..., "details": ...}}.'
            " Authorize with your email and password (OAuth2 password flow).",
        },
        "paths": paths,
        "components": {
            "schemas": to_openapi30(components),
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {"password": {"tokenUrl": "/api/auth/login", "scopes": {}}},
                }
            },
        },
    }
