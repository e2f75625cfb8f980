"""Typed deployment configuration, read once from CDK context in ``app.py``.

``cdk.json`` holds one settings object per stage under ``tickerserve:stages``;
``tickerserve:stage`` picks one. Any single setting can be overridden on the
command line as ``-c tickerserve:<key>=<value>`` (values arrive as strings and
are parsed to the setting's type). Constructs never read context themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

CONTEXT_PREFIX = "tickerserve:"
STAGE_KEY = f"{CONTEXT_PREFIX}stage"
STAGES_KEY = f"{CONTEXT_PREFIX}stages"

ARCHITECTURES = ("x86_64", "arm64")
AUTH_MODES = ("iam", "api_key", "none")
# The values CloudWatch Logs accepts for a retention period.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
REGISTRY_KEY = "metadata/asset_registry.json"
# API Gateway REST integrations time out at 29 s; a longer function timeout only hides failures.
MAX_TIMEOUT_SECONDS = 29
# SnapStart does not support ephemeral storage above 512 MB.
SNAPSTART_MAX_EPHEMERAL_MB = 512

_STAGE_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){0,3}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ConfigError(ValueError):
    """A context value is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class AlarmConfig:
    """Thresholds for the serving alarms; each is evaluated over ``period_minutes``."""

    api_5xx_errors: int = 1
    function_errors: int = 1
    throttles: int = 1
    p99_latency_ms: int = 3000
    period_minutes: int = 5
    evaluation_periods: int = 1
    email: str | None = None

    def __post_init__(self) -> None:
        for name in ("api_5xx_errors", "function_errors", "throttles", "p99_latency_ms"):
            _require(getattr(self, name) >= 1, f"alarms.{name} must be >= 1")
        _require(self.period_minutes in (1, 5, 15, 60), "alarms.periodMinutes: 1, 5, 15 or 60")
        _require(1 <= self.evaluation_periods <= 24, "alarms.evaluationPeriods must be 1..24")
        _require(
            self.email is None or re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", self.email) is not None,
            "alarms.email must be an e-mail address",
        )


@dataclass(frozen=True)
class ServingConfig:
    """Everything that differs between deployments; the defaults deploy as is."""

    stage: str = "dev"
    architecture: str = "x86_64"
    memory_mb: int = 2048
    timeout_seconds: int = MAX_TIMEOUT_SECONDS
    ephemeral_storage_mb: int = 1024
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0
    snap_start: bool = False
    auth_mode: str = "iam"
    throttle_rate_limit: float = 50.0
    throttle_burst_limit: int = 100
    waf: bool = False
    log_retention_days: int = 30
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    preload: tuple[str, ...] = ()
    registry_ttl_seconds: int = 60
    registry_key: str = REGISTRY_KEY
    bucket_name: str | None = None
    # Budgets the runtime keeps within; by default derived from memory and /tmp size.
    model_memory_mb: int | None = None
    model_disk_mb: int | None = None

    def __post_init__(self) -> None:
        _require(
            _STAGE_RE.match(self.stage) is not None,
            "stage: 1-12 lowercase letters, digits, dashes (part of the bucket name)",
        )
        _require(self.architecture in ARCHITECTURES, f"architecture: one of {ARCHITECTURES}")
        _require(128 <= self.memory_mb <= 10240, "memoryMb must be 128..10240")
        _require(
            1 <= self.timeout_seconds <= MAX_TIMEOUT_SECONDS,
            f"timeoutSeconds must be 1..{MAX_TIMEOUT_SECONDS} (the API Gateway limit)",
        )
        _require(512 <= self.ephemeral_storage_mb <= 10240, "ephemeralStorageMb must be 512..10240")
        _require(
            self.reserved_concurrency is None or self.reserved_concurrency >= 1,
            "reservedConcurrency must be >= 1 or null",
        )
        _require(self.provisioned_concurrency >= 0, "provisionedConcurrency must be >= 0")
        _require(
            not (self.snap_start and self.provisioned_concurrency),
            "snapStart and provisionedConcurrency cannot be combined on one version",
        )
        _require(
            not self.snap_start or self.ephemeral_storage_mb <= SNAPSTART_MAX_EPHEMERAL_MB,
            f"snapStart needs ephemeralStorageMb <= {SNAPSTART_MAX_EPHEMERAL_MB}",
        )
        _require(
            self.reserved_concurrency is None
            or self.provisioned_concurrency <= self.reserved_concurrency,
            "provisionedConcurrency cannot exceed reservedConcurrency",
        )
        _require(self.auth_mode in AUTH_MODES, f"authMode: one of {AUTH_MODES}")
        _require(self.throttle_rate_limit > 0, "throttleRateLimit must be > 0")
        _require(self.throttle_burst_limit >= 1, "throttleBurstLimit must be >= 1")
        _require(
            self.log_retention_days in LOG_RETENTION_DAYS,
            f"logRetentionDays: one of {LOG_RETENTION_DAYS}",
        )
        for name in self.preload:
            _require(_MODEL_RE.match(name) is not None, f"preload: {name!r} is not a model name")
        _require(self.registry_ttl_seconds >= 0, "registryTtlSeconds must be >= 0")
        _require(
            self.registry_key.startswith("metadata/") and ".." not in self.registry_key,
            "registryKey must live under metadata/",
        )
        _require(
            self.bucket_name is None or _BUCKET_RE.match(self.bucket_name) is not None,
            "bucketName is not a valid S3 bucket name",
        )
        _require(
            self.model_memory_mb is None or 64 <= self.model_memory_mb < self.memory_mb,
            "modelMemoryMb must be >= 64 and below memoryMb",
        )
        _require(
            self.model_disk_mb is None or 64 <= self.model_disk_mb < self.ephemeral_storage_mb,
            "modelDiskMb must be >= 64 and below ephemeralStorageMb",
        )

    @property
    def memory_budget_mb(self) -> int:
        """Loaded-model budget: half the function memory leaves room for Python and numpy."""
        return self.model_memory_mb or self.memory_mb // 2

    @property
    def disk_budget_mb(self) -> int:
        """Artifact-cache budget: /tmp minus headroom for temp files during a download."""
        return self.model_disk_mb or self.ephemeral_storage_mb * 3 // 4


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part if part[0].isdigit() else part.title() for part in rest)


def _parse(value: Any, kind: str, key: str) -> Any:
    """Coerce one context value (JSON from cdk.json, or a string from ``-c``) to ``kind``."""
    optional = kind.endswith("| None")
    base = kind.removesuffix(" | None")
    if value is None or (optional and value in ("", "null", "none")):
        if optional:
            return None
        raise ConfigError(f"{key} must not be null")
    try:
        if base == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if base == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if base == "str":
            if not isinstance(value, str):
                raise ValueError(value)
            return value
        if base == "tuple[str, ...]":
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError(value)
            return tuple(i.strip() for i in items if i.strip())
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a valid {base}") from None
    raise ConfigError(f"{key}: unsupported setting type {kind}")  # pragma: no cover


def _build(cls: Callable[..., Any], values: Mapping[str, Any], where: str) -> Any:
    known = {_camel(f.name): f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        f = known[key]
        if f.type == "AlarmConfig":
            nested = json.loads(value) if isinstance(value, str) else value
            if not isinstance(nested, Mapping):
                raise ConfigError(f"{where}.{key} must be an object")
            kwargs[f.name] = _build(AlarmConfig, nested, f"{where}.{key}")
        else:
            kwargs[f.name] = _parse(value, str(f.type), f"{where}.{key}")
    return cls(**kwargs)


def load_config(context: Callable[[str], Any]) -> ServingConfig:
    """Read the selected stage from CDK context (``node.try_get_context``) into a config.

    Order: defaults, then ``tickerserve:stages[<stage>]``, then ``-c tickerserve:<key>`` values.
    """
    stage = context(STAGE_KEY) or "dev"
    stages = context(STAGES_KEY) or {}
    if not isinstance(stages, Mapping):
        raise ConfigError(f"{STAGES_KEY} must be an object of stage name -> settings")
    if stages and stage not in stages:
        # A typo must not silently deploy a new stack with default settings.
        raise ConfigError(f"stage {stage!r} is not in {STAGES_KEY}: {sorted(stages)}")
    base = dict(stages.get(stage, {}))
    overrides = {
        key: value
        for key in (_camel(f.name) for f in fields(ServingConfig))
        if key != "stage" and (value := context(CONTEXT_PREFIX + key)) is not None
    }
    config: ServingConfig = _build(ServingConfig, {**base, **overrides}, f"stage {stage!r}")
    return replace(config, stage=stage)
