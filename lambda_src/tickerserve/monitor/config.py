"""The monitor's thresholds and defaults: one settings object, ``MonitorConfig``, from one
definition, ``config.json`` beside this file.

The same file gives the defaults, bounds and help of ``monitor run``'s options, the overrides
the scheduled function reads (``TICKERSERVE_MONITOR_THRESHOLDS``, ``TICKERSERVE_MONITOR_DAYS``),
the report's bands, and, read by path (infra never imports this package), cdk.json's
``monitor`` section with its checks, the alarms and the dashboard's bands. A value is checked
against the bounds written there wherever it comes from.

Adding a threshold: an entry in ``config.json`` (``thresholds`` when a deployment or a run may
set it, ``method`` otherwise), a field of ``MonitorConfig`` named after it in snake_case, and,
for a deployment, the field of ``infra.config.MonitorSettings`` (a test checks all three agree).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from tickerserve.storage.registry import DEFAULT_ALIAS

PATH = Path(__file__).with_name("config.json")
RAW: dict[str, Any] = json.loads(PATH.read_text())

Level = Literal["ok", "watch", "drift"]
LEVELS: tuple[Level, ...] = ("ok", "watch", "drift")


def snake(key: str) -> str:
    """The runtime's field for a ``config.json`` key: ``psiWatch`` -> ``psi_watch``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


@dataclass(frozen=True)
class Setting:
    """One number of ``config.json``: its key, meaning, default and bounds."""

    key: str
    description: str
    default: float | int
    integer: bool
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None

    @classmethod
    def parse(cls, key: str, raw: Mapping[str, Any]) -> Setting:
        integer = raw["type"] == "integer"
        return cls(
            key,
            raw["description"],
            int(raw["default"]) if integer else float(raw["default"]),
            integer,
            raw.get("minimum"),
            raw.get("exclusiveMinimum"),
            raw.get("maximum"),
            raw.get("exclusiveMaximum"),
        )

    @property
    def field(self) -> str:
        return snake(self.key)

    @property
    def bounds(self) -> str:
        """The bounds as a reader writes them: ``in (0, 1)``, ``>= 0``, ``in [1, 9]``."""
        low = self.minimum if self.minimum is not None else self.exclusive_minimum
        high = self.maximum if self.maximum is not None else self.exclusive_maximum
        if low is not None and high is not None:
            left = "[" if self.minimum is not None else "("
            right = "]" if self.maximum is not None else ")"
            return f"in {left}{low:g}, {high:g}{right}"
        if low is not None:
            return f"{'>=' if self.minimum is not None else '>'} {low:g}"
        if high is not None:
            return f"{'<=' if self.maximum is not None else '<'} {high:g}"
        return "finite"

    def check(self, raw: object) -> float | int:
        """``raw`` as this setting's number; ``ValueError`` naming the key and its bounds."""
        kind = "an integer" if self.integer else "a number"
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"{self.key} must be {kind}, not {raw!r}")
        if self.integer and not float(raw).is_integer():
            raise ValueError(f"{self.key} must be {kind}, not {raw!r}")
        value: float | int = int(raw) if self.integer else float(raw)
        inside = (
            math.isfinite(value)
            and (self.minimum is None or value >= self.minimum)
            and (self.exclusive_minimum is None or value > self.exclusive_minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.exclusive_maximum is None or value < self.exclusive_maximum)
        )
        if not inside:
            raise ValueError(f"{self.key} must be {self.bounds}, not {raw!r}")
        return value


THRESHOLDS: dict[str, Setting] = {k: Setting.parse(k, v) for k, v in RAW["thresholds"].items()}
METHOD: dict[str, Setting] = {k: Setting.parse(k, v) for k, v in RAW["method"].items()}
SETTINGS: dict[str, Setting] = {**THRESHOLDS, **METHOD}
ORDERED: tuple[tuple[str, str], ...] = tuple((low, high) for low, high in RAW["ordered"])
DAYS = Setting.parse("days", RAW["days"])
DEFAULT_DAYS: int = int(DAYS.default)
MAX_DAYS: int = int(RAW["days"]["maximum"])  # a run's longest period


def _default(key: str) -> Any:
    return SETTINGS[key].default


@dataclass(frozen=True)
class Threshold:
    """``value >= watch`` is "watch", ``value >= drift`` is "drift" (NannyML's
    ``ConstantThreshold`` with an extra warning level)."""

    watch: float
    drift: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.watch) and math.isfinite(self.drift)):
            raise ValueError("thresholds must be finite numbers")
        if not 0 <= self.watch <= self.drift:
            raise ValueError(f"need 0 <= watch ({self.watch}) <= drift ({self.drift})")

    def level(self, value: float | None) -> Level | None:
        """The level of ``value``; None when there is no value to judge."""
        if value is None or not math.isfinite(value):
            return None
        if value >= self.drift:
            return "drift"
        if value >= self.watch:
            return "watch"
        return "ok"

    def to_dict(self) -> dict[str, float]:
        return {"watch": self.watch, "drift": self.drift}


@dataclass(frozen=True)
class Rule:
    """Seed 003's rule's thresholds: drift in percent, rates in 0..1 (checked, with their
    defaults, by ``MonitorConfig``)."""

    switch_win_rate: float
    retrain_drift_pct: float
    watch_drift_pct: float
    alpha: float
    runs: int = 3  # days in a row seed 003's multi-run rules need

    @property
    def test_off(self) -> bool:
        """alpha 1: no significance test stands in the way (seed 003's rule alone)."""
        return self.alpha >= 1

    def to_dict(self) -> dict[str, float]:
        return {
            "switch_win_rate": self.switch_win_rate,
            "retrain_drift_pct": self.retrain_drift_pct,
            "watch_drift_pct": self.watch_drift_pct,
            "alpha": self.alpha,
            "runs": self.runs,
        }


@dataclass(frozen=True)
class MonitorConfig:
    """Thresholds and sizes of a run. Every field but ``champion_alias`` is a setting of
    ``config.json`` (its key in snake_case) and defaults to the value written there."""

    psi_watch: float = _default("psiWatch")
    psi_drift: float = _default("psiDrift")
    switch_win_rate: float = _default("switchWinRate")
    retrain_drift_pct: float = _default("retrainDriftPct")
    watch_drift_pct: float = _default("watchDriftPct")
    alpha: float = _default("alpha")
    min_window: int = _default("minWindow")  # scored outcomes for a window to count
    min_drift_rows: int = _default("minDriftRows")  # rows before a PSI is judged
    agreement_tolerance: float = _default("agreementTolerance")  # regression answers agree
    psi_epsilon: float = _default("psiEpsilon")
    outcome_capacity: int = _default("outcomeCapacity")
    seed_runs: int = _default("seedRuns")
    champion_alias: str = DEFAULT_ALIAS

    def __post_init__(self) -> None:
        values = {key: s.check(getattr(self, s.field)) for key, s in SETTINGS.items()}
        for key, value in values.items():  # 2.0 given for an integer is kept as 2
            object.__setattr__(self, SETTINGS[key].field, value)
        for low, high in ORDERED:
            if values[low] > values[high]:
                raise ValueError(f"{low} ({values[low]:g}) must be <= {high} ({values[high]:g})")

    @classmethod
    def from_thresholds(
        cls, thresholds: Mapping[str, object], champion_alias: str = DEFAULT_ALIAS
    ) -> MonitorConfig:
        """A config from ``thresholds`` keyed as ``config.json`` spells them (cdk.json, the
        function's environment); the rest are defaults. Unknown keys are refused."""
        unknown = sorted(set(thresholds) - set(THRESHOLDS))
        if unknown:
            raise ValueError(f"unknown keys {unknown}; known: {sorted(THRESHOLDS)}")
        values: dict[str, Any] = {
            THRESHOLDS[k].field: THRESHOLDS[k].check(v) for k, v in thresholds.items()
        }
        return cls(**values, champion_alias=champion_alias)

    def thresholds(self) -> dict[str, float | int]:
        """The ``thresholds`` of ``config.json`` as this config sets them, by key."""
        return {key: getattr(self, s.field) for key, s in THRESHOLDS.items()}

    @cached_property
    def psi(self) -> Threshold:
        """The PSI band that flags a feature or the output."""
        return Threshold(self.psi_watch, self.psi_drift)

    @cached_property
    def rule(self) -> Rule:
        return Rule(
            self.switch_win_rate,
            self.retrain_drift_pct,
            self.watch_drift_pct,
            self.alpha,
            self.seed_runs,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "psi": self.psi.to_dict(),
            "rule": self.rule.to_dict(),
            "min_window": self.min_window,
            "min_drift_rows": self.min_drift_rows,
            "agreement_tolerance": self.agreement_tolerance,
            "psi_epsilon": self.psi_epsilon,
            "champion_alias": self.champion_alias,
        }


DEFAULTS = MonitorConfig()
