"""A ``tickerserve serve`` process over the ``make serve`` demo models in a moto server, shared
by the local-server and README tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from tests.integration.serving import TICKERSERVE, Running, running
from tests.support import REGISTRY_KEY, free_port
from tickerserve.cli.demo_set import DEMO_MODELS
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.bundle import Bundle
from tickerserve.storage.store import S3Store


@dataclass(frozen=True)
class DemoBucket:
    """A moto bucket holding the demo models, routed and promoted as ``make serve`` does."""

    endpoint: str
    store: S3Store

    @property
    def target(self) -> list[str]:
        return ["--bucket", self.store.bucket, "--endpoint-url", self.endpoint]


@pytest.fixture(scope="session")
def demo_bundles() -> dict[str, Bundle]:
    """The demo set trained once per session (a second or two)."""
    return {model.name: model.bundle() for model in DEMO_MODELS}


@pytest.fixture(scope="session")
def demo_bucket(moto_endpoint: str, demo_bundles: dict[str, Bundle]) -> DemoBucket:
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    name = f"demo-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    store = S3Store(name, client=client)
    for model in DEMO_MODELS:
        routes = dict.fromkeys(model.tickers, model.asset_class)
        publish_bundle(store, demo_bundles[model.name], registry_key=REGISTRY_KEY, routes=routes)
    return DemoBucket(moto_endpoint, store)


@pytest.fixture(scope="session")
def local_server(
    demo_bucket: DemoBucket, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """``tickerserve serve`` on a free port, stopped (with its process group) at the end."""
    tmp = tmp_path_factory.mktemp("serve")
    port = free_port()
    argv = [
        *TICKERSERVE,
        *demo_bucket.target,
        "serve",
        "--port",
        str(port),
        "--cache-dir",
        str(tmp / "cache"),
    ]
    with running(argv, port=port, log=tmp / "serve.log") as server:
        yield server
