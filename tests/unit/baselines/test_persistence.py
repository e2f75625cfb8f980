"""Where a version's baseline lives: inside the version folder (an artifact in the sha256 chain)
or as a sidecar whose digest the model's digest index records; every read is verified, and the
prediction function never downloads it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.monitor_support import REGISTRY_KEY, classification_baseline, reference_rows
from tickerserve.baselines.baseline import Baseline, BaselineError
from tickerserve.baselines.persistence import (
    attach_to_bundle,
    has_baseline,
    load_baseline,
    load_ranges,
    with_identity,
    write_ranges,
    write_sidecar,
)
from tickerserve.baselines.ranges import Ranges, RangesError
from tickerserve.errors import Conflict, IntegrityError, NotFound
from tickerserve.layout import BASELINE_FILE as FILE_NAME
from tickerserve.layout import RANGES_FILE, baseline_sidecar_key, ranges_sidecar_key
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.bundle import read_metadata
from tickerserve.storage.store import LocalStore, S3Store, sha256_hex
from tickerserve.storage.version_index import read_index, record_sidecar, update_index


def small_baseline(models, seed: int = 0) -> Baseline:
    rows = reference_rows(np.random.default_rng(seed), 200, 6)
    return classification_baseline(models.smh, rows, None)


def test_an_attached_baseline_takes_the_bundles_identity(models) -> None:
    baseline = replace(small_baseline(models), model="other/model", version="9.9.9")
    bundle = attach_to_bundle(models.smh, baseline)
    assert FILE_NAME in bundle.metadata.artifacts
    stored = Baseline.from_json(bundle.files[FILE_NAME])
    assert (stored.model, stored.version) == ("etfs/SMH", "1.0.0")
    renamed = with_identity(bundle.files, "etfs/SMH", "1.0.7")
    assert Baseline.from_json(renamed[FILE_NAME]).version == "1.0.7"
    assert with_identity(models.smh.files, "etfs/SMH", "1.0.7") is models.smh.files


def test_a_published_baseline_is_found_and_cannot_be_replaced_by_a_sidecar(
    tmp_path: Path, models
) -> None:
    store = LocalStore(tmp_path)
    publish_bundle(
        store, attach_to_bundle(models.smh, small_baseline(models)), registry_key=REGISTRY_KEY
    )
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    assert has_baseline(store, meta)
    with pytest.raises(Conflict, match=r"^etfs/SMH 1\.0\.0 was published with a baseline; it"):
        write_sidecar(store, meta, small_baseline(models, 1), replace_existing=True)


def test_a_published_baseline_is_verified_like_every_artifact(tmp_path: Path, models) -> None:
    store = LocalStore(tmp_path)
    rng = np.random.default_rng(2)
    baseline = classification_baseline(models.smh, reference_rows(rng, 500, 6), None)
    publish_bundle(store, attach_to_bundle(models.smh, baseline), registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    assert "baseline.json" in meta.artifacts and "baseline.json" not in meta.serving_artifacts
    stored = load_baseline(store, meta)
    assert stored is not None and stored.baseline == baseline
    path = tmp_path / "etfs/SMH/versions/1.0.0/baseline.json"
    path.write_bytes(path.read_bytes().replace(b'"rows":500', b'"rows":501'))
    with pytest.raises(IntegrityError, match="sha256"):
        load_baseline(store, meta)


def test_a_sidecar_is_trusted_only_with_its_digest_index_record(tmp_path: Path, models) -> None:
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    assert load_baseline(store, meta) is None  # none yet
    rng = np.random.default_rng(3)
    baseline = classification_baseline(models.smh, reference_rows(rng, 300, 6), None)
    digest = write_sidecar(store, meta, baseline)
    # its digest and its feature ranges' (kept beside the version, where the function reads)
    ranges = store.get(ranges_sidecar_key("etfs/SMH", "1.0.0"))
    assert ranges is not None and Ranges.from_json(ranges.data) == baseline.ranges
    assert read_index(store, "etfs/SMH").index.versions["1.0.0"].sidecars == {
        "baseline.json": digest,
        "ranges.json": sha256_hex(ranges.data),
    }
    stored = load_baseline(store, meta)
    assert stored is not None and (stored.where, stored.sha256) == ("sidecar", digest)
    sidecar = baseline_sidecar_key("etfs/SMH", "1.0.0")
    blob = store.get(sidecar)
    assert blob is not None
    data = blob.data
    # the record gone (an index rewritten by hand): the bytes are not trusted
    update_index(store, "etfs/SMH", lambda index: index.versions.update(
        {"1.0.0": replace(index.versions["1.0.0"], sidecars={})}))  # fmt: skip
    with pytest.raises(IntegrityError, match="no sha256 recorded in its digest index"):
        load_baseline(store, meta)
    # recorded, but the file is gone
    record_sidecar(store, "etfs/SMH", "1.0.0", "baseline.json", digest)
    store.delete([sidecar])
    with pytest.raises(IntegrityError, match="records a baseline sidecar that is gone"):
        load_baseline(store, meta)
    store.put(sidecar, data)
    assert load_baseline(store, meta) is not None


def test_a_deleted_or_unrecorded_version_gets_no_sidecar(tmp_path: Path, models) -> None:
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    baseline = classification_baseline(
        models.smh, reference_rows(np.random.default_rng(5), 100, 6), None
    )
    update_index(store, "etfs/SMH", lambda index: index.mark_deleted("1.0.0", None))
    with pytest.raises(NotFound, match=r"not recorded in its digest index \(it was deleted\)"):
        write_sidecar(store, meta, baseline)
    assert store.head(baseline_sidecar_key("etfs/SMH", "1.0.0")) is None


def test_the_prediction_function_never_downloads_the_baseline(
    s3_store: S3Store, models, tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    baseline = classification_baseline(models.smh, reference_rows(rng, 300, 6), None)
    bundle = attach_to_bundle(models.smh, baseline)
    publish_bundle(s3_store, bundle, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    keys: list[str] = []
    s3_store.client.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: keys.append(params["Key"])
    )
    service = ModelService(Settings(bucket="unused", cache_dir=str(tmp_path / "cache")), s3_store)
    serving = service.serving_for_ticker("SMH")
    assert serving.model.metadata.version == "1.0.0"
    fetched = sorted(k.rsplit("/", 1)[-1] for k in keys)
    assert fetched == ["asset_registry.json", "metadata.json", "model.txt"]


def test_a_second_sidecar_needs_replace_and_is_then_recorded(tmp_path: Path, models) -> None:
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    assert not has_baseline(store, meta)
    first = write_sidecar(store, meta, small_baseline(models, 1))
    assert has_baseline(store, meta)
    with pytest.raises(Conflict) as caught:
        write_sidecar(store, meta, small_baseline(models, 2))
    assert caught.value.message == (
        "etfs/SMH 1.0.0 already has a baseline; pass --replace to refit it"
    )
    second = write_sidecar(store, meta, small_baseline(models, 2), replace_existing=True)
    assert second != first
    # the refitted baseline's ranges replace the first's
    refitted = small_baseline(models, 2).ranges
    assert refitted is not None
    assert read_index(store, "etfs/SMH").index.versions["1.0.0"].sidecars == {
        FILE_NAME: second,
        RANGES_FILE: sha256_hex(refitted.to_json()),
    }
    stored = load_baseline(store, meta)
    assert stored is not None and stored.baseline == small_baseline(models, 2)


def test_a_stray_sidecar_without_a_record_counts_as_a_baseline(tmp_path: Path, models) -> None:
    # Given a sidecar file someone copied in by hand, never recorded
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    store.put(baseline_sidecar_key("etfs/SMH", "1.0.0"), small_baseline(models).to_json())
    # Then it is not overwritten silently
    assert has_baseline(store, meta)
    with pytest.raises(Conflict, match="already has a baseline"):
        write_sidecar(store, meta, small_baseline(models, 1))


def test_a_version_missing_from_the_index_says_to_migrate(tmp_path: Path, models) -> None:
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    update_index(store, "etfs/SMH", lambda index: index.versions.pop("1.0.0"))
    with pytest.raises(NotFound) as caught:
        write_sidecar(store, meta, small_baseline(models))
    assert caught.value.code == "unknown_version"
    assert caught.value.message == (
        "etfs/SMH 1.0.0 is not recorded in its digest index: run `tickerserve migrate` first"
    )


def test_a_tampered_sidecar_is_refused(tmp_path: Path, models) -> None:
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    digest = write_sidecar(store, meta, small_baseline(models))
    key = baseline_sidecar_key("etfs/SMH", "1.0.0")
    blob = store.get(key)
    assert blob is not None
    store.put(key, blob.data.replace(b'"rows":200', b'"rows":201'))
    with pytest.raises(IntegrityError, match=rf"does not match the recorded {digest[:12]}…$"):
        load_baseline(store, meta)


def test_a_sidecar_describing_another_version_is_refused(tmp_path: Path, models) -> None:
    # Given a sidecar whose recorded digest matches but whose content names 1.0.9
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    wrong = replace(small_baseline(models), version="1.0.9").to_json()
    key = baseline_sidecar_key("etfs/SMH", "1.0.0")
    store.put(key, wrong)
    record_sidecar(store, "etfs/SMH", "1.0.0", FILE_NAME, sha256_hex(wrong))
    with pytest.raises(
        BaselineError, match=r"^baseline at etfs/SMH 1\.0\.0 describes etfs/SMH 1\.0\.9$"
    ):
        load_baseline(store, meta)


# -- feature ranges ------------------------------------------------------------------------------


def test_a_baseline_published_with_the_version_puts_its_ranges_in_metadata(
    tmp_path: Path, models
) -> None:
    # Given a version published with its baseline
    store = LocalStore(tmp_path)
    baseline = small_baseline(models)
    publish_bundle(store, attach_to_bundle(models.smh, baseline), registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    # Then metadata.json holds the ranges (no other object to read) and no sidecar exists
    assert baseline.ranges is not None and meta.ranges == baseline.ranges.to_dict()
    stored = load_ranges(store, meta)
    assert stored is not None and (stored.ranges, stored.where) == (baseline.ranges, "metadata")
    assert store.head(ranges_sidecar_key("etfs/SMH", "1.0.0")) is None
    # a version without a baseline keeps no ranges anywhere
    publish_bundle(store, models.smh_v2, registry_key=REGISTRY_KEY)
    plain, _ = read_metadata(store, "etfs/SMH", "1.0.1")
    assert plain.ranges is None and load_ranges(store, plain) is None
    assert b'"ranges"' not in (tmp_path / "etfs/SMH/versions/1.0.1/metadata.json").read_bytes()


def test_ranges_of_a_version_published_before_them_are_kept_beside_it(
    tmp_path: Path, models
) -> None:
    # Given a version published with a baseline by a tickerserve without ranges
    store = LocalStore(tmp_path)
    baseline = replace(small_baseline(models), ranges=None)
    publish_bundle(store, attach_to_bundle(models.smh, baseline), registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    meta.ranges = None  # as the older writer left it
    # When its ranges are written beside it (what migrate does)
    estimated = baseline.feature_ranges()
    assert estimated is not None and estimated.estimated
    digest = write_ranges(store, meta, estimated)
    # Then they are recorded and read back verified
    assert read_index(store, "etfs/SMH").index.versions["1.0.0"].sidecars == {RANGES_FILE: digest}
    stored = load_ranges(store, meta)
    assert stored is not None and (stored.ranges, stored.where) == (estimated, "sidecar")
    # bytes that differ from the recorded digest are refused
    path = tmp_path / ranges_sidecar_key("etfs/SMH", "1.0.0")
    path.write_bytes(path.read_bytes().replace(b'"estimated":true', b'"estimated":false'))
    with pytest.raises(IntegrityError, match=r"ranges sha256 .* does not match the recorded"):
        load_ranges(store, meta)
    path.unlink()
    with pytest.raises(IntegrityError, match="records a ranges sidecar that is gone"):
        load_ranges(store, meta)
    # a version whose metadata holds ranges never gets a sidecar
    meta.ranges = estimated.to_dict()
    with pytest.raises(Conflict, match=r"keeps its ranges in metadata\.json$"):
        write_ranges(store, meta, estimated)


def test_ranges_of_a_newer_schema_are_refused_not_guessed(tmp_path: Path, models) -> None:
    store = LocalStore(tmp_path)
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY)
    meta, _ = read_metadata(store, "etfs/SMH", "1.0.0")
    meta.ranges = {"schema": 2, "quantiles": [0.001, 0.999], "features": {}}
    with pytest.raises(RangesError, match="unsupported ranges schema 2"):
        load_ranges(store, meta)
