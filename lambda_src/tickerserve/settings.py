"""Runtime settings, read once from environment variables into a typed object; every
environment variable name the runtime reads is defined here.

The CDK serving stack sets exactly the names in ``ENV_NAMES`` for the prediction function and
``MONITOR_ENV_NAMES`` for the monitor function; tests check both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tickerserve.errors import ConfigError
from tickerserve.layout import DEFAULT_REGISTRY_KEY, validate_key, validate_model_name

ENV_BUCKET = "TICKERSERVE_BUCKET"
ENV_STORE_PATH = "TICKERSERVE_STORE_PATH"
ENV_REGISTRY_KEY = "TICKERSERVE_REGISTRY_KEY"
ENV_REGISTRY_TTL = "TICKERSERVE_REGISTRY_TTL"
ENV_CACHE_DIR = "TICKERSERVE_CACHE_DIR"
ENV_MEMORY_MB = "TICKERSERVE_MEMORY_MB"
ENV_DISK_MB = "TICKERSERVE_DISK_MB"
ENV_PRELOAD = "TICKERSERVE_PRELOAD"
ENV_CAPTURE = "TICKERSERVE_CAPTURE"
# The monitor function's own (``tickerserve.monitor.handler.MonitorSettings``).
ENV_CAPTURE_BUCKET = "TICKERSERVE_CAPTURE_BUCKET"
ENV_MONITOR_DAYS = "TICKERSERVE_MONITOR_DAYS"
ENV_MONITOR_THRESHOLDS = "TICKERSERVE_MONITOR_THRESHOLDS"  # JSON, keys as monitor/config.json's
ENV_MONITOR_AUTO_PROMOTE = "TICKERSERVE_MONITOR_AUTO_PROMOTE"

# What the prediction function reads (the serving stack sets exactly these).
ENV_NAMES: tuple[str, ...] = (
    ENV_BUCKET,
    ENV_STORE_PATH,
    ENV_REGISTRY_KEY,
    ENV_REGISTRY_TTL,
    ENV_CACHE_DIR,
    ENV_MEMORY_MB,
    ENV_DISK_MB,
    ENV_PRELOAD,
    ENV_CAPTURE,
)
# What the monitor function reads (its construct sets exactly these).
MONITOR_ENV_NAMES: tuple[str, ...] = (
    ENV_BUCKET,
    ENV_STORE_PATH,
    ENV_REGISTRY_KEY,
    ENV_CAPTURE_BUCKET,
    ENV_MONITOR_DAYS,
    ENV_MONITOR_THRESHOLDS,
    ENV_MONITOR_AUTO_PROMOTE,
)

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the runtime reads from its environment."""

    bucket: str | None = None
    store_path: str | None = None
    registry_key: str = DEFAULT_REGISTRY_KEY
    registry_ttl: float = 60.0
    cache_dir: str = "/tmp/tickerserve"
    memory_mb: int = 512
    disk_mb: int = 400
    preload: tuple[str, ...] = ()
    # Off unless switched on: the deployed stack and ``tickerserve serve`` switch it on.
    capture: bool = False

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * MB

    @property
    def disk_bytes(self) -> int:
        return self.disk_mb * MB

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse settings; an invalid value raises ``ConfigError`` naming the variable."""
        env = os.environ if env is None else env
        bucket = env.get(ENV_BUCKET, "").strip() or None
        store_path = env.get(ENV_STORE_PATH, "").strip() or None
        if bucket and store_path:
            raise ConfigError(f"set only one of {ENV_BUCKET} and {ENV_STORE_PATH}")
        if bucket is not None and not 3 <= len(bucket) <= 63:
            raise ConfigError(f"{ENV_BUCKET}={bucket!r} is not a valid bucket name")
        registry_key = env.get(ENV_REGISTRY_KEY, "").strip() or DEFAULT_REGISTRY_KEY
        try:
            validate_key(registry_key)
        except ValueError as exc:
            raise ConfigError(f"{ENV_REGISTRY_KEY}: {exc}") from None
        preload = tuple(p.strip() for p in env.get(ENV_PRELOAD, "").split(",") if p.strip())
        for name in preload:
            try:
                validate_model_name(name)
            except ValueError as exc:
                raise ConfigError(f"{ENV_PRELOAD}: {exc}") from None
        return cls(
            bucket=bucket,
            store_path=store_path,
            registry_key=registry_key,
            registry_ttl=_number(env, ENV_REGISTRY_TTL, 60.0, minimum=0.0),
            cache_dir=env.get(ENV_CACHE_DIR, "").strip() or "/tmp/tickerserve",
            memory_mb=int(_number(env, ENV_MEMORY_MB, 512, minimum=1, integer=True)),
            disk_mb=int(_number(env, ENV_DISK_MB, 400, minimum=1, integer=True)),
            preload=preload,
            capture=_switch(env, ENV_CAPTURE, default=False),
        )


_ON = ("on", "true", "1", "yes")
_OFF = ("off", "false", "0", "no")


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _ON + _OFF:
        raise ConfigError(f"{name}={raw!r} must be on or off")
    return raw in _ON


def _number(
    env: Mapping[str, str], name: str, default: float, *, minimum: float, integer: bool = False
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}={raw!r} is not {kind}") from None
    if not value >= minimum or value != value or value == float("inf"):
        raise ConfigError(f"{name}={raw!r} must be a finite number >= {minimum:g}")
    return value
