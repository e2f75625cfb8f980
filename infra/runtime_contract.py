"""What the CDK app takes from the runtime's data files. Infra never imports ``tickerserve``;
it reads the same JSON files the runtime reads, so the stack and the functions cannot
disagree about:

- ``contract.json``: the request shapes, limits and name rules (a value the stack hands to the
  function, a preload model name or the registry key, is checked by the rule the function
  applies at start-up; the API's gateway answers use the codes the runtime documents);
- ``layout.json``: the bucket's names (IAM grants, the capture pipeline, the Glue table);
- ``metric_names.json``: the metrics the functions emit (alarms and dashboards);
- ``monitor/config.json``: the monitor's thresholds and defaults (cdk.json's ``monitor``
  section, its checks, the alarms and the dashboard's bands).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[1] / "lambda_src" / "tickerserve"
PATH = PACKAGE / "contract.json"
RAW: dict[str, Any] = json.loads(PATH.read_text())
LAYOUT: dict[str, Any] = json.loads((PACKAGE / "layout.json").read_text())
METRICS: dict[str, Any] = json.loads((PACKAGE / "metric_names.json").read_text())
MONITOR_CONFIG: dict[str, Any] = json.loads((PACKAGE / "monitor" / "config.json").read_text())


def check_model_name(name: str) -> str:
    """The runtime's model-name rule (``layout.validate_model_name``); ``ValueError`` if broken."""
    rule = RAW["model_name"]
    segments = name.split("/")
    if (
        not 0 < len(name) <= rule["max_length"]
        or len(segments) > rule["max_segments"]
        or not all(re.fullmatch(rule["segment"], s) for s in segments)
        or segments[0] in rule["reserved_first_segments"]
        or set(rule["reserved_segments"]) & set(segments)
    ):
        reserved = sorted({*rule["reserved_first_segments"], *rule["reserved_segments"]})
        raise ValueError(f"{name!r} is not a model name: {rule['hint']}; {reserved} are reserved")
    return name


def check_name(kind: str, value: str) -> str:
    """One of the runtime's name rules (``ticker``, ``object_key``, ...) in full."""
    rule = RAW["names"][kind]
    if not re.fullmatch(rule["pattern"], value) or any(
        bad in value for bad in rule.get("forbidden_substrings", ())
    ):
        raise ValueError(f"{value!r} is not a valid {rule['label']}: {rule['hint']}")
    return value


@dataclass(frozen=True)
class GatewayError:
    """An answer API Gateway gives before the function runs, in the API's error shape."""

    response_type: str
    status: int | None
    code: str
    when: str


GATEWAY_ERRORS = tuple(GatewayError(**e) for e in RAW["gateway"]["errors"])


@dataclass(frozen=True)
class BucketLayout:
    """The bucket names the stack grants, routes and queries (``layout.json``)."""

    registry_key: str
    metadata_prefix: str
    monitoring_history_key: str
    monitor_salt_key: str
    history_archive_infix: str
    versions_dir: str
    baselines_dir: str
    outcomes_prefix: str
    partition_key: str
    capture_prefix: str
    capture_kind: str
    capture_version: int

    @property
    def model_objects(self) -> str:
        """Every model's version folders: ``*/versions/*``."""
        return f"*/{self.versions_dir}/*"

    @property
    def baseline_objects(self) -> str:
        return f"*/{self.baselines_dir}/*"

    @property
    def monitoring_history_objects(self) -> str:
        """The monitoring history and its rotated archives."""
        return f"{self.monitoring_history_key.rsplit('.', 1)[0]}*"

    @property
    def monitoring_archive_objects(self) -> str:
        return f"{self.monitoring_history_key.rsplit('.', 1)[0]}{self.history_archive_infix}*"


LAYOUT_NAMES = BucketLayout(
    registry_key=LAYOUT["registry_key"],
    metadata_prefix=LAYOUT["metadata_prefix"],
    monitoring_history_key=LAYOUT["monitoring_history_key"],
    monitor_salt_key=LAYOUT["monitor_salt_key"],
    history_archive_infix=LAYOUT["history_archive_infix"],
    versions_dir=LAYOUT["versions_dir"],
    baselines_dir=LAYOUT["baselines_dir"],
    outcomes_prefix=LAYOUT["outcomes_prefix"],
    partition_key=LAYOUT["partition_key"],
    capture_prefix=LAYOUT["capture"]["prefix"],
    capture_kind=LAYOUT["capture"]["record_kind"],
    capture_version=LAYOUT["capture"]["record_version"],
)

# The prediction function's metrics: namespace, dimensions, counter and gauge names by key.
PREDICTION_METRICS: dict[str, Any] = METRICS["prediction"]
PREDICTION_METRIC_NAMES: dict[str, str] = {
    **PREDICTION_METRICS["counters"],
    **PREDICTION_METRICS["gauges"],
    **PREDICTION_METRICS["per_model"],
}
# The monitor's: namespace, the per-model dimension, figure names by key.
MONITOR_METRICS: dict[str, Any] = METRICS["monitor"]
MONITOR_METRIC_NAMES: dict[str, str] = MONITOR_METRICS["figures"]


@dataclass(frozen=True)
class MonitorSetting:
    """One number of the monitor's ``config.json``: default and bounds (as pydantic's
    ``Field`` spells them)."""

    key: str
    default: float | int
    bounds: dict[str, Any]  # pydantic's ge, gt, le, lt
    description: str

    @classmethod
    def parse(cls, key: str, raw: dict[str, Any]) -> MonitorSetting:
        names = {"minimum": "ge", "exclusiveMinimum": "gt", "maximum": "le",
                 "exclusiveMaximum": "lt"}  # fmt: skip
        integer = raw["type"] == "integer"
        return cls(
            key,
            int(raw["default"]) if integer else float(raw["default"]),
            {names[k]: v for k, v in raw.items() if k in names},
            raw["description"],
        )


MONITOR_THRESHOLDS: dict[str, MonitorSetting] = {
    k: MonitorSetting.parse(k, v) for k, v in MONITOR_CONFIG["thresholds"].items()
}
MONITOR_ORDERED: tuple[tuple[str, str], ...] = tuple(
    (low, high) for low, high in MONITOR_CONFIG["ordered"]
)
MONITOR_DAYS = MonitorSetting.parse("days", MONITOR_CONFIG["days"])
