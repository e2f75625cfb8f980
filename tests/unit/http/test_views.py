"""The read-only views: what serves what (``GET /models``), one ticker's model with its inputs
and outputs (``GET /models/{ticker}``) and the sandbox's health (``GET /health``); none of
them loads a model, and health says 503 when storage is down and nothing is cached."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tests.support import REGISTRY_KEY, DemoModels, populate
from tickerserve.errors import BadRequest, NotFound
from tickerserve.http.views import describe_models, describe_ticker, health
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.registry import CanarySettings, read_registry, update_registry
from tickerserve.storage.store import LocalStore, S3Store


@pytest.fixture
def store(tmp_path: Path, models: DemoModels) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    populate(store, models)
    return store


@pytest.fixture
def service(store: LocalStore, tmp_path: Path) -> ModelService:
    settings = Settings(store_path=str(store.root), cache_dir=str(tmp_path / "cache"))
    return ModelService(settings, store=store)


def test_models_lists_every_route_with_its_models_aliases(service: ModelService) -> None:
    page = describe_models(service)
    tickers = [r["ticker"] for r in page["routes"]]
    assert tickers == sorted(tickers) == ["AAPL", "MSFT", "SMH", "SPY", "TLT"]
    assert {m["name"] for m in page["models"]} == {
        "etfs/SMH", "etfs/SPY", "etfs/TLT", "stocks/universal",
    }  # fmt: skip
    assert page["next"] is None and page["revision"] == 4
    assert service.loaded() == []  # nothing was loaded to answer


def test_models_pages_with_a_token_that_continues_where_the_last_page_ended(service):
    first = describe_models(service, limit=2)
    assert [r["ticker"] for r in first["routes"]] == ["AAPL", "MSFT"]
    second = describe_models(service, limit=2, next_token=first["next"])
    assert [r["ticker"] for r in second["routes"]] == ["SMH", "SPY"]
    third = describe_models(service, limit=2, next_token=second["next"])
    assert ([r["ticker"] for r in third["routes"]], third["next"]) == (["TLT"], None)
    with pytest.raises(BadRequest) as caught:
        describe_models(service, limit=0)
    assert caught.value.code == "invalid_limit"


def test_a_ticker_is_described_from_its_metadata_without_loading(service, models) -> None:
    view = describe_ticker(service, "SMH")
    meta = models.smh.metadata
    assert view["model"] == {"name": "etfs/SMH", "version": "1.0.0", "alias": "production"}
    assert (view["asset_class"], view["via_fallback"], view["timeframe"]) == ("etf", False, None)
    assert view["feature_names"] == meta.feature_names
    assert view["required_features"] == meta.used_features
    assert view["classes"] == meta.classes
    assert view["aliases"] == {"production": "1.0.0"}
    assert (view["shadow"], view["canary"]) == (None, None)
    assert view["task"] == "classification" and len(view["metadata_sha256"]) == 64
    assert service.loaded() == []


def test_a_ticker_view_shows_its_canary_and_the_version_it_names(store, service) -> None:
    update_registry(store, REGISTRY_KEY, lambda r: r.set_canary("etfs/SMH", CanarySettings(
        "canary", 0.2)))  # fmt: skip
    assert describe_ticker(service, "SMH")["canary"] == {
        "alias": "canary", "weight": 0.2, "version": None,
    }  # fmt: skip


def test_an_unknown_ticker_or_timeframe_is_404(service) -> None:
    with pytest.raises(NotFound) as caught:
        describe_ticker(service, "GME")
    assert caught.value.code == "unknown_ticker"
    with pytest.raises(NotFound) as caught:
        describe_ticker(service, "SMH", timeframe="h4")
    assert caught.value.code == "unknown_timeframe"


def test_health_reports_the_registry_and_what_is_loaded(store, service) -> None:
    service.serving_for_ticker("SPY")
    body, status = health(service, cold=False)
    assert status == 200 and body["status"] == "ok" and body["cold"] is False
    assert body["registry"]["revision"] == read_registry(store, REGISTRY_KEY).registry.revision
    assert (body["registry"]["models"], body["registry"]["tickers"]) == (4, 5)
    assert [m["name"] for m in body["loaded_models"]] == ["etfs/SPY"]
    assert body["counters"]["model_loads"] == 1
    assert 0 < body["memory"]["used_bytes"] <= body["memory"]["budget_bytes"]
    assert body["store"] == str(store.root)
    assert "error" not in body


def test_health_is_503_when_storage_is_unreachable_and_nothing_is_cached(tmp_path: Path) -> None:
    client = boto3.client(
        "s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )  # fmt: skip
    store = S3Store("tickerserve-models", client=client)
    service = ModelService(Settings(bucket="unused", cache_dir=str(tmp_path / "cache")), store)
    body, status = health(service, cold=True)
    assert (status, body["status"], body["registry"]) == (503, "unavailable", None)
    assert body["error"]["code"] == "storage_unavailable"
    assert body["error"]["message"].startswith("registry unavailable: storage unreachable: ")
    assert body["cold"] is True and body["store"] == "s3://tickerserve-models"
