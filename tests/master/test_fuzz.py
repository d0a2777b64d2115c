"""Fuzz the REST API from its own OpenAPI document: whatever arrives, never a 5xx.

Bodies come from the served JSON schemas (a small schema-to-strategy translation below, enough
for the flat models of this API) mixed with arbitrary JSON and bytes; path ids, query strings and Idempotency-Keys are random too. The same server
answers every example, so the test also shows it keeps serving after bad input.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from master_bot.api.openapi import build_openapi
from tests.master.conftest import Harness

DOC = build_openapi()
SCHEMAS = DOC["components"]["schemas"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for `schema`, or nearly (edges included) — good fuzz input either way."""
    schema = _resolve(schema)
    if "anyOf" in schema:
        return st.one_of([from_schema(s) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum")) | st.integers()
    if kind == "number":
        return st.floats(allow_nan=False)
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"]).map(
                lambda v: v[: schema.get("maxLength", len(v))]
            )
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 50))
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required},
        )
    return json_values


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return SCHEMAS[ref.rsplit("/", 1)[-1]]
    return schema


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, methods in DOC["paths"].items()
        for method, op in methods.items()
    ]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], dict[str, str], bytes | None]:
    method, path, op = draw(st.sampled_from(_operations()))
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = draw(
                st.from_regex(r"client_[0-9]{1,12}", fullmatch=True)
                | st.text(min_size=1, max_size=30)
            )
            path = path.replace("{tenant_id}", quote(value, safe=""))
        elif param["in"] == "header":
            if draw(st.booleans()):
                headers[param["name"]] = (
                    draw(
                        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
                    ).strip()
                    or "k"
                )
        elif param["in"] == "query" and draw(st.booleans()):
            raw = draw(from_schema(param["schema"]) | st.text(max_size=20))
            query[param["name"]] = raw if isinstance(raw, str) else json.dumps(raw)
    body: bytes | None = None
    request_body = op.get("requestBody")
    if request_body is not None:
        schema = _resolve(request_body["content"]["application/json"]["schema"])
        kind = draw(st.sampled_from(["schema", "json", "bytes"]))
        if kind == "schema":
            body = json.dumps(draw(from_schema(schema))).encode()
        elif kind == "json":
            body = json.dumps(draw(json_values)).encode()
        else:
            body = draw(st.binary(max_size=200))
        # Mostly the declared type, so bodies reach the JSON parsing and validation; some
        # without or with another type (415).
        headers["Content-Type"] = draw(
            st.sampled_from(
                ["application/json"] * 4 + ["text/plain", "application/json; charset=utf-8"]
            )
        )
    return method, path, headers, query, body


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
async def test_no_request_makes_the_api_fail(harness: Harness, request) -> None:
    method, path, headers, query, body = request
    reply = await harness.api.call(method, path, data=body, headers=headers, params=query)
    assert reply.status < 500, (method, path, query, body, reply.body)
    if reply.status >= 400 and isinstance(reply.body, dict):
        assert set(reply.body) == {"error"} and "code" in reply.body["error"]
