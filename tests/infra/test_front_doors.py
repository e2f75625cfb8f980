"""The three front doors (``apiType``): REST API, HTTP API, function URL.

Each is IAM-authorized by default, throttled where it can be (reserved concurrency where it
cannot), access-logged where it has logs, and watched by alarms on its own metrics.
"""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import Stack

from infra.constructs.api import PredictionApi
from infra.constructs.front_door import OUTCOMES, ROUTES, Route
from infra.constructs.function_url import FunctionUrlFront
from infra.constructs.http_api import HttpApiFront
from tests.infra.conftest import (
    OUTCOMES_HANDLER,
    PREDICTION_HANDLER,
    Synth,
    alias_of,
    function_with_handler,
    only,
    resources,
    synth,
)
from tickerserve.http.api import ROUTES as HANDLER_ROUTES


def alarm(s: Synth, name: str) -> dict:
    """The serving alarm whose logical ID starts with Monitoring{name}."""
    (found,) = [
        a["Properties"]
        for logical_id, a in resources(s.serving, "AWS::CloudWatch::Alarm").items()
        if re.fullmatch(rf"Monitoring{name}[0-9A-F]{{8}}", logical_id)
    ]
    return found


def dimensions(props: dict) -> dict:
    return {d["Name"]: d["Value"] for d in props["Dimensions"]}


def types(s: Synth) -> set[str]:
    return {r["Type"] for r in s.serving.to_json()["Resources"].values()}


def test_the_front_doors_serve_exactly_the_handlers_routes():
    def spelled(path: str) -> str:
        return re.sub(r"<(\w+)>", r"{\1}", path)

    handler = {(m, spelled(path)) for path, methods in HANDLER_ROUTES.items() for m in methods}
    assert {(r.method, r.path) for r in ROUTES} == handler


def test_each_stage_deploys_only_its_own_front_door(dev: Synth, http: Synth, url: Synth):
    assert isinstance(dev.stacks["Serving"].api, PredictionApi)  # type: ignore[attr-defined]
    assert {t for t in types(dev) if "ApiGatewayV2" in t or t == "AWS::Lambda::Url"} == set()
    assert {t for t in types(http) if t.startswith("AWS::ApiGateway::")} == set()
    assert "AWS::Lambda::Url" not in types(http)
    assert {t for t in types(url) if t.startswith("AWS::ApiGateway")} == set()
    url.serving.resource_count_is("AWS::Lambda::Url", 2)  # predictions, and outcomes


# --- HTTP API -----------------------------------------------------------------------------


def http_routes(s: Synth) -> dict[str, dict]:
    return {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in resources(s.serving, "AWS::ApiGatewayV2::Route").values()
    }


def test_http_api_routes_use_the_iam_authorizer_and_invoke_the_live_aliases(http: Synth):
    routes = http_routes(http)
    assert set(routes) == {f"{r.method} {r.path}" for r in ROUTES}
    assert {r["AuthorizationType"] for r in routes.values()} == {"AWS_IAM"}
    integrations = resources(http.serving, "AWS::ApiGatewayV2::Integration")
    for integration in integrations.values():
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    live, _ = alias_of(http.serving)
    outcomes, _ = alias_of(http.serving, OUTCOMES_HANDLER)
    # POST /outcomes reaches the outcomes function's alias, every other route the prediction's
    for key, route in routes.items():
        target = route["Target"]["Fn::Join"][1][1]["Ref"]
        uri = integrations[target]["Properties"]["IntegrationUri"]
        assert uri == {"Ref": outcomes if key == "POST /outcomes" else live}, key
    # API Gateway may invoke each alias for exactly its own routes, no other path
    permissions = [
        p["Properties"] for p in resources(http.serving, "AWS::Lambda::Permission").values()
    ]
    sources = {
        (p["FunctionName"]["Ref"], json.dumps(p["SourceArn"]).split("/*/*")[-1])
        for p in permissions
    }
    assert sources == {(outcomes if r == OUTCOMES else live, f'{r.path}"]]}}') for r in ROUTES}


def test_http_api_without_auth_only_when_the_stage_says_so_and_never_for_outcomes():
    s = synth({"tickerserve:apiType": "http", "tickerserve:authMode": "none"})
    routes = http_routes(s)
    assert routes.pop("POST /outcomes")["AuthorizationType"] == "AWS_IAM"
    assert {r["AuthorizationType"] for r in routes.values()} == {"NONE"}


def test_http_api_stage_is_named_throttled_and_access_logged(http: Synth):
    stage = only(http.serving, "AWS::ApiGatewayV2::Stage")["Properties"]
    assert (stage["StageName"], stage["AutoDeploy"]) == ("dev", True)
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 20
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 40
    log_format = json.loads(stage["AccessLogSettings"]["Format"])
    assert log_format["requestId"] == "$context.requestId"
    assert log_format["caller"] == "$context.identity.caller"
    group_id = stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    group = resources(http.serving, "AWS::Logs::LogGroup")[group_id]["Properties"]
    assert group["RetentionInDays"] == 14
    # No account-level logging role: HTTP APIs log through their service-linked role
    http.serving.resource_count_is("AWS::ApiGateway::Account", 0)


def test_http_api_url_names_its_stage(http: Synth):
    value = http.serving.find_outputs("ApiUrl")["ApiUrl"]["Value"]
    parts = value["Fn::Join"][1]
    assert parts[0] == "https://" and parts[-1] == "/dev/"
    assert ".execute-api." in parts


# --- function URL -------------------------------------------------------------------------


def function_urls(s: Synth) -> dict[str, dict]:
    """Each function URL by the handler of the function it is on."""
    handlers = {
        logical_id: f["Properties"]["Handler"]
        for logical_id, f in resources(s.serving, "AWS::Lambda::Function").items()
    }
    found = {}
    for logical_id, props in resources(s.serving, "AWS::Lambda::Url").items():
        function_id = props["Properties"]["TargetFunctionArn"]["Fn::GetAtt"][0]
        found[handlers[function_id]] = {"id": logical_id, **props["Properties"]}
    return found


def test_function_urls_are_iam_authorized_on_the_live_aliases(url: Synth):
    urls = function_urls(url)
    assert set(urls) == {PREDICTION_HANDLER, OUTCOMES_HANDLER}
    for props in urls.values():
        assert props["AuthType"] == "AWS_IAM"
        assert props["Qualifier"] == "live"
        assert props["InvokeMode"] == "BUFFERED"
    # IAM-authorized: nothing in the functions' resource policies lets anyone else call them
    url.serving.resource_count_is("AWS::Lambda::Permission", 0)
    outputs = url.serving.find_outputs("*")
    assert outputs["ApiUrl"]["Value"]["Fn::GetAtt"] == [
        urls[PREDICTION_HANDLER]["id"],
        "FunctionUrl",
    ]
    assert outputs["OutcomesUrl"]["Value"]["Fn::GetAtt"] == [
        urls[OUTCOMES_HANDLER]["id"], "FunctionUrl",
    ]  # fmt: skip


def test_an_open_function_url_allows_invocation_only_through_the_url():
    s = synth(
        {
            "tickerserve:apiType": "url",
            "tickerserve:authMode": "none",
            "tickerserve:reservedConcurrency": "5",
        }
    )
    urls = function_urls(s)
    assert urls[PREDICTION_HANDLER]["AuthType"] == "NONE"
    assert urls[OUTCOMES_HANDLER]["AuthType"] == "AWS_IAM"  # outcomes: never open
    permissions = [
        p["Properties"] for p in resources(s.serving, "AWS::Lambda::Permission").values()
    ]
    live, _ = alias_of(s.serving)
    assert {json.dumps(p["FunctionName"]) for p in permissions} == {json.dumps({"Ref": live})}
    assert {p["Action"] for p in permissions} == {
        "lambda:InvokeFunctionUrl",
        "lambda:InvokeFunction",
    }
    for permission in permissions:
        assert permission["Principal"] == "*"
        assert (
            permission.get("FunctionUrlAuthType") == "NONE"
            or permission.get("InvokedViaFunctionUrl") is True
        )


def test_function_url_is_capped_by_reserved_concurrency_and_may_run_long():
    # Given a stage with no gateway in front: no throttling but the function's own cap
    s = synth(
        {
            "tickerserve:apiType": "url",
            "tickerserve:reservedConcurrency": "7",
            "tickerserve:timeoutSeconds": "600",
        }
    )
    props = function_with_handler(s.serving)["Properties"]
    assert (props["ReservedConcurrentExecutions"], props["Timeout"]) == (7, 600)


def test_function_url_has_no_access_log_group_of_its_own(dev: Synth, url: Synth):
    # The REST API adds one (access logs); the function URL none beyond the functions' own
    assert len(resources(dev.serving, "AWS::Logs::LogGroup")) == (
        len(resources(url.serving, "AWS::Logs::LogGroup")) + 1
    )


# --- alarms and dashboard fit each front door's metrics ------------------------------------


@pytest.mark.parametrize(
    ("fixture", "namespace", "errors", "latency", "dimension_names"),
    [
        ("dev", "AWS/ApiGateway", "5XXError", "Latency", {"ApiName", "Stage"}),
        ("http", "AWS/ApiGateway", "5xx", "Latency", {"ApiId", "Stage"}),
        ("url", "AWS/Lambda", "Url5xxCount", "UrlRequestLatency", {"FunctionName", "Resource"}),
    ],
)
def test_api_alarms_watch_the_front_doors_own_metrics(
    request, fixture, namespace, errors, latency, dimension_names
):
    s: Synth = request.getfixturevalue(fixture)
    api_5xx, p99 = alarm(s, "Api5xx"), alarm(s, "LatencyP99")
    assert (api_5xx["Namespace"], api_5xx["MetricName"], api_5xx["Statistic"]) == (
        namespace,
        errors,
        "Sum",
    )
    assert (p99["Namespace"], p99["MetricName"], p99["ExtendedStatistic"]) == (
        namespace,
        latency,
        "p99",
    )
    assert set(dimensions(api_5xx)) == set(dimensions(p99)) == dimension_names


def test_function_url_metrics_name_the_function_and_its_alias(url: Synth):
    dims = dimensions(alarm(url, "Api5xx"))
    (function_id,) = [
        logical_id
        for logical_id, f in resources(url.serving, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == "tickerserve.handler.lambda_handler"
    ]
    assert dims["FunctionName"] == {"Ref": function_id}
    assert dims["Resource"] == {"Fn::Join": ["", [{"Ref": function_id}, ":live"]]}


@pytest.mark.parametrize(
    ("fixture", "metrics"),
    [
        ("dev", ("Count", "4XXError", "5XXError", "Latency")),
        ("http", ("Count", "4xx", "5xx", "Latency")),
        ("url", ("UrlRequestCount", "Url4xxCount", "Url5xxCount", "UrlRequestLatency")),
    ],
)
def test_the_dashboard_graphs_the_front_doors_requests(request, fixture, metrics):
    s: Synth = request.getfixturevalue(fixture)
    body = json.dumps(only(s.serving, "AWS::CloudWatch::Dashboard")["Properties"])
    for metric in metrics:
        assert f'\\"{metric}\\"' in body, metric


# --- IAM: who may call what ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "service"), [("dev", "execute-api"), ("http", "execute-api"), ("url", "lambda")]
)
def test_outputs_name_the_service_a_signature_names(request, fixture, service):
    s: Synth = request.getfixturevalue(fixture)
    assert s.serving.find_outputs("SigningService")["SigningService"]["Value"] == service


@pytest.mark.parametrize("fixture", ["dev", "http"])
def test_api_gateway_routes_are_separate_iam_resources(request, fixture):
    # So a caller can be allowed POST /predict and not POST /outcomes (issue 19)
    s: Synth = request.getfixturevalue(fixture)
    front = s.stacks["Serving"].api  # type: ignore[attr-defined]
    assert isinstance(front, PredictionApi | HttpApiFront)
    stack = Stack.of(front)
    arns = {route: json.dumps(stack.resolve(front.route_arn(route))) for route in ROUTES}
    assert len(set(arns.values())) == len(ROUTES)
    assert arns[Route("POST", "/outcomes")].endswith('/dev/POST/outcomes"]]}')
    assert front.invoke_actions == ("execute-api:Invoke",)


def test_a_function_url_is_one_iam_resource_its_alias_and_outcomes_have_their_own(url: Synth):
    front = url.stacks["Serving"].api  # type: ignore[attr-defined]
    assert isinstance(front, FunctionUrlFront)
    stack = Stack.of(front)
    arns = {route: json.dumps(stack.resolve(front.route_arn(route))) for route in ROUTES}
    live, _ = alias_of(url.serving)
    outcomes, _ = alias_of(url.serving, OUTCOMES_HANDLER)
    assert arns.pop(OUTCOMES) == json.dumps({"Ref": outcomes})
    assert set(arns.values()) == {json.dumps({"Ref": live})}
    assert front.invoke_actions == ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction")
