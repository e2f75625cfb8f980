"""cdk.json context -> ServingConfig: defaults, stage selection, -c overrides, rejection."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_logs as logs

from infra.config import LOG_RETENTION_DAYS, REGISTRY_KEY, ConfigError, ServingConfig, load_config
from infra.stacks.serving import RETENTION
from tests.infra.conftest import CDK_CONTEXT
from tickerserve.layout import DEFAULT_REGISTRY_KEY


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


def test_defaults_deploy_without_any_context():
    config = config_from({})
    assert config == ServingConfig()
    assert config.auth_mode == "iam"
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
        ({"tickerserve:memoryMb": "lots"}, "memoryMb='lots' is not a valid int"),
        ({"tickerserve:timeoutSeconds": "60"}, "API Gateway limit"),
        ({"tickerserve:snapStart": "yes"}, "snapStart='yes'"),
        (
            {"tickerserve:snapStart": "true", "tickerserve:provisionedConcurrency": "1"},
            "cannot be combined",
        ),
        ({"tickerserve:snapStart": "true", "tickerserve:ephemeralStorageMb": "1024"}, "<= 512"),
        ({"tickerserve:logRetentionDays": "10"}, "logRetentionDays"),
        ({"tickerserve:preload": "../etc"}, "not a model name"),
        ({"tickerserve:bucketName": "Not_A_Bucket"}, "bucketName"),
        ({"tickerserve:registryKey": "models/registry.json"}, "metadata/"),
        ({"tickerserve:alarms": '{"p99Latency": 1}'}, "unknown setting"),
        ({"tickerserve:alarms": '{"email": "nobody"}'}, "e-mail"),
    ],
)
def test_invalid_values_are_rejected_with_the_setting_named(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        config_from({**CDK_CONTEXT, **overrides})


def test_unknown_keys_in_a_stage_block_are_rejected():
    context = {"tickerserve:stages": {"dev": {"memoryMB": 1024}}}
    with pytest.raises(ConfigError, match="unknown setting"):
        config_from(context)


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
