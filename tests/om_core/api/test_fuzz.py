"""Property-based fuzzing of the API from its own OpenAPI document (hypothesis).

Every operation in /openapi.json is a candidate; path, query and header parameters and JSON bodies are
drawn from their schemas (valid values, values from the test store, and deliberately wrong ones: other
types, out-of-range numbers, unknown fields). Whatever is sent, the API never answers 500, every
refusal is a problem document, and a refused request (4xx) writes nothing. The example count is
bounded so the test stays well under a minute.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from om_core.api import ApiSettings, create_app
from tests.om_core.api.conftest import Api, make_keys
from tests.om_core.helpers import table_row_counts

KNOWN = ["MUG", "TEE-S", "KETTLE", "WH-EAST", "ST-NYC", "web", "app", "ACME", "1", "2", "order_lines", "orders", "products"]
ODD = ["", " ", "-1", "0", "999999999999", "x" * 300, "ü", "%00", "null", "1.5", "2026-02-30", "../etc", "<script>"]
ROLES = ["admin"] * 5 + ["manager", "web", "nyc", "merchandiser", "marketing"]  # mostly a key that may call everything


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def any_json(depth: int = 2) -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
    if depth == 0:
        return leaves
    return leaves | st.lists(any_json(depth - 1), max_size=3) | st.dictionaries(st.text(max_size=8), any_json(depth - 1), max_size=3)


def from_schema(schema: dict[str, Any], doc: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly-valid values for a JSON schema, with a share of wrong ones mixed in."""
    schema = _resolve(schema, doc)
    wrong = any_json(1)
    if depth > 4:
        return wrong
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([from_schema(s, doc, depth + 1) for s in schema.get("anyOf", schema.get("oneOf"))])
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | wrong
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fields = {name: from_schema(sub, doc, depth + 1) for name, sub in props.items()}

        @st.composite
        def objects(draw: Any) -> dict[str, Any]:
            out = {}
            for name, strategy in fields.items():
                if name in required or draw(st.booleans()):
                    out[name] = draw(strategy)
            if draw(st.integers(0, 9)) == 0:
                out[draw(st.sampled_from(["surprise", "id", "__proto__"]))] = draw(any_json(0))
            if required and draw(st.integers(0, 9)) == 0:
                out.pop(draw(st.sampled_from(sorted(required))), None)
            return out

        return objects() | (wrong if depth else st.nothing())
    if kind == "array":
        items = from_schema(schema.get("items", {}), doc, depth + 1)
        return st.lists(items, max_size=min(schema.get("maxItems", 3), 3)) | wrong
    if kind == "integer":
        lo, hi = schema.get("minimum", schema.get("exclusiveMinimum", -5)), schema.get("maximum", 10**5)
        return st.integers(int(lo) - 1, int(min(hi, 10**6)) + 1) | wrong
    if kind == "number":
        return st.decimals(-1000, 100_000, places=2).map(str) | st.integers(-5, 1000) | wrong
    if kind == "boolean":
        return st.booleans() | wrong
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.sampled_from(["2026-11-27T10:00:00Z", "2026-11-27T10:00:00", "yesterday", "2026-13-01T00:00:00Z"])
        if schema.get("format") == "date":
            return st.sampled_from(["2026-11-27", "2026-02-30", "27/11/2026"])
        return st.sampled_from(KNOWN + ODD) | st.text(max_size=12) | wrong
    return wrong


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in doc["paths"].items() for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")]


@st.composite
def requests(draw: Any, doc: dict[str, Any]) -> dict[str, Any]:
    method, path, op = draw(st.sampled_from(operations(doc)))
    params, headers = {}, {}
    for p in op.get("parameters", []):
        value = draw(st.sampled_from(KNOWN + ODD) if p["in"] == "path" else from_schema(p.get("schema", {}), doc))
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", str(value).replace("/", "%2F") or "x")
        elif p["in"] == "query" and (p.get("required") or draw(st.booleans())):
            params[p["name"]] = value if isinstance(value, str | int) else json.dumps(value)
        elif p["in"] == "header" and draw(st.booleans()):
            headers[p["name"]] = str(value)[:200].encode("ascii", "replace").decode()
    body = None
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = draw(from_schema(content["application/json"]["schema"], doc))
    elif content:
        body = draw(st.sampled_from(["sku,name\nA,B\n", "garbage", ""]))
    return {"method": method, "path": path, "params": params, "headers": headers, "body": body, "role": draw(st.sampled_from(ROLES))}


@pytest.fixture
def fuzz_api(store) -> Api:
    return Api(create_app(store, ApiSettings(rate_per_second=0, key_cache_seconds=0, access_log=False)), make_keys(store))


def test_openapi_fuzz_no_500_and_refusals_write_nothing(fuzz_api: Api):
    doc = fuzz_api.anon.get("/openapi.json").json()
    assert len(operations(doc)) > 50

    @settings(max_examples=150 if fuzz_api.db.dialect == "sqlite" else 80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(requests(doc))
    def check(req: dict[str, Any]) -> None:
        before = table_row_counts(fuzz_api.db)
        client = fuzz_api.as_(req["role"])
        kwargs: dict[str, Any] = {"params": req["params"], "headers": req["headers"]}
        if isinstance(req["body"], str):
            kwargs["content"] = req["body"].encode()
        elif req["body"] is not None:
            kwargs["json"] = req["body"]
        r = client.request(req["method"], req["path"], **kwargs)
        assert r.status_code < 500, (req, r.text)
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), (req, r.text)
            assert r.json()["status"] == r.status_code
            assert table_row_counts(fuzz_api.db) == before, (req, r.status_code, r.text)

    check()
