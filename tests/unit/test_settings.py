"""Settings come from exactly the documented environment variables; bad values fail at init."""

from __future__ import annotations

import pytest

from tickerserve.errors import ConfigError
from tickerserve.settings import Settings


def test_defaults_match_the_design():
    settings = Settings.from_env({"TICKERSERVE_BUCKET": "models-bucket"})
    assert settings.bucket == "models-bucket"
    assert settings.registry_key == "metadata/asset_registry.json"
    assert (settings.registry_ttl, settings.memory_mb, settings.disk_mb) == (60.0, 512, 400)
    assert settings.cache_dir == "/tmp/tickerserve"
    assert settings.preload == ()
    assert settings.capture is False  # the stack and ``tickerserve serve`` switch it on


@pytest.mark.parametrize(("raw", "on"), [("on", True), ("ON", True), ("off", False), ("0", False)])
def test_capture_is_switched_on_or_off(raw, on):
    assert Settings.from_env({"TICKERSERVE_CAPTURE": raw}).capture is on


def test_every_variable_is_read():
    settings = Settings.from_env(
        {
            "TICKERSERVE_STORE_PATH": "/srv/models",
            "TICKERSERVE_REGISTRY_KEY": "meta/reg.json",
            "TICKERSERVE_REGISTRY_TTL": "2.5",
            "TICKERSERVE_CACHE_DIR": "/tmp/x",
            "TICKERSERVE_MEMORY_MB": "256",
            "TICKERSERVE_DISK_MB": "100",
            "TICKERSERVE_PRELOAD": "etfs/SMH, stocks/universal",
        }
    )
    assert settings.store_path == "/srv/models"
    assert settings.registry_key == "meta/reg.json"
    assert settings.registry_ttl == 2.5
    assert settings.memory_bytes == 256 * 1024 * 1024
    assert settings.disk_mb == 100
    assert settings.preload == ("etfs/SMH", "stocks/universal")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TICKERSERVE_REGISTRY_TTL": "soon"}, "TICKERSERVE_REGISTRY_TTL"),
        ({"TICKERSERVE_REGISTRY_TTL": "-1"}, "TICKERSERVE_REGISTRY_TTL"),
        ({"TICKERSERVE_REGISTRY_TTL": "nan"}, "TICKERSERVE_REGISTRY_TTL"),
        ({"TICKERSERVE_MEMORY_MB": "1.5"}, "TICKERSERVE_MEMORY_MB"),
        ({"TICKERSERVE_DISK_MB": "0"}, "TICKERSERVE_DISK_MB"),
        ({"TICKERSERVE_PRELOAD": "../etc"}, "TICKERSERVE_PRELOAD"),
        ({"TICKERSERVE_REGISTRY_KEY": "/abs/key"}, "TICKERSERVE_REGISTRY_KEY"),
        ({"TICKERSERVE_BUCKET": "b", "TICKERSERVE_STORE_PATH": "/x"}, "only one"),
        ({"TICKERSERVE_BUCKET": "ab"}, "TICKERSERVE_BUCKET"),
        ({"TICKERSERVE_CAPTURE": "sometimes"}, "TICKERSERVE_CAPTURE"),
    ],
)
def test_invalid_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
