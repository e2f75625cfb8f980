"""SnapStart hooks, called as the Lambda runtime calls them: before the snapshot, then in
each sandbox restored from it (possibly hours later)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from tests.support import REGISTRY_KEY, DemoModels, FakeClock, populate
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving import snapstart
from tickerserve.serving.predict import predict
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.store import LocalStore, S3Store


class AuthorizationLog:
    """The access key id of every signed S3 request a client sends."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def watch(self, client: Any) -> None:
        # First in line: moto's in-process mock answers at before-send and ends the chain.
        client.meta.events.register_first("before-send.s3", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        header = request.headers["Authorization"]
        header = header.decode() if isinstance(header, bytes) else header
        self.keys.append(header.split("Credential=")[1].split("/")[0])


def snap_service(store: S3Store | LocalStore, tmp_path: Path, **settings: Any) -> ModelService:
    # A clock that never moves: nothing here waits for the registry TTL.
    bucket = store.bucket if isinstance(store, S3Store) else None
    store_path = None if bucket else str(tmp_path / "unused")
    return ModelService(
        Settings(
            bucket=bucket,
            store_path=store_path,
            cache_dir=str(tmp_path / "cache"),
            registry_ttl=60.0,
            **settings,
        ),
        store,
        clock=FakeClock(),
    )


def test_restore_reads_the_registry_again_with_a_fresh_client(
    s3_store: S3Store, models: DemoModels, tmp_path, monkeypatch
):
    # Given a sandbox initialized with SMH preloaded, under the credentials of init time
    populate(s3_store, models)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "SNAPSHOTKEY")
    store = S3Store(s3_store.bucket, region="us-east-1")  # its client is made on first use
    service = snap_service(store, tmp_path, preload=("etfs/SMH",))
    service.preload(service.settings.preload)  # what the handler does at init
    snapshot_client = store.client
    # When Lambda takes the snapshot
    snapstart.before_snapshot(service)
    # ... and hours later SMH 1.0.1 is promoted while the snapshot sits, and the
    # restored sandbox gets new credentials
    published = publish_bundle(s3_store, models.smh_v2, registry_key=REGISTRY_KEY)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "RESTOREDKEY")
    snapstart.after_restore(service)
    # Then, without waiting for the registry TTL, the restored sandbox knows the new revision
    assert service.registry().revision == published.revision
    answer = predict(service, {"ticker": "SMH", "features": [0.5] * 12})
    assert answer["model"] == {"name": "etfs/SMH", "version": "1.0.1", "alias": "production"}
    # ... through a new client that signs with the restored credentials
    assert store.client is not snapshot_client
    log = AuthorizationLog()
    log.watch(store.client)
    service.serving_for_ticker("SPY")  # a model the snapshot did not hold: downloaded now
    assert log.keys and set(log.keys) == {"RESTOREDKEY"}


def test_the_snapshot_holds_the_preloaded_models_even_if_init_could_not_load_them(
    s3_store: S3Store, models: DemoModels, tmp_path
):
    # Given init ran before anything was published (its preload found no registry)
    service = snap_service(s3_store, tmp_path, preload=("etfs/SMH", "stocks/universal"))
    service.preload(service.settings.preload)
    assert service.loaded() == []
    populate(s3_store, models)
    # When the snapshot is about to be taken
    snapstart.before_snapshot(service)
    # Then the named models are in memory, so every restored sandbox starts with them
    assert sorted(str(m["name"]) for m in service.loaded()) == ["etfs/SMH", "stocks/universal"]


def test_a_restore_while_storage_is_down_keeps_serving_the_snapshots_models(
    models: DemoModels, tmp_path
):
    # Given a snapshot taken with SMH loaded from a store that then becomes unreadable
    root = tmp_path / "store"
    populate(LocalStore(root), models)
    service = snap_service(LocalStore(root), tmp_path, preload=("etfs/SMH",))
    snapstart.before_snapshot(service)
    (root / REGISTRY_KEY).unlink()
    # When a sandbox is restored
    snapstart.after_restore(service)
    # Then the failed registry read is counted and SMH still answers from memory
    assert service.counters.registry_failures == 1
    answer = predict(service, {"ticker": "SMH", "features": [0.5] * 12})
    assert answer["model"]["version"] == "1.0.0"


def test_sandboxes_restored_from_one_snapshot_draw_different_random_numbers():
    # Given two sandboxes restored from one snapshot: identical generator states
    draws = []
    for _ in range(2):
        random.seed(20261123)
        np.random.seed(20261123)
        snapstart.reseed()  # the restore hook's first step
        draws.append((random.random(), np.random.random()))
    # Then they no longer draw the same numbers
    assert draws[0][0] != draws[1][0]
    assert draws[0][1] != draws[1][1]


def test_hooks_register_only_where_the_runtime_offers_them(monkeypatch, tmp_path):
    registered: list[tuple[str, Any, tuple[Any, ...]]] = []

    def on(kind: str) -> Any:
        return lambda func, *args: registered.append((kind, func, args))

    service = snap_service(LocalStore(tmp_path), tmp_path)
    monkeypatch.setattr(snapstart, "_hooks", None)
    assert snapstart.register(service) is False
    monkeypatch.setattr(snapstart, "_hooks", (on("before"), on("after")))
    assert snapstart.register(service) is True
    assert registered == [
        ("before", snapstart.before_snapshot, (service,)),
        ("after", snapstart.after_restore, (service,)),
    ]
