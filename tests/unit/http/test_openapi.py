"""The OpenAPI document and docs page: generated for the local server, absent from the Lambda."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.monitor_support import classification_baseline, reference_rows
from tests.support import EVENTS, REGISTRY_KEY, DemoModels, load_event, populate
from tickerserve.baselines.persistence import attach_to_bundle
from tickerserve.contract import LIMITS, NAMES, PREDICT
from tickerserve.errors import BadRequest
from tickerserve.http import openapi as openapi_module
from tickerserve.http.api import DOCS_PATH, OPENAPI_PATH, Api
from tickerserve.http.pagination import TOKEN_PATTERN
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.predict import MAX_BATCH_ITEMS, PREDICT_FIELDS, parse_request
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory, models: DemoModels) -> Path:
    root = tmp_path_factory.mktemp("store")
    populate(LocalStore(root), models)
    return root


def make_api(store_dir: Path, tmp_path: Path, *, docs: bool) -> Api:
    settings = Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "cache"))
    return Api(ModelService(settings), docs=docs)


def get(api: Api, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    event = load_event("rest_models.json")
    event["path"] = event["resource"] = event["requestContext"]["path"] = path
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in (query or {}).items()} or None
    return api.handle(event, None)


def post(api: Api, path: str, body: Any) -> int:
    event = load_event("rest_predict.json")
    event["path"] = event["resource"] = path
    event["body"] = json.dumps(body)
    return int(api.handle(event, None)["statusCode"])


def openapi(api: Api) -> dict[str, Any]:
    response = get(api, OPENAPI_PATH)
    assert response["statusCode"] == 200
    return json.loads(response["body"])


def test_the_lambda_api_has_no_docs_routes(store_dir, tmp_path):
    # Given the API as the Lambda handler builds it
    api = make_api(store_dir, tmp_path, docs=False)
    # Then neither the document nor the page exist
    for path in (OPENAPI_PATH, DOCS_PATH):
        response = get(api, path)
        assert response["statusCode"] == 404
        assert json.loads(response["body"])["error"]["code"] == "route_not_found"


def test_document_has_request_and_response_schemas_for_every_route(store_dir, tmp_path):
    doc = openapi(make_api(store_dir, tmp_path, docs=True))
    assert doc["info"]["title"] == "tickerserve"
    operations = {(p, m) for p, item in doc["paths"].items() for m in item}
    assert operations == {
        ("/predict", "post"),
        ("/predict/batch", "post"),
        ("/outcomes", "post"),
        ("/models", "get"),
        ("/models/{ticker}", "get"),
        ("/health", "get"),
    }
    for path, method in operations:
        operation = doc["paths"][path][method]
        assert "schema" in operation["responses"]["200"]["content"]["application/json"], path
        if method == "post":
            body = operation["requestBody"]["content"]["application/json"]
            assert body["schema"]["type"] == "object"
            assert body["examples"], path
    error = doc["paths"]["/predict"]["post"]["responses"]["404"]["content"]["application/json"]
    assert error["schema"]["required"] == ["error"]


def test_every_request_example_is_accepted(store_dir, tmp_path):
    # Given the examples the docs page offers
    api = make_api(store_dir, tmp_path, docs=True)
    doc = openapi(api)
    for path in ("/predict", "/predict/batch", "/outcomes"):
        media = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        for example in media["examples"].values():
            # When posted; Then they are answered
            assert post(api, path, example["value"]) == 200, (path, example)


def test_docs_page_inlines_the_document(store_dir, tmp_path):
    api = make_api(store_dir, tmp_path, docs=True)
    page = get(api, DOCS_PATH)
    assert page["statusCode"] == 200
    assert "/predict/batch" in page["body"]
    as_json = get(api, DOCS_PATH, {"format": "json"})
    assert json.loads(as_json["body"])["paths"].keys() == openapi(api)["paths"].keys()


def test_docs_change_nothing_for_the_api_routes(store_dir, tmp_path):
    # Given one API with docs and one without; When the same event is handled by both
    event = load_event("rest_predict.json")
    event["headers"]["X-Request-Id"] = "same-request"
    with_docs = make_api(store_dir, tmp_path, docs=True).handle(event, None)
    again = load_event("rest_predict.json")
    again["headers"]["X-Request-Id"] = "same-request"
    without = make_api(store_dir, tmp_path, docs=False).handle(again, None)
    # Then the answers are identical
    assert with_docs == without


CHILD = """
import json, sys
from tickerserve.handler import lambda_handler
class Context:
    function_name = "tickerserve-predict"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tickerserve-predict"
    memory_limit_in_mb = 1024
    aws_request_id = "8f4ab7f5-0000-4000-8000-000000000000"
response = lambda_handler(json.load(open(sys.argv[1])), Context())
print("RESULT " + json.dumps({
    "status": response["statusCode"],
    "pydantic": sorted(m for m in sys.modules if m.split(".")[0] == "pydantic"),
}))
"""


def test_the_lambda_path_never_imports_pydantic(store_dir, tmp_path):
    # Given a fresh interpreter running the Lambda handler for one request
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "lambda_src"),
        "TICKERSERVE_STORE_PATH": str(store_dir),
        "TICKERSERVE_CACHE_DIR": str(tmp_path / "cache"),
        "POWERTOOLS_METRICS_NAMESPACE": "Test",
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(EVENTS / "rest_predict.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, result.stderr
    # Then it answered without pydantic (the OpenAPI schemas are plain dicts until docs are on)
    assert json.loads(line[7:]) == {"status": 200, "pydantic": []}


def test_document_declares_only_schemas_it_uses(store_dir, tmp_path):
    # Powertools adds its pydantic validation errors (HTTPValidationError, ValidationError,
    # ResponseValidationError) to every document: not this API's error shape, so not listed
    doc = openapi(make_api(store_dir, tmp_path, docs=True))
    assert "schemas" not in doc.get("components", {})
    text = json.dumps(doc)
    assert "ValidationError" not in text
    for item in doc["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and "content" in response and status != "503":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema["required"] == ["error"], status
    assert "415" in doc["paths"]["/predict"]["post"]["responses"]


# -- the document carries the rules the server applies (contract.json) -------------------------
def request_schema(doc: dict[str, Any], path: str) -> dict[str, Any]:
    return doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_request_fields_and_limits_are_the_contracts(store_dir, tmp_path):
    doc = openapi(make_api(store_dir, tmp_path, docs=True))
    predict = request_schema(doc, "/predict")
    assert set(predict["properties"]) == set(PREDICT.fields) == PREDICT_FIELDS
    assert predict["required"] == list(PREDICT.required)
    items = request_schema(doc, "/predict/batch")["properties"]["items"]
    assert items["maxItems"] == LIMITS.batch_items == MAX_BATCH_ITEMS
    for name, field in PREDICT.fields.items():
        if field.name_rule is not None:
            assert pattern_of(predict["properties"][name]) == field.name_rule.json_pattern
    # Optional names may be null (read as absent); alias and version not both
    assert predict["properties"]["alias"]["anyOf"][1] == {"type": "null"}
    assert predict["allOf"] == [
        {
            "not": {
                "required": ["alias", "version"],
                "properties": {
                    "alias": {"not": {"type": "null"}},
                    "version": {"not": {"type": "null"}},
                },
            }
        }
    ]


def pattern_of(schema: dict[str, Any]) -> str:
    """The pattern of a string schema, or of the string branch of a nullable one."""
    if "anyOf" in schema:
        (string,) = [s for s in schema["anyOf"] if s.get("type") == "string"]
        return str(string["pattern"])
    return str(schema["pattern"])


@pytest.mark.parametrize("field", ["ticker", "alias", "version", "timeframe", "asset_class"])
def test_a_value_the_document_allows_is_a_value_the_server_accepts(store_dir, tmp_path, field):
    # Given the pattern a schema-driven client reads from the document
    doc = openapi(make_api(store_dir, tmp_path, docs=True))
    pattern = pattern_of(request_schema(doc, "/predict")["properties"][field])
    assert pattern.startswith("^") and pattern.endswith("$")
    body = pattern[1:-1]

    # Then every string it allows passes the runtime's check, and no other string does
    @settings(max_examples=200, deadline=None)
    @given(value=st.from_regex(body, fullmatch=True) | st.text(max_size=20))
    def agree(value: str) -> None:
        allowed = re.fullmatch(body, value) is not None
        try:
            parse_request({"ticker": "SMH", "features": [], field: value})
            accepted = True
        except BadRequest:
            accepted = False
        assert accepted == allowed, value

    agree()


def test_path_and_query_parameters_carry_the_server_patterns(store_dir, tmp_path):
    doc = openapi(make_api(store_dir, tmp_path, docs=True))
    model = {p["name"]: p for p in doc["paths"]["/models/{ticker}"]["get"]["parameters"]}
    assert model["ticker"]["in"] == "path"
    assert model["ticker"]["schema"]["pattern"] == NAMES["ticker"].json_pattern
    assert model["timeframe"]["schema"]["pattern"] == NAMES["timeframe"].json_pattern
    models = {p["name"]: p for p in doc["paths"]["/models"]["get"]["parameters"]}
    assert models["limit"]["schema"]["maximum"] == LIMITS.models_page_max
    assert models["next"]["schema"]["pattern"] == f"^(?:{TOKEN_PATTERN})$"


def test_an_answer_s_warnings_are_what_the_document_describes(tmp_path, models):
    # Given a version with feature ranges served by the local server's API
    store = LocalStore(tmp_path / "store")
    rows = reference_rows(np.random.default_rng(5), 1000, len(models.smh.metadata.used_features))
    bundle = attach_to_bundle(models.smh, classification_baseline(models.smh, rows, None))
    publish_bundle(store, bundle, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    api = make_api(store.root, tmp_path, docs=True)
    features = dict.fromkeys(models.smh.metadata.feature_names, 0.0)
    event = load_event("rest_predict.json")
    event["body"] = json.dumps({"ticker": "SMH", "features": {**features, "rsi_14": 99.0}})
    answer = json.loads(api.handle(event, None)["body"])
    assert [w["code"] for w in answer["warnings"]] == ["out_of_range"]
    # Then the document's 200 schema holds it, and names the contract's codes and meaning
    doc = openapi(api)
    ok = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    jsonschema.validate(answer, {**ok["schema"], "components": doc.get("components", {})})
    warning = openapi_module.WARNING
    assert warning["properties"]["code"]["enum"] == ["out_of_range", "unexpected_missing"]
    assert (
        "missing (null) where the reference had no missing value"
        in (warning["properties"]["code"]["description"])
    )
    shown = [w for w in _walk(doc) if w.get("title") == "Warning"]  # what the docs page shows
    assert shown and all(w["properties"]["code"]["enum"] == warning["properties"]["code"]["enum"]
                         for w in shown)  # fmt: skip
    broken = {**answer, "warnings": [{**answer["warnings"][0], "code": "odd"}]}
    with pytest.raises(jsonschema.ValidationError, match="'odd'"):
        jsonschema.validate(broken, {**ok["schema"], "components": doc.get("components", {})})


def test_an_explained_answer_is_what_the_document_and_docs_page_describe(store_dir, tmp_path):
    # Given the local server's API; When the document's own explained example is posted
    api = make_api(store_dir, tmp_path, docs=True)
    doc = openapi(api)
    operation = doc["paths"]["/predict"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["examples"]["explained"]
    event = load_event("rest_predict.json")
    event["body"] = json.dumps(example["value"])
    response = api.handle(event, None)
    assert response["statusCode"] == 200
    answer = json.loads(response["body"])
    assert len(answer["explanation"]["contributions"]) == example["value"]["explain"]
    # Then the 200 schema holds it, and a wrong space is not
    ok = operation["responses"]["200"]["content"]["application/json"]
    schema = {**ok["schema"], "components": doc.get("components", {})}
    jsonschema.validate(answer, schema)
    broken = {**answer, "explanation": {**answer["explanation"], "space": "odds"}}
    with pytest.raises(jsonschema.ValidationError, match="'odds'"):
        jsonschema.validate(broken, schema)
    # And the document and the docs page say how to ask, and what refuses
    explain = request_schema(doc, "/predict")["properties"]["explain"]
    assert explain["anyOf"][1] == {"type": "integer", "minimum": 1}
    assert "explain_unsupported" in operation["responses"]["400"]["description"]
    batch = doc["paths"]["/predict/batch"]["post"]["responses"]["413"]["description"]
    assert f"{LIMITS.explained_items} items asking for an explanation" in batch
    page = get(api, DOCS_PATH)["body"]
    assert "explain_unsupported" in page and "too_many_explanations" in page


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every object in a JSON document."""
    if isinstance(node, dict):
        return [node, *(o for v in node.values() for o in _walk(v))]
    if isinstance(node, list):
        return [o for v in node for o in _walk(v)]
    return []
