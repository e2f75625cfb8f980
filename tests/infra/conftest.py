"""Synthesize the CDK app in-process for the infrastructure tests (no AWS, no Docker)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from app import build_app
from infra.config import ServingConfig, load_config

# Environment-agnostic stacks, whatever the developer's shell exports.
for _name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
    os.environ.pop(_name, None)

ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]

# Configurations that exercise every branch of the stacks.
VARIANTS: dict[str, dict[str, Any]] = {
    "dev": {},
    "prod": {"tickerserve:stage": "prod"},
    "api_key_snapstart_arm64": {
        "tickerserve:authMode": "api_key",
        "tickerserve:snapStart": "true",
        "tickerserve:ephemeralStorageMb": "512",
        "tickerserve:architecture": "arm64",
        "tickerserve:alarms": '{"email": "oncall@example.com"}',
    },
    "open_existing_bucket": {
        "tickerserve:authMode": "none",
        "tickerserve:bucketName": "team-models",
    },
    # The other front doors (apiType): an HTTP API and a function URL, IAM and open.
    "http": {"tickerserve:apiType": "http"},
    "http_open": {"tickerserve:apiType": "http", "tickerserve:authMode": "none"},
    "url": {"tickerserve:apiType": "url", "tickerserve:reservedConcurrency": "20"},
    "url_open_prod": {
        "tickerserve:stage": "prod",
        "tickerserve:apiType": "url",
        "tickerserve:authMode": "none",
        "tickerserve:waf": "false",
        "tickerserve:timeoutSeconds": "300",
    },
}


@dataclass
class Synth:
    """One synthesized app: its config, stacks by role, and their templates."""

    app: App
    config: ServingConfig
    stacks: dict[str, Stack]
    templates: dict[str, Template]

    @property
    def serving(self) -> Template:
        return self.templates["Serving"]

    @property
    def storage(self) -> Template:
        return self.templates["Storage"]


def synth(overrides: Mapping[str, Any] | None = None, *, bundle: bool = False) -> Synth:
    """Build the app from cdk.json context plus ``-c``-style overrides.

    Without ``bundle`` the layer asset is not built (CDK's own switch for tests).
    """
    context = {**CDK_CONTEXT, **(overrides or {})}
    if not bundle:
        context["aws:cdk:bundling-stacks"] = []
    app = App(context=context)
    config = load_config(app.node.try_get_context)
    stacks = {stack.stack_name.rsplit("-", 1)[-1]: stack for stack in build_app(app, config)}
    templates = {role: Template.from_stack(stack) for role, stack in stacks.items()}
    return Synth(app=app, config=config, stacks=stacks, templates=templates)


@cache
def synth_variant(name: str) -> Synth:
    """One of ``VARIANTS``, synthesized once per session whichever fixture asks for it."""
    return synth(VARIANTS[name])


@pytest.fixture(scope="session")
def dev() -> Synth:
    return synth_variant("dev")


@pytest.fixture(scope="session")
def prod() -> Synth:
    return synth_variant("prod")


@pytest.fixture(scope="session")
def http() -> Synth:
    """The dev stage behind an HTTP API (apiType http)."""
    return synth_variant("http")


@pytest.fixture(scope="session")
def url() -> Synth:
    """The dev stage behind a function URL (apiType url)."""
    return synth_variant("url")


@pytest.fixture(scope="session", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Synth:
    return synth_variant(request.param)


def resources(template: Template, type_: str) -> dict[str, Any]:
    """All resources of one type, keyed by logical ID (used only as an opaque key)."""
    return dict(template.find_resources(type_).items())


PREDICTION_HANDLER = "tickerserve.handler.lambda_handler"
OUTCOMES_HANDLER = "tickerserve.handler.outcomes_handler"


def function_with_handler(template: Template, handler: str = PREDICTION_HANDLER) -> dict[str, Any]:
    """The one Lambda function running ``handler`` (the stack also holds the monitor's)."""
    found = [
        f for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == handler
    ]  # fmt: skip
    assert len(found) == 1, f"expected one function running {handler}, found {len(found)}"
    return found[0]


def only(template: Template, type_: str) -> dict[str, Any]:
    """The single resource of ``type_``; fails if there are none or several."""
    found = list(resources(template, type_).values())
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]


def api_methods(template: Template) -> dict[tuple[str, str], dict[str, Any]]:
    """API methods keyed by (HTTP method, path), e.g. ("POST", "/predict/batch")."""
    parts = {
        logical_id: (props["Properties"]["ParentId"], props["Properties"]["PathPart"])
        for logical_id, props in resources(template, "AWS::ApiGateway::Resource").items()
    }

    def path(ref: Any) -> str:
        if isinstance(ref, dict) and "Ref" in ref:
            parent, part = parts[ref["Ref"]]
            return f"{path(parent)}/{part}"
        return ""  # the API's root resource (Fn::GetAtt RootResourceId)

    return {
        (props["Properties"]["HttpMethod"], path(props["Properties"]["ResourceId"])): props[
            "Properties"
        ]
        for props in resources(template, "AWS::ApiGateway::Method").values()
    }


def policy_statements(template: Template) -> list[dict[str, Any]]:
    """Statements of every IAM policy and inline role policy in a template."""
    statements: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        statements += policy["Properties"]["PolicyDocument"]["Statement"]
    for role in resources(template, "AWS::IAM::Role").values():
        for inline in role["Properties"].get("Policies", []):
            statements += inline["PolicyDocument"]["Statement"]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def alias_of(template: Template, handler: str = PREDICTION_HANDLER) -> tuple[str, dict[str, Any]]:
    """The logical ID and properties of the alias of the function running ``handler``."""
    (function_id,) = [
        logical_id
        for logical_id, f in resources(template, "AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == handler
    ]
    (found,) = [
        (logical_id, a["Properties"])
        for logical_id, a in resources(template, "AWS::Lambda::Alias").items()
        if a["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return found
