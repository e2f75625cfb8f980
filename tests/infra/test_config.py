"""cdk.json context -> ServingConfig: defaults, stage selection, -c overrides, rejection."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from aws_cdk import aws_logs as logs
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from infra.config import (
    LOG_RETENTION_DAYS,
    REGISTRY_KEY,
    AlarmSettings,
    ConfigError,
    ServingConfig,
    load_config,
)
from infra.constructs.log_retention import RETENTION
from tests.infra.conftest import CDK_CONTEXT
from tickerserve.errors import ConfigError as RuntimeConfigError
from tickerserve.layout import DEFAULT_REGISTRY_KEY, validate_key, validate_model_name
from tickerserve.settings import ENV_PRELOAD, ENV_REGISTRY_KEY, Settings


def config_from(context: dict[str, Any]) -> ServingConfig:
    return load_config(context.get)


def test_cdk_json_stages_load_and_dev_is_the_default():
    # Given the committed cdk.json, When nothing selects a stage
    config = config_from(CDK_CONTEXT)
    # Then dev is deployed with IAM auth and the settings from its block
    assert config.stage == "dev"
    assert config.auth_mode == "iam"
    assert config.throttle_rate_limit == 20
    assert config_from({**CDK_CONTEXT, "tickerserve:stage": "prod"}).preload == (
        "stocks/universal",
    )


def test_a_throw_away_stage_takes_the_settings_of_the_entry_it_names():
    # Given make e2e's stage name, which no cdk.json entry has, and the entry it deploys like
    context = {
        **CDK_CONTEXT,
        "tickerserve:stage": "e2e-1a2b3c4d",
        "tickerserve:settingsFrom": "e2e",
    }
    # When the config is read
    config = config_from(context)
    # Then the stage keeps its own name (stacks, buckets) with the e2e entry's settings
    assert config.stage == "e2e-1a2b3c4d"
    assert (config.registry_ttl_seconds, config.capture.buffer_seconds) == (5, 60)
    # ... and a name that is no entry is still refused
    with pytest.raises(ConfigError, match=r"settingsFrom 'e2f' is not in tickerserve:stages"):
        config_from({**context, "tickerserve:settingsFrom": "e2f"})
    with pytest.raises(ConfigError, match=r"stage 'e2e-1a2b3c4d' is not in tickerserve:stages"):
        config_from({**CDK_CONTEXT, "tickerserve:stage": "e2e-1a2b3c4d"})


def test_defaults_deploy_without_any_context():
    config = config_from({})
    assert config == ServingConfig()
    assert (config.api_type, config.auth_mode) == ("rest", "iam")
    assert config.memory_budget_mb == config.memory_mb // 2
    assert config.disk_budget_mb < config.ephemeral_storage_mb


def test_command_line_strings_override_the_stage_and_are_typed():
    # Given -c values, which the CDK CLI always passes as strings
    context = {
        **CDK_CONTEXT,
        "tickerserve:memoryMb": "3008",
        "tickerserve:snapStart": "true",
        "tickerserve:ephemeralStorageMb": "512",
        "tickerserve:preload": "etfs/SMH, stocks/universal",
        "tickerserve:reservedConcurrency": "null",
        "tickerserve:alarms": '{"p99LatencyMs": 900, "email": "ops@example.com"}',
        "tickerserve:throttleRateLimit": "12.5",
    }
    config = config_from(context)
    assert config.memory_mb == 3008
    assert config.snap_start is True
    assert config.preload == ("etfs/SMH", "stocks/universal")
    assert config.reserved_concurrency is None
    assert config.alarms.p99_latency_ms == 900
    assert config.alarms.email == "ops@example.com"
    assert config.throttle_rate_limit == 12.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tickerserve:stage": "prd"}, "'prd' is not in"),
        ({"tickerserve:architecture": "arm"}, "architecture"),
        ({"tickerserve:authMode": "cognito"}, "authMode"),
        ({"tickerserve:memoryMb": "lots"}, "memoryMb='lots': Input should be a valid integer"),
        ({"tickerserve:memoryMb": "2048.5"}, "memoryMb='2048.5'"),
        ({"tickerserve:timeoutSeconds": "60"}, "timeoutSeconds must be at most 29"),
        ({"tickerserve:timeoutSeconds": "901"}, "less than or equal to 900"),
        ({"tickerserve:apiType": "grpc"}, "apiType='grpc'"),
        (
            {"tickerserve:apiType": "http", "tickerserve:timeoutSeconds": "30"},
            "at most 29 behind API Gateway (apiType http",
        ),
        (
            {"tickerserve:apiType": "url", "tickerserve:authMode": "api_key"},
            "authMode api_key needs apiType rest",
        ),
        (
            {"tickerserve:apiType": "http", "tickerserve:authMode": "api_key"},
            "authMode api_key needs apiType rest",
        ),
        ({"tickerserve:stage": "prod", "tickerserve:apiType": "http"}, "waf needs apiType rest"),
        ({"tickerserve:apiType": "url"}, "apiType url needs reservedConcurrency"),
        ({"tickerserve:snapStart": "maybe"}, "snapStart='maybe'"),
        ({"tickerserve:reservedConcurrency": "0"}, "reservedConcurrency='0'"),
        ({"tickerserve:alarms": "{not json"}, "alarms must be a JSON object"),
        (
            {"tickerserve:snapStart": "true", "tickerserve:provisionedConcurrency": "1"},
            "cannot be combined",
        ),
        ({"tickerserve:snapStart": "true", "tickerserve:ephemeralStorageMb": "1024"}, "<= 512"),
        ({"tickerserve:logRetentionDays": "10"}, "logRetentionDays"),
        ({"tickerserve:preload": "../etc"}, "not a model name"),
        ({"tickerserve:preload": "metadata/x"}, "not a model name"),
        ({"tickerserve:preload": "etfs/versions"}, "not a model name"),
        ({"tickerserve:bucketName": "Not_A_Bucket"}, "bucketName"),
        ({"tickerserve:registryKey": "models/registry.json"}, "metadata/"),
        ({"tickerserve:registryKey": "metadata/a b.json"}, "not a valid object key"),
        ({"tickerserve:alarms": '{"p99Latency": 1}'}, "alarms.p99Latency: unknown setting"),
        ({"tickerserve:alarms": '{"periodMinutes": 10}'}, "alarms.periodMinutes=10"),
        ({"tickerserve:alarms": '{"email": "nobody"}'}, "e-mail"),
        ({"tickerserve:registryTtlSeconds": "600"}, "must exceed registryTtlSeconds"),
    ],
)
def test_invalid_values_are_rejected_with_the_setting_named(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        config_from({**CDK_CONTEXT, **overrides})


def test_unknown_keys_in_a_stage_block_are_rejected_with_the_known_ones_listed():
    context = {"tickerserve:stages": {"dev": {"memoryMB": 1024}}}
    with pytest.raises(ConfigError, match=r"memoryMB: unknown setting; known: .*'memoryMb'"):
        config_from(context)


def test_python_field_names_are_not_cdk_json_keys():
    # cdk.json spells settings in camelCase only; a snake_case key is a typo, not an alias
    with pytest.raises(ConfigError, match="memory_mb: unknown setting"):
        config_from({"tickerserve:stages": {"dev": {"memory_mb": 1024}}})


def test_every_problem_is_reported_at_once():
    context = {**CDK_CONTEXT, "tickerserve:memoryMb": "1", "tickerserve:authMode": "x"}
    with pytest.raises(ConfigError) as raised:
        config_from(context)
    assert "memoryMb='1'" in str(raised.value)
    assert "authMode='x'" in str(raised.value)


def test_config_and_construct_settings_are_frozen():
    config = config_from(CDK_CONTEXT)
    with pytest.raises(ValidationError, match="frozen"):
        config.memory_mb = 1
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'memory_mb'"):
        config.function.memory_mb = 1  # type: ignore[misc]


def test_construct_settings_are_views_of_the_config():
    # Given prod, which sizes the function and the API differently from the defaults
    config = config_from({**CDK_CONTEXT, "tickerserve:stage": "prod"})
    # Then each construct's settings carry exactly the values the stage set
    assert config.function.memory_mb == 3008
    assert config.function.memory_budget_mb == 3008 // 2
    assert config.function.disk_budget_mb == 2048 * 3 // 4
    assert config.function.preload == ("stocks/universal",)
    assert config.function.log_retention_days == config.api.log_retention_days == 90
    assert config.api.stage == "prod"
    assert config.api.api_type == "rest"
    assert config.api.throttle_burst_limit == 200
    assert config.alarms == AlarmSettings(p99_latency_ms=1500)


def test_a_function_url_may_wait_as_long_as_the_function_runs():
    # Given a stage behind a function URL (no 29 s gateway in front), capped by concurrency
    config = config_from(
        {
            **CDK_CONTEXT,
            "tickerserve:apiType": "url",
            "tickerserve:timeoutSeconds": "900",
            "tickerserve:reservedConcurrency": "10",
        }
    )
    assert (config.api.api_type, config.function.timeout_seconds) == ("url", 900)
    assert config.function.reserved_concurrency == 10


def test_stage_name_is_bounded_because_it_is_part_of_the_bucket_name():
    with pytest.raises(ConfigError, match="stage"):
        config_from({"tickerserve:stage": "a-very-long-stage"})


def test_registry_key_default_matches_the_runtime():
    assert REGISTRY_KEY == DEFAULT_REGISTRY_KEY


def test_retention_days_map_to_the_matching_cdk_period():
    assert RETENTION[14] == logs.RetentionDays.TWO_WEEKS
    assert RETENTION[365] == logs.RetentionDays.ONE_YEAR
    assert RETENTION[3653] == logs.RetentionDays.TEN_YEARS
    assert len(RETENTION) == len(LOG_RETENTION_DAYS)


# -- infra refuses whatever the runtime would refuse at start-up ------------------------------
def _runtime_starts(**env: str) -> bool:
    """Whether the function's init would accept these environment values."""
    try:
        Settings.from_env({"TICKERSERVE_BUCKET": "models-bucket", **env})
    except RuntimeConfigError:
        return False
    return True


def _synth_accepts(**context: str) -> bool:
    try:
        config_from({**CDK_CONTEXT, **{f"tickerserve:{k}": v for k, v in context.items()}})
    except ConfigError:
        return False
    return True


NAMEISH = st.text(alphabet="aZ09._-^=/ \n\u017f", max_size=12) | st.sampled_from(
    ["metadata/x", "etfs/versions", "etfs/SMH", "a/b/c/d", "a/b/c/d/e", "x" * 65, "etfs/SMH\n"]
)


@settings(max_examples=300, deadline=None)
@given(name=NAMEISH)
def test_a_preload_name_deploys_only_if_the_function_can_start_with_it(name):
    # The function refuses an invalid TICKERSERVE_PRELOAD at import: it could never start
    if "," in name or not name.strip():
        return  # the list syntax, not a name
    runtime = _runtime_starts(**{ENV_PRELOAD: name})
    assert _synth_accepts(preload=name) == runtime
    assert runtime == _valid(validate_model_name, name.strip())


@settings(max_examples=200, deadline=None)
@given(suffix=NAMEISH)
def test_a_registry_key_deploys_only_if_the_function_can_start_with_it(suffix):
    key = f"metadata/{suffix}"
    if not key.strip() or key != key.strip():
        return  # the runtime strips blanks around an environment value; cdk.json has none
    if _synth_accepts(registryKey=key):
        assert _runtime_starts(**{ENV_REGISTRY_KEY: key})
        assert _valid(validate_key, key)


def _valid(check: Any, value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def test_capture_settings_come_from_their_own_section():
    # Defaults: on, 90 days, records in S3 within 5 minutes
    default = config_from({})
    assert (default.capture.enabled, default.capture.retention_days) == (True, 90)
    assert default.capture.buffer_seconds == 300 and default.capture_on
    # A -c override arrives as JSON text
    config = config_from({"tickerserve:capture": '{"retentionDays": 30, "bufferSeconds": 60}'})
    assert (config.capture.retention_days, config.capture.buffer_seconds) == (30, 60)
    assert not config_from({"tickerserve:capture": '{"enabled": false}'}).capture_on
    # Serving from an existing bucket has no capture bucket, so nothing is captured
    assert not config_from({"tickerserve:bucketName": "team-models"}).capture_on


@pytest.mark.parametrize(
    "section",
    ['{"retentionDays": 0}', '{"bufferSeconds": 30}', '{"bufferSeconds": 901}', '{"sample": 1}'],
)
def test_bad_capture_settings_fail_synth_naming_the_key(section: str):
    with pytest.raises(ConfigError, match="capture"):
        config_from({"tickerserve:capture": section})
