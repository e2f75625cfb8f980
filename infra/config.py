"""Typed deployment configuration, read once from CDK context in ``app.py``.

``cdk.json`` holds one settings object per stage under ``tickerserve:stages``;
``tickerserve:stage`` picks one. Any single setting can be overridden on the
command line as ``-c tickerserve:<key>=<value>`` (values arrive as strings; pydantic
parses them to the setting's type). Constructs never read context themselves: each
takes one frozen settings object as its keyword-only ``settings`` argument.

Adding settings for a new component: declare a section (a ``Settings`` subclass with
defaults that deploy as is), add it as one field of ``ServingConfig`` (its camelCase
name is the ``cdk.json`` key, e.g. ``alarms``; ``-c`` takes it as a JSON object) and
pass ``config.<section>`` to the component's construct as ``settings=``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from infra.runtime_contract import (
    LAYOUT_NAMES,
    MONITOR_DAYS,
    MONITOR_ORDERED,
    MONITOR_THRESHOLDS,
    MonitorSetting,
    check_model_name,
    check_name,
)

CONTEXT_PREFIX = "tickerserve:"
STAGE_KEY = f"{CONTEXT_PREFIX}stage"
STAGES_KEY = f"{CONTEXT_PREFIX}stages"
# Deploy a stage with the settings of another ``stages`` entry: a throw-away stage of `make e2e`
# (e2e-<id>) takes the "e2e" entry's settings under its own name.
SETTINGS_FROM_KEY = f"{CONTEXT_PREFIX}settingsFrom"

Architecture = Literal["x86_64", "arm64"]
AuthMode = Literal["iam", "api_key", "none"]
# The front door: API Gateway REST API (v1 events), HTTP API (v2 events) or a Lambda function URL.
ApiType = Literal["rest", "http", "url"]
# The values CloudWatch Logs accepts for a retention period.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
REGISTRY_KEY = LAYOUT_NAMES.registry_key
# API Gateway integrations time out at 29 s (REST) and 30 s (HTTP APIs): behind either, a longer
# function timeout only hides failures. A function URL waits as long as the function may run.
MAX_GATEWAY_TIMEOUT_SECONDS = 29
MAX_TIMEOUT_SECONDS = 900
# SnapStart does not support ephemeral storage above 512 MB.
SNAPSTART_MAX_EPHEMERAL_MB = 512

_STAGE_RE = re.compile(r"[a-z][a-z0-9-]{0,11}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# How `-c key=null` (always a string on the command line) says "not set".
_NULL_STRINGS = frozenset({"", "null"})


class ConfigError(ValueError):
    """A context value is missing, of the wrong type or out of range."""


def camel(name: str) -> str:
    """The ``cdk.json`` spelling of a setting: ``api_5xx_errors`` -> ``api5xxErrors``."""
    head, *rest = name.split("_")
    return head + "".join(part if part[0].isdigit() else part.title() for part in rest)


def _snake(key: str) -> str:
    """A camelCase key's field name: ``psiWatch`` -> ``psi_watch`` (``camel``'s inverse)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


class Settings(BaseModel):
    """Base of every settings section: frozen, camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=camel,
        validate_by_name=True,
        validate_by_alias=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _context_strings(cls, data: Any) -> Any:
        """``-c`` values are strings: ``null`` means unset, a section arrives as JSON text."""
        if not isinstance(data, Mapping):
            return data
        sections = {
            info.alias: info.annotation
            for info in cls.model_fields.values()
            if isinstance(info.annotation, type) and issubclass(info.annotation, Settings)
        }
        parsed: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, str) and value.strip().lower() in _NULL_STRINGS:
                value = None
            elif isinstance(value, str) and key in sections:
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{key} must be a JSON object: {exc}") from None
            parsed[key] = value
        return parsed


class AlarmSettings(Settings):
    """Thresholds for the serving alarms; each is evaluated over ``period_minutes``."""

    api_5xx_errors: Annotated[int, Field(ge=1)] = 1
    function_errors: Annotated[int, Field(ge=1)] = 1
    throttles: Annotated[int, Field(ge=1)] = 1
    p99_latency_ms: Annotated[int, Field(ge=1)] = 3000
    # What warm sandboxes hide behind good answers (the function's own metrics):
    model_load_failures: Annotated[int, Field(ge=1)] = 1  # a version failed to load
    registry_failures: Annotated[int, Field(ge=1)] = 3  # registry reads failed (store faults)
    served_last_good: Annotated[int, Field(ge=1)] = 1  # answers from a last good version
    # Seconds since a sandbox last read the registry; must exceed registryTtlSeconds.
    registry_staleness_seconds: Annotated[int, Field(ge=1)] = 300
    period_minutes: Literal[1, 5, 15, 60] = 5
    evaluation_periods: Annotated[int, Field(ge=1, le=24)] = 1
    email: str | None = None
    # Shadow, canary and capture (the function's own counts): a challenger that could not
    # score, a canary that could not answer, a capture record that could not be written.
    shadow_failures: Annotated[int, Field(ge=1)] = 1
    canary_fallbacks: Annotated[int, Field(ge=1)] = 1
    capture_failures: Annotated[int, Field(ge=1)] = 1
    # Request warnings (a feature out of its version's range, or missing where its reference
    # had none) one model's answers carried in a period: each model is its own alarm series.
    request_warnings: Annotated[int, Field(ge=1)] = 100

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and _EMAIL_RE.fullmatch(value) is None:
            raise ValueError("must be an e-mail address")
        return value


def _monitor(setting: MonitorSetting) -> Any:
    """A ``monitor`` setting's default and bounds, from the runtime's monitor/config.json."""
    return Field(default=setting.default, description=setting.description, **setting.bounds)


class MonitorSettings(Settings):
    """The scheduled monitor (``monitor`` in ``cdk.json``): when it runs, how many days it
    judges, seed 003's thresholds, and whether it may promote a challenger by itself.

    Days and thresholds are the runtime's own settings: their defaults, bounds and order come
    from ``lambda_src/tickerserve/monitor/config.json`` (camelCase keys as written there; a
    test checks every threshold there is a field here)."""

    enabled: bool = True
    # EventBridge Scheduler expression, UTC; 00:30 judges the complete days before it.
    schedule: str = "cron(30 0 * * ? *)"
    days: int = _monitor(MONITOR_DAYS)
    psi_watch: float = _monitor(MONITOR_THRESHOLDS["psiWatch"])
    psi_drift: float = _monitor(MONITOR_THRESHOLDS["psiDrift"])
    switch_win_rate: float = _monitor(MONITOR_THRESHOLDS["switchWinRate"])
    retrain_drift_pct: float = _monitor(MONITOR_THRESHOLDS["retrainDriftPct"])
    watch_drift_pct: float = _monitor(MONITOR_THRESHOLDS["watchDriftPct"])
    alpha: float = _monitor(MONITOR_THRESHOLDS["alpha"])
    min_window: int = _monitor(MONITOR_THRESHOLDS["minWindow"])
    auto_promote: bool = False

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if re.fullmatch(r"(rate|cron)\([^()]+\)", value) is None:
            raise ValueError("an EventBridge Scheduler rate(...) or cron(...) expression")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        values = self.thresholds()
        for low, high in MONITOR_ORDERED:
            if values[low] > values[high]:
                raise ValueError(f"{low} must be <= {high}")
        return self

    def thresholds(self) -> dict[str, float]:
        """The thresholds as the monitor function reads them (one JSON variable), keyed as
        monitor/config.json spells them."""
        return {key: getattr(self, _snake(key)) for key in MONITOR_THRESHOLDS}


class CaptureSettings(Settings):
    """What is recorded of served predictions (``capture`` in ``cdk.json``)."""

    # Capture records leave the function as log lines; off, the function prints none and no
    # pipeline is deployed.
    enabled: bool = True
    # Days captured records (and Firehose's delivery errors) are kept in the capture bucket.
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # Longest a record waits in Firehose's buffer before it lands in S3 (60-900 s).
    buffer_seconds: Annotated[int, Field(ge=60, le=900)] = 300


@dataclass(frozen=True)
class FunctionSettings:
    """What the prediction function construct needs (a view of ``ServingConfig``)."""

    architecture: Architecture
    memory_mb: int
    timeout_seconds: int
    ephemeral_storage_mb: int
    reserved_concurrency: int | None
    provisioned_concurrency: int
    snap_start: bool
    log_retention_days: int
    registry_key: str
    registry_ttl_seconds: int
    memory_budget_mb: int
    disk_budget_mb: int
    preload: tuple[str, ...]
    capture_on: bool


@dataclass(frozen=True)
class ApiSettings:
    """What the front door's construct needs (a view of ``ServingConfig``)."""

    api_type: ApiType
    stage: str
    auth_mode: AuthMode
    throttle_rate_limit: float
    throttle_burst_limit: int
    log_retention_days: int


class ServingConfig(Settings):
    """Everything that differs between deployments; the defaults deploy as is."""

    stage: str = "dev"
    architecture: Architecture = "x86_64"
    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 2048
    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS)] = (
        MAX_GATEWAY_TIMEOUT_SECONDS
    )
    ephemeral_storage_mb: Annotated[int, Field(ge=512, le=10240)] = 1024
    reserved_concurrency: Annotated[int | None, Field(ge=1)] = None
    provisioned_concurrency: Annotated[int, Field(ge=0)] = 0
    snap_start: bool = False
    api_type: ApiType = "rest"
    auth_mode: AuthMode = "iam"
    throttle_rate_limit: Annotated[float, Field(gt=0)] = 50.0
    throttle_burst_limit: Annotated[int, Field(ge=1)] = 100
    waf: bool = False
    log_retention_days: int = 30
    alarms: AlarmSettings = AlarmSettings()
    monitor: MonitorSettings = MonitorSettings()
    capture: CaptureSettings = CaptureSettings()
    preload: tuple[str, ...] = ()
    registry_ttl_seconds: Annotated[int, Field(ge=0)] = 60
    registry_key: str = REGISTRY_KEY
    bucket_name: str | None = None
    # Budgets the runtime keeps within; by default derived from memory and /tmp size.
    model_memory_mb: Annotated[int | None, Field(ge=64)] = None
    model_disk_mb: Annotated[int | None, Field(ge=64)] = None

    @field_validator("stage")
    @classmethod
    def _stage(cls, value: str) -> str:
        if _STAGE_RE.fullmatch(value) is None:
            raise ValueError("1-12 lowercase letters, digits, dashes (part of the bucket name)")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"one of {LOG_RETENTION_DAYS}")
        return value

    @field_validator("preload", mode="before")
    @classmethod
    def _preload_list(cls, value: Any) -> Any:
        # `-c tickerserve:preload=etfs/SMH,stocks/universal`
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("preload")
    @classmethod
    def _preload_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The runtime's own rule: a name it refuses would stop the function at every start.
        for name in value:
            check_model_name(name)
        return value

    @field_validator("registry_key")
    @classmethod
    def _registry_key(cls, value: str) -> str:
        if not value.startswith(LAYOUT_NAMES.metadata_prefix):
            raise ValueError(f"must live under {LAYOUT_NAMES.metadata_prefix}")
        return check_name("object_key", value)

    @field_validator("bucket_name")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        if value is not None and _BUCKET_RE.fullmatch(value) is None:
            raise ValueError("not a valid S3 bucket name")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> Self:
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
        _require(
            self.model_memory_mb is None or self.model_memory_mb < self.memory_mb,
            "modelMemoryMb must be below memoryMb",
        )
        _require(
            self.model_disk_mb is None or self.model_disk_mb < self.ephemeral_storage_mb,
            "modelDiskMb must be below ephemeralStorageMb",
        )
        _require(
            self.api_type == "url" or self.timeout_seconds <= MAX_GATEWAY_TIMEOUT_SECONDS,
            f"timeoutSeconds must be at most {MAX_GATEWAY_TIMEOUT_SECONDS} behind API Gateway "
            f"(apiType {self.api_type}: its integration times out first); apiType url allows "
            f"up to {MAX_TIMEOUT_SECONDS}",
        )
        _require(
            self.auth_mode != "api_key" or self.api_type == "rest",
            f"authMode api_key needs apiType rest: API keys and usage plans are REST API "
            f"features (apiType {self.api_type} has none); use authMode iam",
        )
        _require(
            not self.waf or self.api_type == "rest",
            f"waf needs apiType rest: AWS WAF attaches to REST API stages, not to HTTP APIs "
            f"or function URLs (apiType {self.api_type})",
        )
        _require(
            self.api_type != "url" or self.reserved_concurrency is not None,
            "apiType url needs reservedConcurrency: a function URL has no request throttling, "
            "so reserved concurrency is the only cap on what callers can run (and cost)",
        )
        _require(
            self.alarms.registry_staleness_seconds > self.registry_ttl_seconds,
            "alarms.registryStalenessSeconds must exceed registryTtlSeconds (a registry "
            "younger than its TTL is not stale)",
        )
        return self

    @property
    def memory_budget_mb(self) -> int:
        """Loaded-model budget: half the function memory leaves room for Python and numpy."""
        return self.model_memory_mb or self.memory_mb // 2

    @property
    def disk_budget_mb(self) -> int:
        """Artifact-cache budget: /tmp minus headroom for temp files during a download."""
        return self.model_disk_mb or self.ephemeral_storage_mb * 3 // 4

    @property
    def capture_on(self) -> bool:
        """Capture needs the storage stack's capture bucket: a stage serving from an existing
        bucket (``bucketName``) has neither, so it captures nothing."""
        return self.capture.enabled and self.bucket_name is None

    @property
    def function(self) -> FunctionSettings:
        """The prediction function's settings."""
        return FunctionSettings(**{f.name: getattr(self, f.name) for f in fields(FunctionSettings)})

    @property
    def api(self) -> ApiSettings:
        """The front door's settings (REST API, HTTP API or function URL)."""
        return ApiSettings(**{f.name: getattr(self, f.name) for f in fields(ApiSettings)})


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _known_keys(path: tuple[str | int, ...]) -> list[str]:
    """The keys the section at ``path`` (a pydantic error location) accepts."""
    section: type[Settings] = ServingConfig
    for part in path:
        nested = {info.alias: info.annotation for info in section.model_fields.values()}.get(
            str(part)
        )
        if not (isinstance(nested, type) and issubclass(nested, Settings)):
            break
        section = nested
    return sorted(str(info.alias) for info in section.model_fields.values())


def _explain(exc: ValidationError) -> str:
    """One line per problem, each naming the setting as cdk.json spells it."""
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            known = _known_keys(error["loc"][:-1])
            problems.append(f"{where}: unknown setting; known: {known}")
        elif where:
            problems.append(f"{where}={error['input']!r}: {message}")
        else:
            problems.append(message)
    return "; ".join(problems)


def load_config(context: Callable[[str], Any]) -> ServingConfig:
    """Read the selected stage from CDK context (``node.try_get_context``) into a config.

    Order: defaults, then ``tickerserve:stages[<stage>]`` (or ``[<settingsFrom>]`` when given),
    then ``-c tickerserve:<key>`` values.
    """
    stage = context(STAGE_KEY) or "dev"
    stages = context(STAGES_KEY) or {}
    if not isinstance(stages, Mapping):
        raise ConfigError(f"{STAGES_KEY} must be an object of stage name -> settings")
    source = context(SETTINGS_FROM_KEY) or stage
    if stages and source not in stages:
        # A typo must not silently deploy a new stack with default settings.
        named = f"{SETTINGS_FROM_KEY} {source!r}" if source != stage else f"stage {stage!r}"
        raise ConfigError(f"{named} is not in {STAGES_KEY}: {sorted(stages)}")
    block = stages.get(source, {})
    if not isinstance(block, Mapping):
        raise ConfigError(f"{STAGES_KEY}.{source} must be an object of settings")
    overrides = {
        key: value
        for key in (str(info.alias) for info in ServingConfig.model_fields.values())
        if key != "stage" and (value := context(CONTEXT_PREFIX + key)) is not None
    }
    try:
        return ServingConfig.model_validate(
            {**block, **overrides, "stage": stage}, by_alias=True, by_name=False
        )
    except ValidationError as exc:
        raise ConfigError(f"stage {stage!r}: {_explain(exc)}") from None
