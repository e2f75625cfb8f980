"""`promote` racing `delete` on one version, as separate CLI processes against a moto server,
the promote's storage link slow or held by a fault proxy: an alias never ends on a deleted
version, and the two commands never both succeed."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from tests.fault_proxy import FaultProxy
from tests.integration.serving import TICKERSERVE, child_env
from tests.support import REGISTRY_KEY, DemoModels
from tickerserve.layout import metadata_key
from tickerserve.publishing.release import RouteChange, publish
from tickerserve.storage.bundle import make_bundle
from tickerserve.storage.registry import read_registry
from tickerserve.storage.store import S3Store
from tickerserve.storage.version_index import read_index

MODEL = "etfs/SMH"
TIMEOUT = 120.0


@dataclass(frozen=True)
class Outcome:
    code: int
    stderr: str


@pytest.fixture
def bucket(moto_endpoint: str, models: DemoModels) -> S3Store:
    """SMH 1.0.0 in production, published as the CLI publishes."""
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    name = f"race-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    store = S3Store(name, client=client)
    publish(
        store,
        models.smh,
        registry_key=REGISTRY_KEY,
        model=MODEL,
        aliases=["production"],
        routes=[RouteChange("SMH", "etf", MODEL)],
    )
    return store


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_endpoint) as running:
        yield running


def new_version(store: S3Store, models: DemoModels, version: str) -> None:
    bundle = make_bundle(models.smh_v2.metadata, models.smh_v2.files)
    publish(store, bundle, registry_key=REGISTRY_KEY, model=MODEL, version=version)


def start(endpoint: str, bucket: S3Store, *args: str) -> subprocess.Popen[str]:
    argv = [*TICKERSERVE, "--bucket", bucket.bucket, "--endpoint-url", endpoint, *args]
    return subprocess.Popen(
        argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> Outcome:
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("a CLI process hung") from None
    return Outcome(process.returncode, stderr)


def assert_every_alias_names_a_live_version(bucket: S3Store) -> None:
    registry = read_registry(bucket, REGISTRY_KEY).registry
    index = read_index(bucket, MODEL).index
    for alias, target in registry.models[MODEL].aliases.items():
        assert bucket.head(metadata_key(MODEL, target.version)) is not None, (alias, target)
        assert not index.is_deleted(target.version), (alias, target)
    assert registry.deleting == {}


def test_a_promote_held_at_its_registry_write_loses_to_a_delete(
    bucket, proxy, moto_endpoint, models
):
    # Given 1.0.1 published without an alias, and a promote of it whose registry write the
    # proxy holds back: it has verified 1.0.1 and is about to move production
    new_version(bucket, models, "1.0.1")
    registry_put = f"PUT /{bucket.bucket}/{REGISTRY_KEY}".encode()
    proxy.hold(registry_put)
    promote = start(proxy.url, bucket, "promote", MODEL, "1.0.1")
    proxy.wait_for(registry_put, timeout=TIMEOUT)
    # When 1.0.1 is deleted meanwhile (a second process, direct to the store)
    deleted = finish(start(moto_endpoint, bucket, "delete", MODEL, "1.0.1"))
    # And the promote's write is let through
    proxy.release()
    promoted = finish(promote)
    # Then the delete succeeded and the promote was refused: production stays on 1.0.0
    assert deleted.code == 0, deleted.stderr
    assert promoted.code == 2, promoted.stderr
    assert "1.0.1 was deleted" in promoted.stderr
    assert (
        read_registry(bucket, REGISTRY_KEY).registry.models[MODEL].aliases["production"].version
        == "1.0.0"
    )
    assert_every_alias_names_a_live_version(bucket)


def test_a_delete_held_at_its_registry_write_loses_to_a_promote(
    bucket, proxy, moto_endpoint, models
):
    # Given a delete of 1.0.1 whose first registry write the proxy holds back
    new_version(bucket, models, "1.0.1")
    registry_put = f"PUT /{bucket.bucket}/{REGISTRY_KEY}".encode()
    proxy.hold(registry_put)
    delete = start(proxy.url, bucket, "delete", MODEL, "1.0.1")
    proxy.wait_for(registry_put, timeout=TIMEOUT)
    # When production is moved to 1.0.1 meanwhile
    promoted = finish(start(moto_endpoint, bucket, "promote", MODEL, "1.0.1"))
    proxy.release()
    deleted = finish(delete)
    # Then the promote won and the delete was refused: nothing of 1.0.1 was removed
    assert promoted.code == 0, promoted.stderr
    assert deleted.code == 2, deleted.stderr
    assert "alias production points at it" in deleted.stderr
    assert bucket.head(metadata_key(MODEL, "1.0.1")) is not None
    assert_every_alias_names_a_live_version(bucket)


def test_racing_promote_and_delete_through_a_slow_link_never_both_succeed(
    bucket, proxy, moto_endpoint, models
):
    # Given the promote's link to storage is slow (every chunk 50 ms late)
    proxy.delay(0.05)
    for round_ in range(2):
        version = f"1.0.{round_ + 1}"
        new_version(bucket, models, version)
        # When promote (slow link) and delete (direct) of the same version start together
        promote = start(proxy.url, bucket, "promote", MODEL, version)
        delete = start(moto_endpoint, bucket, "delete", MODEL, version)
        promoted, deleted = finish(promote), finish(delete)
        # Then exactly one of them succeeded, and production never names a deleted version
        assert sorted([promoted.code, deleted.code]) == [0, 2], (promoted, deleted)
        assert_every_alias_names_a_live_version(bucket)
