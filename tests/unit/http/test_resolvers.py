"""Powertools' resolvers for the routes other than POST /predict: built on first need, every
route registered, errors in the API's shape, and when the prediction lane must leave a
request to them (``plain``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import DemoModels, load_event, populate
from tickerserve.errors import StorageUnavailable
from tickerserve.http import resolvers
from tickerserve.http.api import Api
from tickerserve.http.routes import ROUTES
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory, models: DemoModels) -> Path:
    root = tmp_path_factory.mktemp("resolver-store")
    populate(LocalStore(root), models)
    return root


@pytest.fixture
def api(store_dir: Path, tmp_path: Path) -> Api:
    return Api(ModelService(Settings(store_path=str(store_dir), cache_dir=str(tmp_path / "c"))))


@pytest.mark.parametrize("kind", ["rest", "http"])
def test_a_resolver_serves_every_route_of_the_table(api, kind):
    resolver = resolvers.build(api, kind)
    served = {(r.method, r.path) for r in (*resolver._static_routes, *resolver._dynamic_routes)}
    assert served == {(m, p) for p, methods in ROUTES.items() for m in methods}
    assert resolvers.plain(resolver)


@pytest.mark.parametrize(
    ("fixture", "status"),
    [("rest_health.json", 200), ("rest_models.json", 200), ("http_health.json", 200)],
)
def test_a_resolver_answers_the_read_only_routes(api, fixture, status):
    event = load_event(fixture)
    resolver = resolvers.build(api, "rest" if "httpMethod" in event else "http")
    response = resolver.resolve(event, None)  # type: ignore[arg-type]
    assert response["statusCode"] == status
    assert "error" not in json.loads(response["body"])


def test_middlewares_or_validation_make_a_resolver_not_plain(api):
    resolver = resolvers.build(api, "rest")

    def middleware(app: Any, next_middleware: Any) -> Any:
        return next_middleware(app)

    resolver.use([middleware])
    assert not resolvers.plain(resolver)
    validating = resolvers.build(api, "http")
    validating._enable_validation = True
    assert not resolvers.plain(validating)


def test_a_powertools_without_what_plain_reads_is_never_plain(api, monkeypatch):
    # Given a Powertools release without one of the resolver internals ``plain`` reads
    monkeypatch.setattr(resolvers, "_LANE_NEEDS", (*resolvers._LANE_NEEDS, "_gone_later"))
    resolver = api.rest  # built
    assert not resolvers.plain(resolver)
    resolved_events: list[str] = []
    resolve = resolver.resolve

    def spy(event: Any, context: Any) -> Any:
        resolved_events.append(event["path"])
        return resolve(event, context)

    monkeypatch.setattr(resolver, "resolve", spy)
    # Then a prediction is answered, by the resolver
    assert api.handle(load_event("rest_predict.json"), None)["statusCode"] == 200
    assert resolved_events == ["/predict"]


def test_a_store_outage_on_a_resolved_route_is_503_with_retry_after(api, monkeypatch):
    def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("the store timed out", retry_after=1.2)

    monkeypatch.setattr("tickerserve.http.resolvers.health", down)
    response = api.handle(load_event("rest_health.json"), None)
    assert response["statusCode"] == 503
    assert response["multiValueHeaders"]["Retry-After"] == ["2"]
    assert json.loads(response["body"])["error"]["code"] == "storage_unavailable"
