"""The monitor's one settings object: its defaults and bounds are config.json's, wherever a
value comes from (a run's options, the scheduled function's environment)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from typer.testing import CliRunner

from tickerserve.cli.main import app
from tickerserve.monitor.config import (
    DAYS,
    DEFAULTS,
    MAX_DAYS,
    METHOD,
    PATH,
    SETTINGS,
    THRESHOLDS,
    MonitorConfig,
    Setting,
)


def test_every_setting_of_config_json_is_a_field_defaulting_to_its_value() -> None:
    raw = json.loads(PATH.read_text())
    fields = {f.name: f.default for f in dataclasses.fields(MonitorConfig)}
    for section in ("thresholds", "method"):
        for key, spec in raw[section].items():
            assert fields[SETTINGS[key].field] == spec["default"], key
    # and nothing else is configurable but the alias judged
    assert set(fields) == {s.field for s in SETTINGS.values()} | {"champion_alias"}
    assert DEFAULTS.psi_watch == raw["thresholds"]["psiWatch"]["default"]
    assert (DAYS.default, MAX_DAYS) == (raw["days"]["default"], raw["days"]["maximum"])


def test_defaults_are_seed_003_s_rule() -> None:
    # the seed: switch at >= 75% wins with drift under 10%, retrain above 10%, watch from 5%;
    # its test window is the last 30 samples
    assert DEFAULTS.thresholds() == {
        "psiWatch": 0.1,
        "psiDrift": 0.25,
        "switchWinRate": 0.75,
        "retrainDriftPct": 10.0,
        "watchDriftPct": 5.0,
        "alpha": 0.05,
        "minWindow": 30,
    }
    assert isinstance(DEFAULTS.retrain_drift_pct, float) and isinstance(DEFAULTS.min_window, int)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alpha": 1.5}, "alpha must be in (0, 1], not 1.5"),  # 1: the test off
        ({"alpha": 0}, "alpha must be in (0, 1], not 0"),
        ({"seed_runs": 0}, "seedRuns must be >= 1, not 0"),
        ({"switch_win_rate": 1.5}, "switchWinRate must be in (0, 1], not 1.5"),
        ({"psi_watch": -0.1}, "psiWatch must be >= 0, not -0.1"),
        ({"psi_drift": float("nan")}, "psiDrift must be > 0, not nan"),
        ({"min_window": 0}, "minWindow must be >= 1, not 0"),
        ({"min_window": 2.5}, "minWindow must be an integer, not 2.5"),
        ({"psi_epsilon": 0.5}, "psiEpsilon must be in (0, 0.01), not 0.5"),
        ({"psi_watch": 0.3}, "psiWatch (0.3) must be <= psiDrift (0.25)"),
        ({"watch_drift_pct": 12.0}, "watchDriftPct (12) must be <= retrainDriftPct (10)"),
    ],
)
def test_a_value_out_of_its_bounds_is_refused_with_the_key_named(values, message) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        MonitorConfig(**values)


def test_thresholds_by_key_as_a_deployment_spells_them() -> None:
    config = MonitorConfig.from_thresholds({"psiDrift": 0.3, "minWindow": 50.0})
    assert (config.psi_drift, config.min_window) == (0.3, 50)
    assert type(config.min_window) is int  # 50.0 from JSON is the integer 50
    assert config.psi.to_dict() == {"watch": 0.1, "drift": 0.3}
    assert config.rule.switch_win_rate == DEFAULTS.switch_win_rate
    assert config.thresholds()["psiDrift"] == 0.3
    # only thresholds: a run's fixed sizes are not a deployment's to change
    with pytest.raises(ValueError, match=r"unknown keys \['psiEpsilon'\]; known: \["):
        MonitorConfig.from_thresholds({"psiEpsilon": 0.001})
    with pytest.raises(ValueError, match=r"psiDrift must be a number, not '0\.3'"):
        MonitorConfig.from_thresholds({"psiDrift": "0.3"})


def test_the_report_shape_of_a_config_is_unchanged() -> None:
    assert DEFAULTS.to_dict() == {
        "psi": {"watch": 0.1, "drift": 0.25},
        "rule": {
            "switch_win_rate": 0.75,
            "retrain_drift_pct": 10.0,
            "watch_drift_pct": 5.0,
            "alpha": 0.05,
            "runs": 3,
        },
        "min_window": 30,
        "min_drift_rows": 200,
        "agreement_tolerance": 0.1,
        "psi_epsilon": 0.0001,
        "champion_alias": "production",
    }


def test_bounds_read_as_a_person_writes_them() -> None:
    spec = {"type": "number", "default": 1, "description": "x"}
    assert Setting.parse("a", {**spec, "minimum": 0, "maximum": 1}).bounds == "in [0, 1]"
    assert Setting.parse("a", {**spec, "exclusiveMinimum": 0}).bounds == "> 0"
    assert Setting.parse("a", {**spec, "exclusiveMaximum": 2}).bounds == "< 2"
    assert Setting.parse("a", spec).bounds == "finite"
    assert THRESHOLDS["switchWinRate"].bounds == "in (0, 1]"
    assert METHOD["outcomeCapacity"].integer


def test_monitor_run_s_options_default_to_the_config_and_say_what_they_mean() -> None:
    result = CliRunner().invoke(app, ["monitor", "run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for option, key in [
        ("--psi-watch", "psiWatch"),
        ("--psi-drift", "psiDrift"),
        ("--switch-win-rate", "switchWinRate"),
        ("--retrain-drift", "retrainDriftPct"),
        ("--watch-drift", "watchDriftPct"),
        ("--alpha", "alpha"),
        ("--min-window", "minWindow"),
    ]:
        setting = THRESHOLDS[key]
        assert f"{option} " in text
        assert setting.description in text, key
        assert f"default: {setting.default}" in text, key
    assert f"(default: {DAYS.default} days ago)" in text
