"""Baselines: fitting, the file format, seed 003's files, where they are stored and verified,
and that serving never downloads them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.monitor_support import REGISTRY_KEY, classification_baseline, reference_rows
from tickerserve.baselines.baseline import (
    Baseline,
    BaselineError,
    Reference,
    fit_baseline,
    from_seed_003,
)
from tickerserve.baselines.persistence import attach_to_bundle, load_baseline, write_sidecar
from tickerserve.errors import IntegrityError, NotFound
from tickerserve.layout import baseline_sidecar_key
from tickerserve.publishing.release import publish_bundle
from tickerserve.serving.service import ModelService
from tickerserve.settings import Settings
from tickerserve.storage.bundle import read_metadata
from tickerserve.storage.store import LocalStore, S3Store
from tickerserve.storage.version_index import read_index, record_sidecar, update_index

# seed 003's own examples (models/README.md)
VALIDATION_BASELINE = {
    "validation_rmse": 0.011402, "validation_mae": 0.006778, "validation_r2": 0.434352,
    "timestamp": "2026-01-08T22:09:13.586357", "train_val_split": 0.9,
    "date_range": {"train_start": "2010-03-31", "train_end": "2024-05-31",
                   "val_start": "2024-06-03", "val_end": "2025-12-31"},
}  # fmt: skip
DUAL_MODEL_BASELINE = {
    "timestamp": "2026-01-08T22:09:13.586357",
    "model_a": {"training_samples": 3566, "training_date_start": "2010-03-31",
                "training_date_end": "2024-05-31", "validation_rmse": 0.011402,
                "validation_mae": 0.006778, "validation_r2": 0.434352, "validation_samples": 397},
    "model_b": {"training_samples": 3933, "training_date_start": "2010-03-31",
                "training_date_end": "2025-11-17", "test_samples": 30,
                "test_date_start": "2025-11-18", "test_date_end": "2025-12-31",
                "test_rmse": 0.005797, "test_mae": 0.004760, "test_r2": -0.122300},
}  # fmt: skip


def test_seed_003_baselines_become_metrics_and_windows() -> None:
    a = from_seed_003("vol/SPY", "1.0.0", "a", VALIDATION_BASELINE, DUAL_MODEL_BASELINE)
    assert a.task == "regression"
    assert a.metrics == {"rmse": 0.011402, "mae": 0.006778, "r2": 0.434352}
    assert (a.training.start, a.training.end, a.training.samples) == (
        "2010-03-31",
        "2024-05-31",
        3566,
    )
    assert (a.validation.start, a.validation.end, a.validation.samples) == (
        "2024-06-03",
        "2025-12-31",
        397,
    )
    b = from_seed_003("vol/SPY", "1.0.1", "b", VALIDATION_BASELINE, DUAL_MODEL_BASELINE)
    assert b.metrics == {"rmse": 0.005797, "mae": 0.00476, "r2": -0.1223}
    assert (b.training.end, b.validation.start, b.validation.samples) == (
        "2025-11-17",
        "2025-11-18",
        30,
    )
    with pytest.raises(BaselineError, match="no metrics"):
        from_seed_003("vol/SPY", "1.0.0", "b", None, None)


def test_a_seed_baseline_keeps_the_distributions_of_a_fitted_reference() -> None:
    rng = np.random.default_rng(0)
    x = reference_rows(rng, 500, 3)
    fitted = fit_baseline("vol/SPY", "1.0.0", "regression",
                          Reference(["a", "b", "c"], x, 0.01 + x[:, 0] * 0.001))  # fmt: skip
    merged = from_seed_003("vol/SPY", "1.0.0", "a", VALIDATION_BASELINE, DUAL_MODEL_BASELINE,
                           reference=fitted)  # fmt: skip
    assert merged.features == fitted.features and merged.output == fitted.output
    assert merged.metrics["rmse"] == 0.011402  # the seed's validation figures win


def test_the_file_round_trips_and_refuses_what_it_does_not_understand(models) -> None:
    rng = np.random.default_rng(1)
    meta = models.smh.metadata
    truth = [meta.classes[i] for i in rng.integers(0, 4, 800)]
    baseline = classification_baseline(models.smh, reference_rows(rng, 800, 6), truth)
    again = Baseline.from_json(baseline.to_json())
    assert again == baseline
    raw = json.loads(baseline.to_json())
    with pytest.raises(BaselineError, match="unsupported baseline schema 2"):
        Baseline.from_json(json.dumps({**raw, "schema": 2}).encode())
    with pytest.raises(BaselineError, match="task"):
        Baseline.from_json(json.dumps({**raw, "task": "ranking"}).encode())
    with pytest.raises(BaselineError, match="baseline is invalid"):
        Baseline.from_json(b"{not json")
    assert len(baseline.to_json()) < 60_000  # 6 features: small beside the model


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
    assert read_index(store, "etfs/SMH").index.versions["1.0.0"].sidecars == {
        "baseline.json": digest
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
