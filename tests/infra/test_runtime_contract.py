"""Infra reads the runtime's JSON definitions by path (it never imports tickerserve); what it
reads is what the runtime reads: the bucket's names, the metric names, the monitor's
thresholds with their defaults and bounds."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from infra import runtime_contract as infra
from infra.config import ConfigError, MonitorSettings, load_config
from tickerserve import layout, metric_names
from tickerserve.monitor import config


def test_the_bucket_names_are_the_runtime_s() -> None:
    names = infra.LAYOUT_NAMES
    assert names.registry_key == layout.DEFAULT_REGISTRY_KEY
    assert names.metadata_prefix == layout.METADATA_PREFIX
    assert names.monitoring_history_key == layout.MONITORING_HISTORY_KEY
    assert names.outcomes_prefix == layout.OUTCOMES_PREFIX
    assert names.capture_prefix == layout.CAPTURE_PREFIX
    assert names.partition_key == layout.PARTITION_KEY
    assert (names.capture_kind, names.capture_version) == (
        layout.CAPTURE_KIND,
        layout.CAPTURE_VERSION,
    )
    # the grants cover exactly the keys the runtime builds
    assert layout.history_archive_prefix(layout.MONITORING_HISTORY_KEY).startswith(
        names.monitoring_archive_objects.removesuffix("*")
    )
    assert layout.baseline_sidecar_key("etfs/SMH", "1.0.0").endswith(
        names.baseline_objects.removeprefix("*").removesuffix("*") + "1.0.0.json"
    )
    assert f"/{layout.VERSIONS_DIR}/" in layout.metadata_key("etfs/SMH", "1.0.0")
    assert names.model_objects == f"*/{layout.VERSIONS_DIR}/*"


def test_the_metric_names_are_the_runtime_s() -> None:
    prediction = dataclasses.asdict(metric_names.PREDICTION)
    assert {k: prediction[k] for k in infra.PREDICTION_METRIC_NAMES} == (
        infra.PREDICTION_METRIC_NAMES
    )
    assert infra.PREDICTION_METRICS["namespace"] == metric_names.PREDICTION.namespace
    monitor = dataclasses.asdict(metric_names.MONITOR)
    assert {k: monitor[k] for k in infra.MONITOR_METRIC_NAMES} == infra.MONITOR_METRIC_NAMES
    assert infra.MONITOR_METRICS["model_dimension"] == metric_names.MONITOR.model_dimension


def test_cdk_json_s_monitor_section_has_the_runtime_s_thresholds_and_defaults() -> None:
    settings = MonitorSettings()
    # one field per threshold of monitor/config.json, as the function's environment names it
    assert set(settings.thresholds()) == set(config.THRESHOLDS)
    # the stack's defaults are the runtime's: the function reads back MonitorConfig()
    assert config.MonitorConfig.from_thresholds(settings.thresholds()) == config.MonitorConfig()
    assert settings.days == config.DAYS.default
    nothing: dict[str, Any] = {}
    assert load_config(nothing.get).monitor.thresholds() == config.DEFAULTS.thresholds()


def _beyond(setting: config.Setting) -> list[float]:
    """Values just outside each of ``setting``'s bounds."""
    out = []
    if setting.minimum is not None:
        out.append(setting.minimum - 1)
    if setting.exclusive_minimum is not None:
        out.append(setting.exclusive_minimum)
    if setting.maximum is not None:
        out.append(setting.maximum + 1)
    if setting.exclusive_maximum is not None:
        out.append(setting.exclusive_maximum)
    return out


@pytest.mark.parametrize("key", [*config.THRESHOLDS, "days"])
def test_synth_refuses_what_the_function_would_refuse(key: str) -> None:
    setting = config.DAYS if key == "days" else config.THRESHOLDS[key]
    assert _beyond(setting)
    for value in _beyond(setting):
        with pytest.raises(ValueError, match=re.escape(f"must be {setting.bounds}")):
            setting.check(value)
        with pytest.raises(ConfigError, match=f"stage 'dev': monitor.{key}={value!r}"):
            load_config({"tickerserve:monitor": {key: value}}.get)
    # and accepts its default
    assert load_config({"tickerserve:monitor": {key: setting.default}}.get)


def test_ordered_thresholds_are_refused_reversed_on_both_sides() -> None:
    for low, high in config.ORDERED:
        bigger = config.SETTINGS[high].default + 1
        with pytest.raises(ConfigError, match=f"{low} must be <= {high}"):
            load_config({"tickerserve:monitor": {low: bigger}}.get)
        with pytest.raises(ValueError, match=f"{low} .* must be <= {high}"):
            config.MonitorConfig.from_thresholds({low: bigger})
